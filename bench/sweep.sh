#!/usr/bin/env bash
# Benchmark of a full sweep (issue #3): N members against the Patreon mock with a fixed latency
# per call, verified by a real `worker sweep --now` process on PostgreSQL and Redis.
#
#   bench/sweep.sh                          # 10,000 members, 100 ms per call, Patreon's limits
#   BENCH_PATREON_LIMIT=false bench/sweep.sh   # limits lifted: bounded by WORKER_CONCURRENCY
#
# BENCH_USERS (10000), BENCH_LATENCY_MS (100), BENCH_PATREON_LIMIT (true: the mock enforces
# 100 requests per 2 s per client and 100 per minute per token, as Patreon does),
# BENCH_BUDGET_PER_2S (our PATREON_REQUESTS_PER_2S: 95 with the limit, else unlimited),
# BENCH_CONCURRENCY (WORKER_CONCURRENCY, 16), BENCH_POSTGRES_URL, BENCH_REDIS_URL.
# Reports wall time, Patreon calls per second and their share of the allowed rate, 429s, the
# worker's CPU per verified member and its peak resident memory.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
DB_NAME=gate_sweep_bench
# The same package set as the other benchmarks, so cargo reuses one release build.
cargo build --release --locked -q -p api -p worker -p bench

psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB_NAME" >/dev/null
trap 'psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

export DATABASE_URL="${ADMIN_URL%/*}/$DB_NAME"
export REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}"
export WORKER_BIN=target/release/worker
target/release/sweep-bench
