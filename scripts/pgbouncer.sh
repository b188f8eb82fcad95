#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway PgBouncer in front of a test PostgreSQL cluster (scripts/pg.sh), on 127.0.0.1 and a
# free port only; its ini, auth file, pid file and log in DIR.
#   scripts/pgbouncer.sh start DIR PG_PORT MODE [POOL_SIZE [MIN_POOL_SIZE]]
#                                 MODE: session|transaction|statement;
#                                 every database of the cluster is served (a wildcard entry), user
#                                 postgres without a password; prints the port (also in DIR/port)
#   scripts/pgbouncer.sh stop DIR        stop it
#   scripts/pgbouncer.sh restart DIR     stop, then start it again on the same port
# PgBouncer refuses to run as root: as root it runs as the user postgres.
set -euo pipefail
cmd=${1:?usage: pgbouncer.sh start DIR PG_PORT MODE [POOL_SIZE] | stop DIR | restart DIR}
dir=${2:?usage: pgbouncer.sh start DIR PG_PORT MODE [POOL_SIZE] | stop DIR | restart DIR}
here=$(cd "$(dirname "$0")" && pwd)

bin=$(command -v pgbouncer || true)
[ -x /usr/sbin/pgbouncer ] && bin=/usr/sbin/pgbouncer
if [ -z "$bin" ]; then
  bash "$here/install-deps.sh"
  bin=/usr/sbin/pgbouncer
fi

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

up() {
  as_owner "$bin" -d -q "$dir/pgbouncer.ini"
  local port; port=$(cat "$dir/port")
  for _ in $(seq 1 100); do # until it listens
    if /usr/bin/python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1', $port)))"; then
      return 0
    fi
    sleep 0.05
  done
  echo "pgbouncer.sh: PgBouncer did not listen on 127.0.0.1:$port; its log:" >&2
  cat "$dir/pgbouncer.log" >&2 || true
  return 1
}

down() {
  [ -f "$dir/pgbouncer.pid" ] || return 0
  local pid; pid=$(cat "$dir/pgbouncer.pid")
  kill -TERM "$pid" 2>/dev/null || true # immediate shutdown: clients are cut, as in a crash or restart
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/pgbouncer.pid"; return 0; }
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$dir/pgbouncer.pid"
}

case "$cmd" in
  start)
    pg_port=${3:?PG_PORT}
    mode=${4:?MODE}
    pool=${5:-5}
    min_pool=${6:-0}
    [ -f "$dir/pgbouncer.pid" ] && down
    rm -rf "$dir"
    mkdir -p "$dir"
    port=$(free_port)
    echo "$port" > "$dir/port"
    echo '"postgres" ""' > "$dir/users.txt"
    cat > "$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pg_port

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = $mode
default_pool_size = $pool
min_pool_size = $min_pool
max_client_conn = 400
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
admin_users = postgres
EOF
    [ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
    up
    echo "$port"
    ;;
  stop) down ;;
  restart) down; up ;;
  *) echo "usage: pgbouncer.sh start DIR PG_PORT MODE [POOL_SIZE] | stop DIR | restart DIR" >&2; exit 2 ;;
esac
