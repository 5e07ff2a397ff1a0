#!/usr/bin/env bash
# The whole test suite: formatting, lints, version check, and every test on SQLite and
# PostgreSQL. Starts a throwaway PostgreSQL unless TEST_DATABASE_URL points at one.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/check-version.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

if [ -z "${TEST_DATABASE_URL:-}" ]; then
    # shellcheck source=scripts/pg.sh
    source scripts/pg.sh
    trap pg_stop EXIT
    pg_start
fi

cargo test --workspace --locked "$@"
