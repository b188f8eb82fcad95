#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A Django app on MySQL / MariaDB (the bkoauth model, Django's ORM and schema editor, mysqlclient)
# and libbkoauth share one token table both ways:
#   USE_TZ = True (rows in UTC; BKOAUTH_DB_TIME_ZONE = UTC), and
#   USE_TZ = False with TIME_ZONE = "Asia/Shanghai" (rows in naive Shanghai time;
#   BKOAUTH_DB_TIME_ZONE = Asia/Shanghai) while the C process runs with TZ=UTC.
# The table libbkoauth creates is the one Django creates; user names are exact (Alice is not
# alice) although the collation is case-insensitive. Needs the test server of
# BKOAUTH_TEST_MYSQL_URL and BKOAUTH_TEST_MYSQL_DIR (scripts/test.sh starts one); skipped (77)
# without it.
set -euo pipefail
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd)
[ -n "${BKOAUTH_TEST_MYSQL_URL:-}" ] && [ -n "${BKOAUTH_TEST_MYSQL_DIR:-}" ] || { echo "no BKOAUTH_TEST_MYSQL_URL: skipped"; exit 77; }
py=/usr/bin/python3
"$py" -c 'import django, MySQLdb' || { echo "FAIL: $py lacks Django or MySQLdb (scripts/install-deps.sh)" >&2; exit 1; }
compat="$src/tests/django/compat.py"
tool="$build/tests/store_tool"
base=${BKOAUTH_TEST_MYSQL_URL%/*}
fail=0
check() { if [ "$2" != "$3" ]; then echo "FAIL: $1: got '$2', want '$3'" >&2; fail=1; else echo "ok: $1"; fi; }
sql() { # DB SQL
  mariadb --no-defaults --protocol=socket --socket="$BKOAUTH_TEST_MYSQL_DIR/sock" -uroot -N -B "$1" -e "$2"
}
admin() { sql mysql "$1"; }
# Django runs in its TIME_ZONE (as manage.py sets it), the C side in UTC
django() { TZ=Asia/Shanghai "$py" "$compat" "$@"; }
c_tool() { TZ=UTC "$tool" "$@"; }
wall() { # ZONE UNIX -> the wall time Django stores
  TZ=$1 date -d "@$2" '+%Y-%m-%d %H:%M:%S.000000'
}
shape() { # DB: the table's definition without its AUTO_INCREMENT counter
  sql "$1" "SHOW CREATE TABLE bkoauth_access_token" | cut -f2- | sed -e 's/ AUTO_INCREMENT=[0-9]*//'
}

