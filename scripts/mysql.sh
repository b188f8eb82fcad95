#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A throwaway MariaDB server for the tests, on 127.0.0.1 and a free port only (never the system's
# service, never its data directory or configuration).
#   scripts/mysql.sh start DIR     mariadb-install-db into DIR (fresh), start, create database
#                                  bkoauth_test and a user with a password that needs escaping
#                                  in a URL; writes the URL to DIR/url and prints it
#   scripts/mysql.sh stop DIR      stop it (the directory stays; start makes it anew)
#   scripts/mysql.sh restart DIR   stop, then start the same server on the same port
#   scripts/mysql.sh down DIR / up DIR   stop / start without touching the data (restart tests)
# Installs mariadb-server (scripts/install-deps.sh) when it is missing.
set -euo pipefail
cmd=${1:?usage: mysql.sh start|stop|restart|down|up DIR}
dir=${2:?usage: mysql.sh start|stop|restart|down|up DIR}
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  bash "$here/install-deps.sh"
fi
server=/usr/sbin/mariadbd
[ -x "$server" ] || server=$(command -v mariadbd)

run_as=()
owner_opt=()
if [ "$(id -u)" -eq 0 ]; then # the server refuses to run as root unless told which user
  owner_opt=(--user=mysql)
  run_as=(runuser -u mysql --)
fi

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

admin() { # SQL as root over the server's own socket
  mariadb --no-defaults --protocol=socket --socket="$dir/sock" -uroot -e "$1"
}

up() {
  local port; port=$(cat "$dir/port")
  # settings of a test server: loopback only, no binary log, no fsync (like pg.sh's fsync=off),
  # small buffers; the character set Debian's own configuration gives new databases
  setsid "$server" --no-defaults "${owner_opt[@]}" --datadir="$dir/data" --socket="$dir/sock" \
    --pid-file="$dir/pid" --log-error="$dir/error.log" --port="$port" --bind-address=127.0.0.1 \
    --skip-name-resolve --skip-log-bin --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
    --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --sync-binlog=0 --max-connections=500 \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --performance-schema=0 --innodb-buffer-pool-dump-at-shutdown=0 --innodb-buffer-pool-load-at-startup=0 \
    --innodb-temp-data-file-path=ibtmp1:1M:autoextend --loose-feedback=0 </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 300); do
    if mariadb-admin --no-defaults --protocol=socket --socket="$dir/sock" -uroot ping >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "mysql.sh: the server did not start; its log:" >&2
  tail -20 "$dir/error.log" >&2 || true
  return 1
}

down() {
  [ -f "$dir/pid" ] || return 0
  local pid; pid=$(cat "$dir/pid" 2>/dev/null || true)
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || true # SIGTERM: a normal shutdown
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$dir/pid"; return 0; }
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
}

case "$cmd" in
  start)
    [ -d "$dir/data" ] && down
    rm -rf "$dir"
    mkdir -p "$dir"
    [ "$(id -u)" -eq 0 ] && chown mysql: "$dir"
    "${run_as[@]}" mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
      --skip-test-db --skip-name-resolve >"$dir/install.log" 2>&1 || {
      cat "$dir/install.log" >&2
      exit 1
    }
    free_port > "$dir/port"
    up
    port=$(cat "$dir/port")
    # a user that reaches the server over TCP only, with a password that needs %XX in a URL
    admin "CREATE USER 'bkoauth'@'127.0.0.1' IDENTIFIED BY 'p@ss:w/rd%1';
           GRANT ALL PRIVILEGES ON *.* TO 'bkoauth'@'127.0.0.1';
           CREATE DATABASE bkoauth_test CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;"
    echo "mysql://bkoauth:p%40ss%3Aw%2Frd%251@127.0.0.1:$port/bkoauth_test" > "$dir/url"
    cat "$dir/url"
    ;;
  stop) down ;;
  down) down ;;
  up) up ;;
  restart) down; up ;;
  *) echo "usage: mysql.sh start|stop|restart|down|up DIR" >&2; exit 2 ;;
esac
