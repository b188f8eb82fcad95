#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A Django app's table taken over and handed back on MariaDB (tests/scripts/django_takeover.sh):
# libbkoauth's table is the one the bkoauth app's three Django migrations make, recorded with
# `manage.py migrate bkoauth --fake` (the former `--fake-initial` ran 0003 and stopped at
# "Duplicate key name 'bkoauth_access_token_env_name_736cbdc5'"); a table Django made is used
# with no DDL. Needs the test server of BKOAUTH_TEST_MYSQL_URL and BKOAUTH_TEST_MYSQL_DIR
# (scripts/test.sh starts one); skipped (77) without it.
#   usage: test_django_takeover_mysql.sh BUILD_DIR SOURCE_DIR
[ -n "${BKOAUTH_TEST_MYSQL_URL:-}" ] && [ -n "${BKOAUTH_TEST_MYSQL_DIR:-}" ] || { echo "no BKOAUTH_TEST_MYSQL_URL: skipped"; exit 77; }
. "$(dirname "$0")/django_takeover.sh" "$1" "$2"
"$py" -c 'import MySQLdb' || { echo "FAIL: $py lacks MySQLdb (scripts/install-deps.sh)" >&2; exit 1; }
base=${BKOAUTH_TEST_MYSQL_URL%/*}
sql() { # DB SQL
  mariadb --no-defaults --protocol=socket --socket="$BKOAUTH_TEST_MYSQL_DIR/sock" -uroot -N -B "$1" -e "$2"
}
dump() { # the table's definition without its AUTO_INCREMENT counter (DJANGO_DB is the URL)
  sql "${1##*/}" "SHOW CREATE TABLE bkoauth_access_token" | cut -f2- | sed -e 's/ AUTO_INCREMENT=[0-9]*//'
}
c="bkoauth_takeover_$$_c"; d="bkoauth_takeover_$$_d"
sql mysql "CREATE DATABASE $c CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci" &&
  sql mysql "CREATE DATABASE $d CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci" || exit 1
trap 'sql mysql "DROP DATABASE IF EXISTS $c"; sql mysql "DROP DATABASE IF EXISTS $d"; rm -rf "$work"' EXIT
takeover_run mysql "$base/$c" "$base/$c" "$base/$d" "$base/$d"
exit $fail
