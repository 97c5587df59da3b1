# Throwaway PostgreSQL 15 and Redis servers for the tests, on loopback ports, gone at exit.
#
# Source it, then start and stop:
#
#   source scripts/services.sh
#   services_available        # true when this machine can start them
#   trap services_stop EXIT   # also cleans up after a start that failed halfway
#   services_start            # exports the variables below
#
# Exports GEMPIX_TEST_DATABASE_URL (postgresql://... of a fresh cluster's superuser),
# GEMPIX_TEST_DATABASE_DIR (that cluster's data directory, which the erasure test greps) and
# GEMPIX_TEST_REDIS_URL (redis://... of a server that keeps nothing on disk). PostgreSQL
# refuses to run as root, so as root the cluster belongs to the `postgres` user (created when
# missing); PostgreSQL 15 and redis-server are installed with apt-get when missing (CI runs
# as root).
# Each server listens on 127.0.0.1 only, on a free port, and lives in one temporary folder.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

_services_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

_services_as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$SERVICES_OWNER" -- "$@"; else "$@"; fi
}

services_available() {
    # Whether services_start can work here: root (to install what is missing), or
    # PostgreSQL's binaries and redis-server already installed.
    [ "$(id -u)" = 0 ] || { [ -x "$PG_BIN/initdb" ] && command -v redis-server >/dev/null; }
}

_services_apt_install() {
    # apt-get install, refreshing the package lists first only when the install fails.
    apt-get install -y "$@" >"$SERVICES_DIR/apt.log" 2>&1 ||
        { apt-get update >/dev/null && apt-get install -y "$@" >"$SERVICES_DIR/apt.log"; }
}

services_start() {
    SERVICES_DIR=$(mktemp -d /tmp/gempix-services.XXXXXX)
    [ -x "$PG_BIN/initdb" ] || _services_apt_install postgresql-15
    command -v redis-server >/dev/null || _services_apt_install redis-server
    SERVICES_OWNER=$(id -un)
    if [ "$(id -u)" = 0 ]; then
        SERVICES_OWNER=postgres
        id -u postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$SERVICES_DIR"
    fi
    local password pg_port redis_port
    password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
    pg_port=$(_services_free_port)
    printf '%s\n' "$password" >"$SERVICES_DIR/pwfile"
    chown "$SERVICES_OWNER" "$SERVICES_DIR/pwfile"
    _services_as_owner "$PG_BIN/initdb" -D "$SERVICES_DIR/pg" -U gempix --pwfile="$SERVICES_DIR/pwfile" \
        --auth=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$SERVICES_DIR/initdb.log"
    rm "$SERVICES_DIR/pwfile"
    # wal_recycle = off: the erasure procedure needs old WAL segments removed, not renamed
    # with their bytes kept (docs/store.md). fsync = off: a throwaway cluster needs no syncs.
    _services_as_owner "$PG_BIN/pg_ctl" -D "$SERVICES_DIR/pg" -l "$SERVICES_DIR/pg.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$SERVICES_DIR \
            -c wal_recycle=off -c fsync=off -c max_connections=200" start >/dev/null
    export GEMPIX_TEST_DATABASE_URL="postgresql://gempix:$password@127.0.0.1:$pg_port/postgres"
    export GEMPIX_TEST_DATABASE_DIR="$SERVICES_DIR/pg"

    redis_port=$(_services_free_port)
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --dir "$SERVICES_DIR" --daemonize yes --pidfile "$SERVICES_DIR/redis.pid" \
        --logfile "$SERVICES_DIR/redis.log"
    export GEMPIX_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/0"
    for _ in $(seq 50); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    echo "services: PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port ($SERVICES_DIR)"
}

services_stop() {
    [ -n "${SERVICES_DIR:-}" ] || return 0
    _services_as_owner "$PG_BIN/pg_ctl" -D "$SERVICES_DIR/pg" -m immediate stop >/dev/null 2>&1 || true
    [ -f "$SERVICES_DIR/redis.pid" ] && kill "$(cat "$SERVICES_DIR/redis.pid")" 2>/dev/null || true
    rm -rf "$SERVICES_DIR"
    unset SERVICES_DIR GEMPIX_TEST_DATABASE_URL GEMPIX_TEST_DATABASE_DIR GEMPIX_TEST_REDIS_URL
}
