#!/usr/bin/env bash
# Issuance during a purge (README: Running several instances). For each key type: fill the
# database with 1,000,000 tokens that expired in 2020, measure client-credentials issuance for
# BENCH_SECONDS, then run `passport purge --expired` while wrk measures issuance in 2-second
# windows, and print the rate before, the mean and worst window during the purge, its
# duration and the failed requests. Target (issue 13): during the purge, issuance keeps at
# least half its rate and no request fails.
#
#   bench/purge.sh                                                   # SQLite
#   BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 bench/purge.sh # and PostgreSQL
#   (BENCH_SQLITE=0 skips SQLite; BENCH_ROWS, BENCH_SECONDS, BENCH_CONNECTIONS as in run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export BENCH_DIR=$ROOT/bench
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-16}
ROWS=${BENCH_ROWS:-1000000}
PORT=18081
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
echo "building (release)…" >&2
cargo build --release -q -p passport-server
BIN=$ROOT/target/release/passport
WORK=$(mktemp -d)
SERVER=""
cleanup() {
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
rate() { wrk -t2 -c"$CONNS" -d"$1" -s bench/token.lua "http://127.0.0.1:$PORT/oauth/token" | grep '^RESULT'; }

fill_sqlite() {
  python3 - "$1" "$ROWS" "$2" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
db.execute("""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
  INSERT INTO oauth_access_tokens (id, user_id, client_id, name, scopes, family_id, revoked, created_at, updated_at, expires_at)
  SELECT printf('expired%08d', i), NULL, ?, NULL, '[]', NULL, 0, '2020-01-01T00:00:00+00:00',
         '2020-01-01T00:00:00+00:00', '2020-01-02T00:00:00+00:00' FROM n""", (n, sys.argv[3]))
db.commit()
PY
}
fill_postgres() {
  psql "$1" -qAt -c "INSERT INTO oauth_access_tokens (id, user_id, client_id, name, scopes, family_id, revoked, created_at, updated_at, expires_at)
    SELECT 'expired' || lpad(i::text, 8, '0'), NULL, '$2', NULL, '[]', NULL, FALSE, '2020-01-01Z', '2020-01-01Z', '2020-01-02Z'
    FROM generate_series(1, $ROWS) AS i" >/dev/null
}

printf '| backend | key | before, tokens/s | during purge, mean | worst 2 s window | mean / before | purge took | failed |\n|---|---|---:|---:|---:|---:|---:|---:|\n'
run() {
  local backend=$1 kind=$2 url=$3
  local data=$WORK/$backend-$kind
  mkdir -p "$data"
  export PASSPORT_DATA_DIR=$data PASSPORT_MAX_CONNECTIONS_PER_ADDRESS=1000 PASSPORT_PURGE_INTERVAL=off
  if [ -n "$url" ]; then export DATABASE_URL=$url; else unset DATABASE_URL; fi
  case $kind in
    RS256-2048) $BIN keys --length 2048 >/dev/null ;;
    EdDSA) $BIN keys --algorithm eddsa >/dev/null ;;
  esac
  read -r CLIENT_ID CLIENT_SECRET < <($BIN client --client --name bench --json | json 'd["client_id"], d["client_secret"]')
  export CLIENT_ID CLIENT_SECRET
  if [ -n "$url" ]; then fill_postgres "$url" "$CLIENT_ID"; else fill_sqlite "$data/passport.db" "$CLIENT_ID"; fi
  RUST_LOG=warn $BIN serve --bind "127.0.0.1:$PORT" >"$data/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break; sleep 0.1; done
  local before failed=0
  read -r _ before _ _ f < <(rate "${SECS}s"); failed=$((failed + f))
  local start end
  start=$(date +%s.%N)
  $BIN purge --expired --hours 24 --json >"$data/purge.json" &
  local purge=$!
  local windows=()
  while kill -0 "$purge" 2>/dev/null; do
    read -r _ r _ _ f < <(rate 2s)
    # Only windows that ended while the purge still ran.
    kill -0 "$purge" 2>/dev/null && windows+=("$r")
    failed=$((failed + f))
  done
  wait "$purge"
  end=$(date +%s.%N)
  python3 - "$backend" "$kind" "$before" "$start" "$end" "$failed" "$data/purge.json" "${windows[@]}" <<'PY'
import json, sys
backend, kind, before, start, end, failed, purge = sys.argv[1:8]
w = [float(x) for x in sys.argv[8:]]
before = float(before)
purged = json.load(open(purge))["purged"]["access_tokens"]
mean = sum(w) / len(w) if w else float("nan")
worst = min(w) if w else float("nan")
print(f"| {backend} | {kind} | {before:.0f} | {mean:.0f} | {worst:.0f} | {mean / before:.2f} | {float(end) - float(start):.1f} s ({purged} rows) | {failed} |")
PY
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}
if [ "${BENCH_SQLITE:-1}" != 0 ]; then
  for kind in RS256-2048 EdDSA; do run sqlite "$kind" ""; done
fi
if [ -n "${BENCH_POSTGRES:-}" ]; then
  base=${BENCH_POSTGRES%/}
  for kind in RS256-2048 EdDSA; do
    db=$(echo "passport_purge_$$_${kind//-/_}" | tr '[:upper:]' '[:lower:]')
    psql "$base/postgres" -qAt -c "CREATE DATABASE $db" >/dev/null
    $BIN --database "$base/$db" migrate >/dev/null
    run postgres "$kind" "$base/$db"
    psql "$base/postgres" -qAt -c "DROP DATABASE IF EXISTS $db" >/dev/null || true
  done
fi
