#!/usr/bin/env bash
# Runs every benchmark several times and writes BENCHMARKS.md; `make bench`
# calls it under scripts/with-services.sh (DynamoDB Local and aws-lambda-rie).
# COUNT runs per handler benchmark (default 5); the DynamoDB-backed ones run
# max(COUNT-2, 1) times, propagation PROPAGATIONS times at 10 s each at most, the
# cold start at scale COLD_RUNS starts (default 20) at each CPU share (pretoken from
# the table and from a file, and the SDK floor), and its old
# paths (slow: over a minute a start) OLD_COLD_RUNS starts (default 3). At 128 MB
# a start waits for one quota period or two, so a figure needs many starts.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5}
slow=$(( count > 3 ? count - 2 : 1 ))
props=${PROPAGATIONS:-3}
raw=bench/last-run.txt
: >"$raw"
echo "handler benchmarks ($count runs each)..." >&2
go test -run '^$' -bench . -benchmem -count "$count" -benchtime "${BENCHTIME:-0.3s}" ./trigger | tee -a "$raw" | grep -E '^(Benchmark|ok|FAIL)' >&2
echo "token verification benchmarks ($count runs each)..." >&2
go test -run '^$' -bench Verify -benchmem -count "$count" -benchtime "${BENCHTIME:-0.3s}" ./authz | tee -a "$raw" | grep -E '^(Benchmark|ok|FAIL)' >&2
echo "DynamoDB Local and RIE benchmarks ($slow runs each)..." >&2
go test -run '^$' -bench 'Warm|ColdStart$|LoadCompile|LoadSnapshot|TenantToken' -benchmem -count "$slow" ./bench | tee -a "$raw" | grep -E '^(Benchmark|ok|FAIL)' >&2
echo "cold start at scale at Lambda's CPU share (${COLD_RUNS:-20} starts each, the old paths ${OLD_COLD_RUNS:-3}; needs root for the cgroup quota)..." >&2
go test -run '^$' -bench 'ColdScale/././src=(table|file|sdk-floor)$' -benchtime "${COLD_RUNS:-20}x" -count 1 -timeout 60m ./bench | tee -a "$raw" | grep -E '^(Benchmark|ok|FAIL|.*SKIP)' >&2
go test -run '^$' -bench 'ColdScale/././src=.*-old$' -benchtime "${OLD_COLD_RUNS:-3}x" -count 1 -timeout 60m ./bench | tee -a "$raw" | grep -E '^(Benchmark|ok|FAIL|.*SKIP)' >&2
echo "propagation at the default refresh interval ($props changes)..." >&2
go test -run '^$' -bench Propagation -benchtime "${props}x" -count 1 -timeout 30m ./bench | tee -a "$raw" | grep -E '^(Benchmark|ok|FAIL)' >&2
go run ./internal/benchreport -zip dist/trigger.zip -bin dist/trigger/bootstrap <"$raw" >BENCHMARKS.md
echo "wrote BENCHMARKS.md" >&2
