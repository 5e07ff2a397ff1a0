# Prepares the Python the test suite uses (a venv with scripts/test-requirements.txt) and exports
# VITASYNC_TEST_PYTHON. Source it. The venv lives outside the clone (VITASYNC_TEST_VENV, default
# ~/.cache/vitasync/venv) and is only reinstalled when the requirements change.
python_env() {
    local venv="${VITASYNC_TEST_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/vitasync/venv}"
    local req
    req="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/test-requirements.txt"
    local stamp="$venv/.requirements.sha256"
    local want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        echo "preparing the test Python at $venv" >&2
        python3 -m venv "$venv" || return 1
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" || return 1
        echo "$want" >"$stamp"
    fi
    export VITASYNC_TEST_PYTHON="$venv/bin/python"
}
