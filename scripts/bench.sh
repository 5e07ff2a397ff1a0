#!/usr/bin/env bash
# Runs the benchmarks (release build) against SQLite and a throwaway PostgreSQL: the store write
# path (`write_path`) and end-to-end sync throughput through the actors (`sync`). Arguments go to
# `cargo bench`; `scripts/bench.sh --bench sync` runs one of them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_DATABASE_URL:-}" ]; then
    # shellcheck source=scripts/pg.sh
    source scripts/pg.sh
    export PG_DURABLE=1
    trap pg_stop EXIT
    pg_start
fi
if [ "$#" -eq 0 ]; then
    set -- --bench write_path --bench sync
fi
cargo bench "$@"
