#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL server for the tests: a fresh cluster in DIR, listening on
# 127.0.0.1 only (a free port) and on a socket in DIR. `start` writes the connection string to DIR/dsn.
# usage: pg-test-server.sh start|stop DIR
set -euo pipefail
action="${1:?usage: pg-test-server.sh start|stop DIR}"
dir="${2:?usage: pg-test-server.sh start|stop DIR}"
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "pg-test-server: PostgreSQL server binaries not found (scripts/setup.sh installs package postgresql)" >&2
  exit 1
fi
# The server refuses to run as root: run it as the postgres system user when we are root.
run() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$action" in
  start)
    "$0" stop "$dir" >/dev/null 2>&1 || true
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
    run "$bin/initdb" -D "$dir/data" -U medicus --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || {
      cat "$dir/initdb.log" >&2; exit 1; }
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir -c fsync=on" start >/dev/null
    echo "host=127.0.0.1 port=$port user=medicus dbname=postgres" > "$dir/dsn"
    echo "pg-test-server: started on 127.0.0.1:$port ($dir)"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      run "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
      echo "pg-test-server: stopped ($dir)"
    fi
    ;;
  *) echo "usage: pg-test-server.sh start|stop DIR" >&2; exit 2 ;;
esac
