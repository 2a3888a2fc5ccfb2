# Trail's build. `make test` is the one command that runs every check; CI
# runs exactly it (.ci/run).

STATICCHECK_VERSION := v0.8.2
BIN := $(CURDIR)/.bin
STATICCHECK := $(BIN)/staticcheck-$(STATICCHECK_VERSION)

export GOTOOLCHAIN := local

.PHONY: test generate fuzz bench

## test: install the pinned tools, then go vet, staticcheck and go test -race
test: $(STATICCHECK)
	go vet ./...
	$(STATICCHECK) ./...
	go test -race ./...

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
	go test -run '^$$' -fuzz '^FuzzCanonical$$' -fuzztime $(FUZZTIME) .
	go test -run '^$$' -fuzz '^FuzzText$$' -fuzztime $(FUZZTIME) ./redact
	go test -run '^$$' -fuzz '^FuzzValue$$' -fuzztime $(FUZZTIME) ./redact
	go test -run '^$$' -fuzz '^FuzzParseWhen$$' -fuzztime $(FUZZTIME) ./cmd/trail

## bench: run the benchmarks
bench:
	go test -run '^$$' -bench . -benchmem ./...
