#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A Django app's table taken over and handed back on PostgreSQL (tests/scripts/django_takeover.sh):
# libbkoauth's table is the one the bkoauth app's three Django migrations make (their hashed index
# names and varchar_pattern_ops "_like" twins), recorded with `manage.py migrate bkoauth --fake`;
# a table Django made is used with no DDL. Needs the test server of BKOAUTH_TEST_PG_URL
# (scripts/test.sh starts one); skipped (77) without it.
#   usage: test_django_takeover_pg.sh BUILD_DIR SOURCE_DIR
[ -n "${BKOAUTH_TEST_PG_URL:-}" ] || { echo "no BKOAUTH_TEST_PG_URL: skipped"; exit 77; }
. "$(dirname "$0")/django_takeover.sh" "$1" "$2"
"$py" -c 'import psycopg2' || { echo "FAIL: $py lacks psycopg2 (scripts/install-deps.sh)" >&2; exit 1; }
base=${BKOAUTH_TEST_PG_URL%/*}
dump() { # the table, its sequence, keys and indexes as pg_dump gives them (without its comments and
  # the \restrict lines' random keys)
  pg_dump --schema-only --table=bkoauth_access_token "$1" | grep -v -e '^--' -e '^$' -e '^\\restrict' -e '^\\unrestrict'
}
admin() { psql "$BKOAUTH_TEST_PG_URL" -q -v ON_ERROR_STOP=1 -c "$1"; }
c="bkoauth_takeover_$$_c"; d="bkoauth_takeover_$$_d"
admin "CREATE DATABASE $c" && admin "CREATE DATABASE $d" || exit 1
trap 'admin "DROP DATABASE IF EXISTS $c WITH (FORCE)"; admin "DROP DATABASE IF EXISTS $d WITH (FORCE)"; rm -rf "$work"' EXIT
takeover_run postgresql "$base/$c" "$base/$c" "$base/$d" "$base/$d"
exit $fail
