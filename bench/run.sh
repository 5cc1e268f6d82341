#!/usr/bin/env bash
# The load benchmark (README: Performance). One run, one machine, loopback only; prints one table.
#
#   bench/run.sh                                   # SQLite (the default store)
#   BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 bench/run.sh   # and PostgreSQL too
#
# Rows: raw signing on all cores (cargo bench -p passport --bench tokens); client-credentials
# issuance per key type (RS256-2048, RS256-4096, ES256, EdDSA); the claims route GET /api/token
# (the bearer check alone) and GET /api/user (check + user row), both with wrk at full load and
# the claims route again with oha at a fixed rate of half that, and with a DPoP-bound token
# and a fresh proof per request (bench/src/dpop_proofs.rs makes them); refresh-token rotation; token
# introspection; a trivial axum handler (bench/src/main.rs); node oidc-provider's
# client-credentials rate (../shared/peers/oidc-provider); idle and loaded RSS. Then the ratios
# issue 12 set as targets. Knobs: BENCH_SECONDS (10), BENCH_CONNECTIONS (16), BENCH_SOAK (60,
# seconds of full issuance load for the RSS figure; 0 skips it), BENCH_PEER (path of the peer).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export BENCH_DIR=$ROOT/bench
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-16}
SOAK=${BENCH_SOAK:-60}
PEER_SRC=${BENCH_PEER:-$ROOT/../shared/peers/oidc-provider}
PORT=18080
THREADS=2
export THREADS

need() { command -v "$1" >/dev/null; }
need wrk || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
need oha || [ -x "$HOME/.cargo/bin/oha" ] || cargo install oha --locked -q
OHA=$(command -v oha || echo "$HOME/.cargo/bin/oha")
need node || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }

echo "building (release)…" >&2
cargo build --release -q -p passport-server -p passport-bench
BIN=$ROOT/target/release/passport
PROOFS=$ROOT/target/release/dpop-proofs
WORK=$(mktemp -d)
RESULTS=$WORK/results.tsv
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# row BACKEND WHAT RPS P50 P99 FAILED
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RESULTS"; }
# wrk_row BACKEND WHAT wrk-args…: runs wrk and records its RESULT line.
wrk_row() {
  local backend=$1 what=$2
  shift 2
  local line
  line=$(wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" "$@" | grep '^RESULT') || { row "$backend" "$what" 0 - - "wrk failed"; return; }
  read -r _ rps p50 p99 failed <<<"$line"
  row "$backend" "$what" "$rps" "$p50" "$p99" "$failed"
  echo "  $what: $rps/s" >&2
}
wait_up() {
  for _ in $(seq 1 100); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "not up: $1" >&2
  return 1
}
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# Anonymous memory (heap): RSS minus the SQLite file pages mapped by mmap_size.
anon_kb() { awk '/RssAnon/ {print $2}' "/proc/$1/status"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# A fresh deployment: a data dir with a key of KIND and the bench clients; sets SERVER.
# deploy BACKEND KIND DATABASE_URL
deploy() {
  local backend=$1 kind=$2 url=$3
  DATA=$WORK/$backend-$kind
  mkdir -p "$DATA"
  export PASSPORT_DATA_DIR=$DATA PASSPORT_ENABLE_PASSWORD_GRANT=true PASSPORT_MAX_CONNECTIONS_PER_ADDRESS=1000
  if [ -n "$url" ]; then export DATABASE_URL=$url; else unset DATABASE_URL; fi
  case $kind in
    RS256-2048) $BIN keys --length 2048 >/dev/null ;;
    RS256-4096) $BIN keys --length 4096 >/dev/null ;;
    ES256) $BIN keys --algorithm es256 >/dev/null ;;
    EdDSA) $BIN keys --algorithm eddsa >/dev/null ;;
  esac
  read -r CLIENT_ID CLIENT_SECRET < <($BIN client --client --name bench --json | json 'd["client_id"], d["client_secret"]')
  read -r PW_ID PW_SECRET < <($BIN client --password --name bench-pw --json | json 'd["client_id"], d["client_secret"]')
  read -r RS_ID RS_SECRET < <($BIN client --client --can-introspect --name bench-rs --json | json 'd["client_id"], d["client_secret"]')
  $BIN user create --email bench@example.com --password bench-password --json >/dev/null
  export CLIENT_ID CLIENT_SECRET
  RUST_LOG=warn $BIN serve --bind "127.0.0.1:$PORT" >"$DATA/serve.log" 2>&1 &
  SERVER=$!
  PIDS+=("$SERVER")
  wait_up "http://127.0.0.1:$PORT/health"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
password_grant() {
  curl -fs -X POST "http://127.0.0.1:$PORT/oauth/token" -d grant_type=password \
    -d client_id="$PW_ID" -d client_secret="$PW_SECRET" -d username=bench@example.com -d password=bench-password
}

