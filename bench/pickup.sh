#!/usr/bin/env bash
# Pickup latency (issue #3): push to start of a job on an idle worker, on the embedded SQLite
# queue and on Redis (BENCH_REDIS_URL, default the local server). BENCH_SAMPLES jobs (100),
# one at a time with idle gaps; reports p50/p99/max.
set -euo pipefail
cd "$(dirname "$0")/.."
# The same package set as the other benchmarks, so cargo reuses one release build.
cargo build --release --locked -q -p api -p worker -p bench
target/release/pickup-bench
REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379}" target/release/pickup-bench
