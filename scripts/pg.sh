# Starts a throwaway PostgreSQL server for the test suite and exports TEST_DATABASE_URL.
# Source it; call pg_stop (or let the EXIT trap do it) when done. Works as root (the server runs
# as the `postgres` system user, since PostgreSQL refuses to run as root) and as a normal user.

pg_bindir() {
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1
}

pg_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pg_start() {
    local bin
    bin="$(pg_bindir)"
    if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
        echo "PostgreSQL server binaries not found (install the postgresql package)" >&2
        return 1
    fi
    PG_TMP="$(mktemp -d -t vitasync-pg.XXXXXX)"
    PG_PORT="$(pg_free_port)"
    local run=()
    if [ "$(id -u)" = "0" ]; then
        chown postgres:postgres "$PG_TMP"
        run=(runuser -u postgres --)
    fi
    "${run[@]}" "$bin/initdb" -D "$PG_TMP/data" -U postgres --auth=trust -E UTF8 >"$PG_TMP/initdb.log" 2>&1 || {
        cat "$PG_TMP/initdb.log" >&2
        return 1
    }
    # Tests trade durability for speed; PG_DURABLE=1 (the benchmarks) keeps the defaults.
    local opts="-p $PG_PORT -k $PG_TMP -c listen_addresses=127.0.0.1 -c max_connections=300"
    if [ "${PG_DURABLE:-0}" != "1" ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    "${run[@]}" "$bin/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w start -o "$opts" \
        >/dev/null || {
        cat "$PG_TMP/server.log" >&2
        return 1
    }
    PG_RUN=("${run[@]}")
    PG_BIN="$bin"
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
    echo "PostgreSQL for tests at $TEST_DATABASE_URL" >&2
}

pg_stop() {
    if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP/data" ]; then
        "${PG_RUN[@]}" "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_TMP"
    fi
}
