#!/usr/bin/env bash
# The full path, run by `make demo-dynamo` under scripts/with-services.sh:
# DynamoDB Local → pretoken migrate → pretoken apply of the example policy →
# the trigger binary under aws-lambda-rie → the example events through it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

export AWS_ENDPOINT_URL_DYNAMODB="$PRETOKEN_TEST_DYNAMODB" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_EC2_METADATA_DISABLED=true \
  PRETOKEN_TABLE=pretoken-demo
unset PRETOKEN_POLICY_FILE

echo "== pretoken migrate"
bin/pretoken migrate
echo
echo "== pretoken apply -f examples/policy.yaml"
bin/pretoken apply -f examples/policy.yaml
echo

go build -tags lambda.norpc -o bin/bootstrap ./cmd/trigger
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
port=$((20000 + RANDOM % 20000)); while ! port_free "$port"; do port=$((port + 1)); done
api=$((port + 1)); while ! port_free "$api"; do api=$((api + 1)); done
log=$(mktemp)
"$PRETOKEN_TEST_RIE" --runtime-interface-emulator-address "127.0.0.1:$port" \
  --runtime-api-address "127.0.0.1:$api" bin/bootstrap >"$log" 2>&1 &
rie=$!
trap 'kill $rie 2>/dev/null || true; wait $rie 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do port_free "$port" || break; sleep 0.05; done

echo "== the trigger (PRETOKEN_TABLE=$PRETOKEN_TABLE) under aws-lambda-rie, on each example event"
events=()
for f in examples/events/*.json; do events+=(--event "$f"); done
bin/pretoken simulate --summary --url "http://127.0.0.1:$port/2015-03-31/functions/function/invocations" "${events[@]}"
echo
echo "== the function's log lines"
grep '^{' "$log" || true
