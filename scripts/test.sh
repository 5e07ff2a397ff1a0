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

# The interpreter with the MCP Python SDK (.ci/run creates this venv); the MCP client test fails
# with instructions when it is missing.
export VITASYNC_MCP_PYTHON="${VITASYNC_MCP_PYTHON:-/var/cache/vitasync/venv/bin/python}"

log="$(mktemp -t vitasync-test.XXXXXX)"
status=0
cargo test --workspace --locked "$@" 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$status"
