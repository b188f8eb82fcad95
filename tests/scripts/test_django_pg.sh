#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A Django app on PostgreSQL (the bkoauth model, Django's ORM and schema editor, psycopg2) and
# libbkoauth share one token table both ways, with USE_TZ True and False. Needs the test
# server of BKOAUTH_TEST_PG_URL (scripts/test.sh starts one); skipped (77) without it.
set -euo pipefail
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd)
[ -n "${BKOAUTH_TEST_PG_URL:-}" ] || { echo "no BKOAUTH_TEST_PG_URL: skipped"; exit 77; }
py=/usr/bin/python3
compat="$src/tests/django/compat.py"
tool="$build/tests/store_tool"
export TZ=Asia/Shanghai
base=${BKOAUTH_TEST_PG_URL%/*}
fail=0
check() { if [ "$2" != "$3" ]; then echo "FAIL: $1: got '$2', want '$3'" >&2; fail=1; else echo "ok: $1"; fi; }
psql_admin() { psql "$BKOAUTH_TEST_PG_URL" -q -v ON_ERROR_STOP=1 -c "$1"; }

for use_tz in 1 0; do
  db="bkoauth_django_$$_$use_tz"
  psql_admin "CREATE DATABASE $db"
  url="$base/$db"
  # (a) Django creates the table and writes; libbkoauth reads
  $py "$compat" "$url" $use_tz create
  idx_before=$(psql "$url" -Atc "select count(*) from pg_indexes where tablename='bkoauth_access_token'")
  $py "$compat" "$url" $use_tz put test - app-token-1 "" 1900000000
  $py "$compat" "$url" $use_tz put test alice alice-token-1 alice-refresh-1 1900003600
  IFS='|' read -r at rt exp created < <("$tool" "$url" UTC get test -)
  check "USE_TZ=$use_tz: C reads Django's APP row" "$at|$rt|$exp" "app-token-1||1900000000"
  IFS='|' read -r at rt exp created < <("$tool" "$url" UTC get test alice)
  check "USE_TZ=$use_tz: C reads Django's user row" "$at|$rt|$exp" "alice-token-1|alice-refresh-1|1900003600"
  # (b) libbkoauth writes into Django's table; Django reads, updates; libbkoauth reads it back
  "$tool" "$url" UTC put test bob bob-token-1 bob-refresh-1 2000007200 1800000000
  IFS='|' read -r at rt exp created < <($py "$compat" "$url" $use_tz get test bob)
  check "USE_TZ=$use_tz: Django reads C's row" "$at|$rt|$exp|$created" "bob-token-1|bob-refresh-1|2000007200|1800000000"
  $py "$compat" "$url" $use_tz update test bob bob-token-2 2100000000
  IFS='|' read -r at rt exp created < <("$tool" "$url" UTC get test bob)
  check "USE_TZ=$use_tz: C reads Django's update" "$at|$rt|$exp|$created" "bob-token-2|bob-refresh-1|2100000000|1800000000"
  # the column types Django made are kept, and no index was added
  check "USE_TZ=$use_tz: expires is timestamptz" \
    "$(psql "$url" -Atc "select data_type from information_schema.columns where table_name='bkoauth_access_token' and column_name='expires'")" \
    "timestamp with time zone"
  # (c) libbkoauth creates the table in an empty database; Django uses it
  db2="${db}_c"
  psql_admin "CREATE DATABASE $db2"
  "$tool" "$base/$db2" UTC put test carol carol-token-1 carol-refresh-1 2000000000 1800000000
  IFS='|' read -r at rt exp created < <($py "$compat" "$base/$db2" $use_tz get test carol)
  check "USE_TZ=$use_tz: Django reads a table C created" "$at|$exp|$created" "carol-token-1|2000000000|1800000000"
  check "USE_TZ=$use_tz: Django's indexes kept as they are" \
    "$(psql "$url" -Atc "select count(*) from pg_indexes where tablename='bkoauth_access_token'")" "$idx_before"
  psql_admin "DROP DATABASE $db WITH (FORCE)"
  psql_admin "DROP DATABASE $db2 WITH (FORCE)"
done
exit $fail
