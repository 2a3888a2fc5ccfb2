#!/bin/sh
# Scale curves (issue 18, section 3): grow one SQLite database through
# SIZES and, at each, measure the append rate of the last WINDOW events
# appended (bench/scale), the p95 of every query of BenchmarkQueryLarge
# (pages of 100) and full verification (BenchmarkVerify), on that same file.
#
#   sh bench/scale.sh                              # 10k, 100k, 1M
#   SIZES=10000,100000,1000000,10000000 sh bench/scale.sh
#
# DB (default /tmp/trail-scale.db) is removed first and kept after.
set -eu
SIZES=${SIZES:-10000,100000,1000000}
WINDOW=${WINDOW:-10000}
DB=${DB:-/tmp/trail-scale.db}
case $DB in /*) ;; *) DB=$PWD/$DB ;; esac # the benchmarks run in sqlite/
BIN=$(mktemp -d)
trap 'rm -rf "$BIN"' EXIT
export GOTOOLCHAIN=local
cd "$(dirname "$0")/.."
go build -o "$BIN/scale" ./bench/scale
go test -c -o "$BIN/sqlite.test" ./sqlite
rm -f "$DB" "$DB-wal" "$DB-shm"
uptime
for n in $(echo "$SIZES" | tr , ' '); do
	"$BIN/scale" -db "$DB" -sizes "$n" -window "$WINDOW"
	cd sqlite
	"$BIN/sqlite.test" -test.run '^$' -test.bench 'QueryLarge' -test.benchtime 200x -trail.bigdb "$DB" | grep -E '^Benchmark'
	"$BIN/sqlite.test" -test.run '^$' -test.bench 'Verify$' -test.benchtime 3x -trail.bigdb "$DB" | grep -E '^Benchmark'
	cd ..
done
uptime