# bench_backend BACKEND URL-or-empty (for PostgreSQL: a fresh database per deployment)
bench_backend() {
  local backend=$1 base=$2
  echo "== $backend" >&2
  local n=0
  for kind in RS256-2048 RS256-4096 ES256 EdDSA; do
    local url=""
    if [ -n "$base" ]; then
      n=$((n + 1))
      local db="passport_bench_$$_$n"
      psql "$base/postgres" -qAt -c "CREATE DATABASE $db" >/dev/null
      url="$base/$db"
      PG_DBS+=("$db")
    fi
    deploy "$backend" "$kind" "$url"
    if [ "$kind" = EdDSA ] && [ "$backend" = sqlite ]; then
      row "$backend" "RSS idle, KB (anonymous $(anon_kb "$SERVER"))" "$(rss_kb "$SERVER")" - - -
    fi
    wrk_row "$backend" "issue $kind" -s bench/token.lua "http://127.0.0.1:$PORT/oauth/token"
    if [ "$kind" = EdDSA ]; then
      local access
      access=$(password_grant | json 'd["access_token"]')
      wrk_row "$backend" "GET /api/token (claims)" -s bench/get.lua -H "Authorization: Bearer $access" "http://127.0.0.1:$PORT/api/token"
      local claims_rate
      claims_rate=$(awk -F'\t' -v b="$backend" '$1==b && $2=="GET /api/token (claims)" {print $3}' "$RESULTS")
      local rate=$((claims_rate / 2))
      "$OHA" -z "${SECS}s" -w -c "$CONNS" -q "$rate" --no-tui --output-format json \
        -H "Authorization: Bearer $access" "http://127.0.0.1:$PORT/api/token" >"$WORK/oha.json"
      python3 - "$WORK/oha.json" "$backend" "GET /api/token at $rate/s (oha -q)" >>"$RESULTS" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]; p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
failed = sum(v for k, v in codes.items() if not k.startswith("2")) + sum(d.get("errorDistribution", {}).values())
print(f"{sys.argv[2]}\t{sys.argv[3]}\t{s['requestsPerSec']:.0f}\t{p['p50']*1000:.3f}\t{p['p99']*1000:.3f}\t{failed}")
PY
      wrk_row "$backend" "GET /api/user" -s bench/get.lua -H "Authorization: Bearer $access" "http://127.0.0.1:$PORT/api/user"
      # The claims route with a DPoP-bound token: a fresh proof per request (made ahead by
      # dpop-proofs), checked with its signature, ath and a jti recorded in the database.
      local pem=$WORK/dpop-$backend.pem url="http://127.0.0.1:$PORT/api/token"
      "$PROOFS" keygen "$pem"
      local bound
      bound=$(curl -fs -X POST "http://127.0.0.1:$PORT/oauth/token" -H "DPoP: $("$PROOFS" proof "$pem" POST "http://127.0.0.1:$PORT/oauth/token")" \
        -d grant_type=client_credentials -d client_id="$CLIENT_ID" -d client_secret="$CLIENT_SECRET" | json 'd["access_token"]')
      "$PROOFS" many "$pem" GET "$url" "$bound" $((SECS * 15000)) >"$WORK/proofs-$backend"
      TOKEN=$bound PROOFS=$WORK/proofs-$backend \
        wrk_row "$backend" "GET /api/token (DPoP-bound, a proof each)" -s bench/dpop.lua "$url"
      local ig=$WORK/refresh-$backend
      : >"$ig"
      for _ in $(seq 1 $((CONNS * 2))); do password_grant | json 'd["refresh_token"]' >>"$ig"; done
      CLIENT_ID=$PW_ID CLIENT_SECRET=$PW_SECRET REFRESH_TOKENS=$ig \
        wrk_row "$backend" "refresh rotation" -s bench/refresh.lua "http://127.0.0.1:$PORT/oauth/token"
      TOKEN=$access RS_ID=$RS_ID RS_SECRET=$RS_SECRET \
        wrk_row "$backend" "introspection" -s bench/introspect.lua "http://127.0.0.1:$PORT/oauth/introspect"
      if [ "$backend" = sqlite ] && [ "$SOAK" -gt 0 ]; then
        echo "  RSS under $SOAK s of issuance…" >&2
        wrk -t"$THREADS" -c"$CONNS" -d"${SOAK}s" -s bench/token.lua "http://127.0.0.1:$PORT/oauth/token" >"$WORK/soak.txt" &
        local load=$! max=0 max_anon=0
        while kill -0 "$load" 2>/dev/null; do
          local r a
          r=$(rss_kb "$SERVER")
          a=$(anon_kb "$SERVER")
          [ "$r" -gt "$max" ] && max=$r
          [ "$a" -gt "$max_anon" ] && max_anon=$a
          sleep 2
        done
        row "$backend" "RSS max under ${SOAK}s of issuance, KB (anonymous $max_anon)" "$max" - - "$(grep '^RESULT' "$WORK/soak.txt" | awk '{print $5}')"
        row "$backend" "RSS after the load, KB (anonymous $(anon_kb "$SERVER"))" "$(rss_kb "$SERVER")" - - -
      fi
    fi
    stop "$SERVER"
  done
}

