#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages libbkoauth needs to build, test, fuzz and benchmark.
# Idempotent: packages already present are skipped; nothing is done when all are present.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang
  libcurl4-openssl-dev libjansson-dev libsqlite3-dev libmicrohttpd-dev libcmocka-dev
  libssl-dev libpq-dev postgresql sqlite3 openssl curl python3 python3-django python3-psycopg2
  python3-jwt python3-cryptography
  libmariadb-dev mariadb-server mariadb-client python3-mysqldb tzdata
  libfaketime faketime
  tinyproxy-bin stunnel4 pgbouncer
  abigail-tools
  golang-go
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
# the tests start their own throwaway MariaDB (scripts/mysql.sh): installing mariadb-server must
# not start (or enable) the system's service, so the package scripts are told not to (nor
# pgbouncer's: tests/scripts/test_pgbouncer_pg.sh starts its own)
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\ncase "$1" in mariadb|mysql|mariadb.service|mysql.service|pgbouncer|pgbouncer.service) exit 101;; esac\nexit 0\n' \
    | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
stamp=/var/lib/apt/periodic/update-success-stamp
if [ ! -d /var/lib/apt/lists/partial ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ] \
   || ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
