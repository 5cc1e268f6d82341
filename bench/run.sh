#!/usr/bin/env bash
# Load benchmark on the embedded SQLite default, with wrk on the same machine:
#   1. client-credentials token issuance (POST /oauth/token)
#   2. a protected route (GET /api/user with a bearer token: token check + user lookup)
# Usage: bench/run.sh [KEY_BITS] [SECONDS] [CONNECTIONS]      (defaults: 4096 10 32)
set -euo pipefail
cd "$(dirname "$0")/.."
BITS=${1:-4096}
SECS=${2:-10}
CONNS=${3:-32}
PORT=${PORT:-18080}

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p passport-server
BIN=$PWD/target/release/passport
DATA=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$DATA"' EXIT

export PASSPORT_DATA_DIR=$DATA PASSPORT_TOKEN_RATE_LIMIT=0 PASSPORT_ENABLE_PASSWORD_GRANT=true
$BIN keys --length "$BITS" >/dev/null
read -r CLIENT_ID CLIENT_SECRET < <($BIN client --client --name bench --json |
  python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["client_id"], c["client_secret"])')
read -r PW_ID PW_SECRET < <($BIN client --password --name bench-pw --json |
  python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["client_id"], c["client_secret"])')
$BIN user create --email bench@example.com --password bench-password --json >/dev/null
export CLIENT_ID CLIENT_SECRET

RUST_LOG=warn $BIN serve --bind "127.0.0.1:$PORT" >/dev/null &
SERVER=$!
for _ in $(seq 1 50); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

TOKEN=$(curl -fs -X POST "http://127.0.0.1:$PORT/oauth/token" -d grant_type=password \
  -d client_id="$PW_ID" -d client_secret="$PW_SECRET" -d username=bench@example.com -d password=bench-password |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

echo "== RS256-$BITS, SQLite, $(nproc) cores, wrk -t2 -c$CONNS -d${SECS}s =="
echo "-- client-credentials token issuance"
wrk -t2 -c"$CONNS" -d"${SECS}s" -s bench/token.lua "http://127.0.0.1:$PORT/oauth/token" | grep -E 'Requests/sec|Latency|non-200'
echo "-- protected route GET /api/user"
wrk -t2 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/api/user" |
  grep -E 'Requests/sec|Latency|Non-2xx'
