#!/usr/bin/env bash
# Benchmark of GET /api/auth/me on PostgreSQL with a valid token, 50 connections (issue #2).
# Compares with the planned Flask + gunicorn endpoint measured on the same kind of machine:
# 577 req/s, p99 148 ms, 175 MiB resident.
#
#   bench/auth-me.sh            # needs wrk, curl, a local PostgreSQL (BENCH_POSTGRES_URL)
#
# Reports req/s, p50, p99 and peak RSS of the api for /api/auth/me and /healthz.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
DB_NAME=gate_bench
API_PORT="${BENCH_API_PORT:-18080}"
MOCK_PORT="${BENCH_MOCK_PORT:-18090}"
DURATION="${BENCH_DURATION:-20s}"
CONNECTIONS="${BENCH_CONNECTIONS:-50}"
THREADS="${BENCH_THREADS:-2}"
WORK=$(mktemp -d)

command -v wrk >/dev/null || { echo "wrk is required (apt-get install wrk)" >&2; exit 1; }
cargo build --release --locked -q -p api -p patreon-mock

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB_NAME" >/dev/null

cleanup() {
  kill "${API_PID:-}" "${MOCK_PID:-}" "${SAMPLER_PID:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

MOCK_PORT=$MOCK_PORT RUST_LOG=warn target/release/patreon-mock >"$WORK/mock.log" 2>&1 &
MOCK_PID=$!

export DATABASE_URL="${ADMIN_URL%/*}/$DB_NAME"
export JWT_SECRET="bench-secret-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
export TOKEN_ENCRYPTION_KEY="$(head -c 32 /dev/urandom | base64)"
export PATREON_CLIENT_ID=mock-client-id PATREON_CLIENT_SECRET=mock-client-secret
export PATREON_CAMPAIGN_ID=1234560 PATREON_BASE_URL="http://127.0.0.1:$MOCK_PORT"
export PATREON_REDIRECT_URI="http://127.0.0.1:$API_PORT/api/auth/patreon/callback"
export FRONTEND_URL="http://127.0.0.1:$API_PORT/" COOKIE_SECURE=false PORT=$API_PORT BIND_ADDRESS=127.0.0.1
export RUST_LOG=warn
target/release/api >"$WORK/api.log" 2>&1 &
API_PID=$!

for _ in $(seq 100); do curl -fs "http://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

# Sign in through the mock as a paying demo member, like a browser would.
JAR="$WORK/cookies"
AUTHORIZE=$(curl -s -c "$JAR" -o /dev/null -w '%{redirect_url}' "http://127.0.0.1:$API_PORT/api/auth/patreon/login")
CALLBACK=$(curl -s -o /dev/null -w '%{redirect_url}' "$AUTHORIZE&as=100000001")
curl -s -b "$JAR" -c "$JAR" -o /dev/null "$CALLBACK"
TOKEN=$(awk '$6 == "auth_token" { print $7 }' "$JAR")
[ -n "$TOKEN" ] || { echo "sign-in failed; api log:" >&2; cat "$WORK/api.log" >&2; exit 1; }
curl -fs -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/api/auth/me" >/dev/null

sample_rss() {  # peak resident set size of the api, in KiB, while wrk runs
  local peak=0 rss
  while kill -0 "$API_PID" 2>/dev/null; do
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$API_PID/status" 2>/dev/null || echo 0)
    [ "${rss:-0}" -gt "$peak" ] && peak=$rss && echo "$peak" >"$WORK/rss"
    sleep 0.1
  done
}

run() {  # run <name> <path> [header]
  local name=$1 path=$2; shift 2
  wrk -t"$THREADS" -c"$CONNECTIONS" -d3s "$@" "http://127.0.0.1:$API_PORT$path" >/dev/null  # warm-up
  echo 0 >"$WORK/rss"
  sample_rss & SAMPLER_PID=$!
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "http://127.0.0.1:$API_PORT$path" >"$WORK/$name.txt"
  kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/ { print $2 }' "$WORK/$name.txt")
  p50=$(awk '$1 == "50%" { print $2 }' "$WORK/$name.txt")
  p99=$(awk '$1 == "99%" { print $2 }' "$WORK/$name.txt")
  non2xx=$(awk '/Non-2xx/ { print $5 }' "$WORK/$name.txt")
  printf '%-14s %10s req/s   p50 %-9s p99 %-9s peak RSS %6.1f MiB   non-2xx %s\n' \
    "$path" "$rps" "$p50" "$p99" "$(echo "$(cat "$WORK/rss") / 1024" | bc -l)" "${non2xx:-0}"
  echo "$rps" >"$WORK/$name.rps"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $(nproc) cores, PostgreSQL, release build"
run me /api/auth/me -H "Authorization: Bearer $TOKEN"
run healthz /healthz
ME=$(cat "$WORK/me.rps"); HEALTH=$(cat "$WORK/healthz.rps")
printf 'ratio /api/auth/me : /healthz = %.2f\n' "$(echo "$ME / $HEALTH" | bc -l)"
printf 'vs Flask + gunicorn (577 req/s): %.1fx throughput (target >= 30x)\n' "$(echo "$ME / 577" | bc -l)"