for use_tz in 1 0; do
  if [ $use_tz = 1 ]; then zone=UTC; else zone=Asia/Shanghai; fi
  db="bkoauth_django_$$_$use_tz"
  admin "CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
  url="$base/$db"

  # (a) Django creates the table and writes; libbkoauth reads
  django "$url" $use_tz create
  django "$url" $use_tz put test - app-token-1 "" 1900000000
  django "$url" $use_tz put test alice alice-token-1 alice-refresh-1 1900003600.25
  check "USE_TZ=$use_tz: Django's row holds $zone wall time" \
    "$(sql "$db" "SELECT expires FROM bkoauth_access_token WHERE access_token = 'alice-token-1'")" \
    "$(TZ=$zone date -d @1900003600 '+%Y-%m-%d %H:%M:%S').250000"
  IFS='|' read -r at rt exp created < <(c_tool "$url" $zone get test -)
  check "USE_TZ=$use_tz: C reads Django's APP row" "$at|$rt|$exp" "app-token-1||1900000000"
  now=$(date +%s)
  if [ $((created - now)) -gt 5 ] || [ $((now - created)) -gt 60 ]; then
    echo "FAIL: USE_TZ=$use_tz: Django's created_at read as $created, now is $now" >&2; fail=1
  else
    echo "ok: USE_TZ=$use_tz: C reads Django's created_at"
  fi
  IFS='|' read -r at rt exp created < <(c_tool "$url" $zone get test alice)
  check "USE_TZ=$use_tz: C reads Django's user row" "$at|$rt|$exp" "alice-token-1|alice-refresh-1|1900003600"

  # (b) libbkoauth writes into Django's table; Django reads, updates; libbkoauth reads it back
  c_tool "$url" $zone put test bob bob-token-1 bob-refresh-1 2000007200 1800000000
  check "USE_TZ=$use_tz: C writes $zone wall time" \
    "$(sql "$db" "SELECT CONCAT(expires, '|', created_at) FROM bkoauth_access_token WHERE access_token = 'bob-token-1'")" \
    "$(wall $zone 2000007200)|$(wall $zone 1800000000)"
  IFS='|' read -r at rt exp created < <(django "$url" $use_tz get test bob)
  check "USE_TZ=$use_tz: Django reads C's row" "$at|$rt|$exp|$created" "bob-token-1|bob-refresh-1|2000007200|1800000000"
  django "$url" $use_tz update test bob bob-token-2 2100000000
  IFS='|' read -r at rt exp created < <(c_tool "$url" $zone get test bob)
  check "USE_TZ=$use_tz: C reads Django's update" "$at|$rt|$exp|$created" "bob-token-2|bob-refresh-1|2100000000|1800000000"
  c_tool "$url" $zone put test alice alice-token-2 alice-refresh-2 2000003600 0
  IFS='|' read -r at rt exp created < <(django "$url" $use_tz get test alice)
  check "USE_TZ=$use_tz: Django reads C's update of its row" "$at|$rt|$exp" "alice-token-2|alice-refresh-2|2000003600"
  check "USE_TZ=$use_tz: updated in place" \
    "$(sql "$db" "SELECT COUNT(*) FROM bkoauth_access_token WHERE user_id = 'alice'")" 1

  # Alice is not alice, although the collation says they are equal
  if c_tool "$url" $zone get test Alice >/dev/null 2>&1; then
    echo "FAIL: USE_TZ=$use_tz: Alice got alice's token" >&2; fail=1
  else
    echo "ok: USE_TZ=$use_tz: Alice has no token of her own yet"
  fi
  c_tool "$url" $zone put test Alice big-alice-token "" 2000000000 1800000000
  IFS='|' read -r at rt exp created < <(c_tool "$url" $zone get test alice)
  check "USE_TZ=$use_tz: alice keeps her token when Alice saves one" "$at" "alice-token-2"
  IFS='|' read -r at rt exp created < <(c_tool "$url" $zone get test Alice)
  check "USE_TZ=$use_tz: Alice reads her own" "$at" "big-alice-token"
  check "USE_TZ=$use_tz: two rows, exact names" \
    "$(sql "$db" "SELECT GROUP_CONCAT(user_id ORDER BY BINARY user_id SEPARATOR ',') FROM bkoauth_access_token WHERE user_id = 'alice'")" \
    "Alice,alice"

  # (c) libbkoauth creates the table in an empty database: Django's table, and Django uses it
  db2="${db}_c"
  admin "CREATE DATABASE $db2 CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
  c_tool "$base/$db2" $zone put test carol carol-token-1 carol-refresh-1 2000000000 1800000000
  check "USE_TZ=$use_tz: C's table is Django's (columns, keys, index names)" "$(shape "$db2")" "$(shape "$db")"
  IFS='|' read -r at rt exp created < <(django "$base/$db2" $use_tz get test carol)
  check "USE_TZ=$use_tz: Django reads a table C created" "$at|$exp|$created" "carol-token-1|2000000000|1800000000"
  django "$base/$db2" $use_tz put test dave dave-token-1 "" 2000000100
  IFS='|' read -r at rt exp created < <(c_tool "$base/$db2" $zone get test dave)
  check "USE_TZ=$use_tz: Django writes into C's table" "$at|$exp" "dave-token-1|2000000100"
  admin "DROP DATABASE $db"
  admin "DROP DATABASE $db2"
done
exit $fail
