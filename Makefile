# Trail's build. `make test` is the one command that runs every check; CI
# runs exactly it (.ci/run).

STATICCHECK_VERSION := v0.8.2
BIN := $(CURDIR)/.bin
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)

export GOTOOLCHAIN := local

.PHONY: test packages generate fuzz bench bench-peers

## test: install the pinned tools and the Debian packages the tests drive
## (Chromium for the web UI's browser tests; rsyslog, with its OpenSSL
## driver, for the syslog stream's; OpenSSH's client tools, whose ssh-agent
## holds the key of the witnesses the witness tests run), then go vet,
## staticcheck and go test -race
test: $(STATICCHECK) packages
	go vet ./...
	$(STATICCHECK) ./...
	go test -race -timeout 30m ./...

## packages: install the Debian packages the tests need when any is
## missing. Under CI=true a failed install fails the build; elsewhere it
## warns, and the tests that need them skip saying why.
PACKAGES := chromium rsyslog rsyslog-openssl openssh-client
packages:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	[ -z "$$missing" ] || { \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; else sudo=false; fi; \
		$$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing || { \
			echo "make: could not install $$missing (apt-get install -y $$missing, as root); the tests need them" >&2; \
			[ "$$CI" != true ]; }; }

$(STATICCHECK):
	mkdir -p $(BIN)
	GOBIN=$(BIN) go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(BIN)/staticcheck $(STATICCHECK)

## generate: regenerate code from data files (the catalog constants)
generate:
	go generate ./...

## fuzz: run each fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	go test -run '^$$' -fuzz '^FuzzParseEvent$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzParseEventSame$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzCanonical$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzParseAPIKey$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzText$$' -fuzztime $(FUZZTIME) ./redact
	go test -run '^$$' -fuzz '^FuzzValue$$' -fuzztime $(FUZZTIME) ./redact
	go test -run '^$$' -fuzz '^FuzzParseWhen$$' -fuzztime $(FUZZTIME) ./cmd/trail
	go test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME) ./tlog
	go test -run '^$$' -fuzz '^FuzzVerifyBundle$$' -fuzztime $(FUZZTIME) ./tlog
	go test -run '^$$' -fuzz '^FuzzCSVCell$$' -fuzztime $(FUZZTIME) ./export
	go test -run '^$$' -fuzz '^FuzzTraceparent$$' -fuzztime $(FUZZTIME) ./client
	go test -run '^$$' -fuzz '^FuzzSealOpen$$' -fuzztime $(FUZZTIME) ./erasure
	go test -run '^$$' -fuzz '^FuzzParsePolicy$$' -fuzztime $(FUZZTIME) ./witness

## bench: run the benchmarks
bench:
	go test -run '^$$' -bench . -benchmem ./...

## bench-peers: Trail's SQLite store beside transparency-dev/tessera and
## codenotary/immudb, the same events, interleaved (bench/peers, a module
## of its own that `make test` does not reach): vet and test its adapters,
## then run it. PEERS_FLAGS sets its flags (go run . -h lists them).
PEERS_FLAGS ?= -events 100000 -rounds 5
bench-peers:
	cd bench/peers && go vet ./... && go test -race ./... && go run . $(PEERS_FLAGS)
