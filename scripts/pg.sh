#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway PostgreSQL cluster for the tests, on 127.0.0.1 and a free port only.
#   scripts/pg.sh start DIR     initdb into DIR (fresh), start, create database bkoauth_test;
#                               writes the URL to DIR/url and prints it
#   scripts/pg.sh stop DIR      stop it (the directory stays; start makes it anew)
#   scripts/pg.sh restart DIR   stop, then start the same cluster on the same port
#   scripts/pg.sh down DIR / up DIR   stop / start without touching the data (for restart tests)
set -euo pipefail
cmd=${1:?usage: pg.sh start|stop|restart|down|up DIR}
dir=${2:?usage: pg.sh start|stop|restart|down|up DIR}
here=$(cd "$(dirname "$0")" && pwd)

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  bash "$here/install-deps.sh"
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi

as_owner() { # run a server command as the cluster's owner (initdb refuses root)
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

up() {
  local port; port=$(cat "$dir/port")
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" start >/dev/null
}

down() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null || true
  fi
}

case "$cmd" in
  start)
    [ -d "$dir/data" ] && down
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    free_port > "$dir/port"
    up
    port=$(cat "$dir/port")
    as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -q -c "CREATE DATABASE bkoauth_test" postgres
    echo "postgresql://postgres@127.0.0.1:$port/bkoauth_test" > "$dir/url"
    cat "$dir/url"
    ;;
  stop) down ;;
  down) down ;;
  up) up ;;
  restart) down; up ;;
  *) echo "usage: pg.sh start|stop|restart|down|up DIR" >&2; exit 2 ;;
esac
