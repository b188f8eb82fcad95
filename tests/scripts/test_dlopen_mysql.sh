#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The MariaDB connector (and libcrypto, for the store's lock names) loaded on first use, in a
# fresh process linked with libbkoauth.so alone (tests/dlopen/first_use.c): 16 threads racing on
# the first MySQL store opening and the first SSM calls, then a fork after first use; the
# connector hidden (BKOAUTH_TEST_DLOPEN_FAIL) is an error naming libmariadb3, and the next opening,
# once it can be loaded, succeeds; the first opening with each allocation failing in turn
# (dlopen_common.sh). A database of its own, dropped after.
#   usage: test_dlopen_mysql.sh BUILD_DIR SOURCE_DIR    (BKOAUTH_TEST_MYSQL_URL, BKOAUTH_TEST_MYSQL_DIR: scripts/test.sh)
set -uo pipefail
if [ -z "${BKOAUTH_TEST_MYSQL_URL:-}" ] || [ -z "${BKOAUTH_TEST_MYSQL_DIR:-}" ]; then
  echo "SKIP: no test MariaDB server (BKOAUTH_TEST_MYSQL_URL, BKOAUTH_TEST_MYSQL_DIR: run scripts/test.sh)"
  exit 77
fi
. "$(dirname "$0")/cli_common.sh" test_dlopen_mysql "$1" "$2"
. "$(dirname "$0")/dlopen_common.sh"
FIRST="$build/tests/bkoauth-first-use"
[ -x "$FIRST" ] || { echo "test_dlopen_mysql: not built: $FIRST" >&2; exit 1; }
db="bkoauth_dlopen_$$"
admin() { mariadb --no-defaults --protocol=socket --socket="$BKOAUTH_TEST_MYSQL_DIR/sock" -uroot -N -B mysql -e "$1"; }
admin "CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci" || exit 1
trap 'admin "DROP DATABASE IF EXISTS $db"; devserver_stop; rm -rf "$work"' EXIT
url="${BKOAUTH_TEST_MYSQL_URL%/*}/$db"

store_first_use "$url" MariaDB libmariadb.so.3 libmariadb3 libmariadb.so libmariadb.so
finish