echo "raw signing (cargo bench -p passport --bench tokens)…" >&2
cargo bench -q -p passport --bench tokens 2>/dev/null >"$WORK/sign.txt"
CORES=$(nproc)
while read -r kind threads _ _ rate _ _; do
  [ "$threads" = "$CORES" ] && row raw "sign $kind, $CORES cores" "${rate%/s}" - - -
done <"$WORK/sign.txt"

PG_DBS=()
bench_backend sqlite ""
if [ -n "${BENCH_POSTGRES:-}" ]; then
  bench_backend postgres "${BENCH_POSTGRES%/}"
  for db in "${PG_DBS[@]}"; do psql "${BENCH_POSTGRES%/}/postgres" -qAt -c "DROP DATABASE IF EXISTS $db" >/dev/null || true; done
fi

echo "== baseline: trivial axum handler" >&2
"$ROOT/target/release/trivial-axum" "127.0.0.1:18090" &
TRIVIAL=$!
PIDS+=("$TRIVIAL")
wait_up "http://127.0.0.1:18090/"
wrk_row baseline "trivial axum handler" -s bench/get.lua "http://127.0.0.1:18090/"
stop "$TRIVIAL"

echo "== peer: node oidc-provider" >&2
if [ -d "$PEER_SRC" ]; then
  PEER=$WORK/peer
  cp -r "$PEER_SRC/." "$PEER"
  (cd "$PEER" && npm install --no-audit --no-fund --silent >/dev/null 2>&1)
  (cd "$PEER" && PORT=3001 exec node server.mjs >"$WORK/peer.log" 2>&1) &
  PEERPID=$!
  PIDS+=("$PEERPID")
  sleep 1
  for _ in $(seq 1 50); do
    curl -fs -u bench:benchsecret -d 'grant_type=client_credentials&scope=api:read' http://127.0.0.1:3001/token >/dev/null 2>&1 && break
    sleep 0.2
  done
  CLIENT_ID=bench CLIENT_SECRET=benchsecret SCOPE="&scope=api:read" \
    wrk_row peer "node oidc-provider issue (in memory, opaque)" -s bench/token.lua "http://127.0.0.1:3001/token"
  stop "$PEERPID"
fi

python3 - "$RESULTS" "$CORES" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print(f"| backend | what | req/s | p50 ms | p99 ms | failed |")
print("|---|---|---:|---:|---:|---:|")
for r in rows:
    print("| " + " | ".join(r) + " |")
def get(backend, what):
    for r in rows:
        if r[0] == backend and r[1].startswith(what):
            try: return float(r[2])
            except ValueError: return None
    return None
cores = sys.argv[2]
print()
print("| ratio | value | target |")
print("|---|---:|---|")
def ratio(name, a, b, target):
    if a and b: print(f"| {name} | {a / b:.2f} | {target} |")
trivial = get("baseline", "trivial")
peer = get("peer", "node")
for backend in ["sqlite", "postgres"]:
    if get(backend, "issue RS256-2048") is None: continue
    ratio(f"{backend}: RS256-2048 issuance / raw RS256-2048 signing", get(backend, "issue RS256-2048"), get("raw", "sign RS256-2048"), "≥ 0.75")
    ratio(f"{backend}: EdDSA issuance / node oidc-provider", get(backend, "issue EdDSA"), peer, "≥ 3")
    ratio(f"{backend}: ES256 issuance / node oidc-provider", get(backend, "issue ES256"), peer, "≥ 3")
    ratio(f"{backend}: claims route / trivial axum handler", get(backend, "GET /api/token (claims)"), trivial, "≥ 0.70")
    ratio(f"{backend}: /api/user / trivial axum handler", get(backend, "GET /api/user"), trivial, "≥ 0.35")
    ratio(f"{backend}: DPoP-bound claims route / bearer claims route", get(backend, "GET /api/token (DPoP"), get(backend, "GET /api/token (claims)"), "(reported)")
if get("postgres", "issue RS256-2048"):
    ratio("postgres: RS256-2048 issuance / 2,390 (before)", get("postgres", "issue RS256-2048"), 2390, "≥ 2")
    ratio("postgres: EdDSA issuance / 2,390 (before)", get("postgres", "issue EdDSA"), 2390, "≥ 2")
PY
