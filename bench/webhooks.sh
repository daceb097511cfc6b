#!/usr/bin/env bash
# Benchmark of Patreon webhooks (issue #4): the api and a worker as release processes on
# PostgreSQL and Redis, the Patreon mock in the benchmark process.
#
#   bench/webhooks.sh
#
# Phase 1 sends BENCH_RATE (200) signed, distinct deliveries per second for BENCH_SECONDS (30)
# and reports p50/p99 of the acknowledgement. Phase 2 cancels BENCH_VISIBLE_SAMPLES (100)
# members' pledges one at a time, delivers each webhook, and polls that member's
# /api/auth/me until it says they no longer pay: p50/p99 from receipt to visible.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
DB_NAME=gate_webhook_bench
cargo build --release --locked -q -p api -p worker -p bench

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB_NAME" >/dev/null
trap 'psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

export DATABASE_URL="${ADMIN_URL%/*}/$DB_NAME"
export REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
echo "$(nproc) cores, PostgreSQL and Redis on this machine, release build"
target/release/webhook-bench
