#!/usr/bin/env bash
# Runs the write-path benchmark (release build) against SQLite and a throwaway PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_DATABASE_URL:-}" ]; then
    # shellcheck source=scripts/pg.sh
    source scripts/pg.sh
    export PG_DURABLE=1
    trap pg_stop EXIT
    pg_start
fi
cargo bench --bench write_path "$@"
