#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A Django app (the bkoauth model, Django's own ORM and schema editor) and libbkoauth share one
# SQLite token table, both ways, with Django's USE_TZ = True (UTC) and USE_TZ = False (local
# time; TZ=Asia/Shanghai so local differs from UTC), the latter twice: libbkoauth in the same
# zone (BKOAUTH_DB_TIME_ZONE = local) and libbkoauth running in UTC with
# BKOAUTH_DB_TIME_ZONE = Asia/Shanghai (the zone named, as Django's TIME_ZONE).
#   (a) Django creates the table and writes; libbkoauth reads, updates in place; Django reads
#       that and keeps writing (after libbkoauth switched the file to WAL); libbkoauth reads.
#   (b) libbkoauth creates the table and writes; Django reads the same aware/naive datetimes,
#       updates; libbkoauth reads Django's update.
# usage: test_django_compat.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd)
py=/usr/bin/python3
compat="$src/tests/django/compat.py"
tool="$build/tests/store_tool"
if ! "$py" -c 'import django' 2>/dev/null; then
  echo "FAIL: $py has no Django (install python3-django: scripts/install-deps.sh)" >&2
  exit 1
fi
[ -x "$tool" ] || { echo "FAIL: $tool not built" >&2; exit 1; }
work=$(mktemp -d /tmp/bkoauth-django.XXXXXX)
trap 'rm -rf "$work"' EXIT
export TZ=Asia/Shanghai
fail=0
check() { # what, got, want
  if [ "$2" != "$3" ]; then echo "FAIL: $1: got '$2', want '$3'" >&2; fail=1; else echo "ok: $1"; fi
}
sql() { sqlite3 "$1" "$2"; }
# Django's text for a Unix time: UTC (aware, +00:00) or local (naive)
django_dt() { # mode unix
  if [ "$1" = utc ]; then echo "$(date -u -d "@$2" '+%Y-%m-%d %H:%M:%S')+00:00"; else TZ=Asia/Shanghai date -d "@$2" '+%Y-%m-%d %H:%M:%S'; fi
}
stored_text() { # mode unix
  if [ "$1" = utc ]; then date -u -d "@$2" '+%Y-%m-%d %H:%M:%S'; else TZ=Asia/Shanghai date -d "@$2" '+%Y-%m-%d %H:%M:%S'; fi
}

# the C side: in zone mode it runs in UTC and is told the zone by name
ctool() { if [ "$mode" = zone ]; then TZ=UTC "$tool" "$@"; else "$tool" "$@"; fi; }
for mode in utc local zone; do
  case $mode in
    utc) use_tz=1; c_tz=UTC ;;
    local) use_tz=0; c_tz=local ;;
    zone) use_tz=0; c_tz=Asia/Shanghai ;;
  esac

  # ---- (a) Django creates the table and writes; libbkoauth reads and updates ----
  db="$work/django-$mode.db"
  $py "$compat" "$db" $use_tz create
  idx_sql="select group_concat(name, ' ') from (select name from sqlite_master where type='index' and tbl_name='bkoauth_access_token' order by name)"
  django_indexes=$(sql "$db" "$idx_sql")
  case "$django_indexes" in
    *bkoauth_access_token_env_name_*bkoauth_access_token_user_id_*) ;;
    *) echo "FAIL: $mode: Django made the indexes '$django_indexes'" >&2; fail=1 ;;
  esac
  $py "$compat" "$db" $use_tz put test - app-token-1 "" 1900000000
  $py "$compat" "$db" $use_tz put test alice alice-token-1 alice-refresh-1 1900003600.25
  check "$mode: Django wrote microseconds" \
    "$(sql "$db" "select expires from bkoauth_access_token where user_id='alice'")" \
    "$(stored_text $mode 1900003600).250000"
  IFS='|' read -r at rt exp created < <(ctool "sqlite:$db" $c_tz get test -)
  check "$mode: C reads Django's APP row" "$at|$rt|$exp" "app-token-1||1900000000"
  now=$(date +%s)
  if [ $((created - now)) -gt 5 ] || [ $((now - created)) -gt 60 ]; then
    echo "FAIL: $mode: Django's created_at read as $created, now is $now" >&2; fail=1
  else
    echo "ok: $mode: C reads Django's created_at"
  fi
  IFS='|' read -r at rt exp created < <(ctool "sqlite:$db" $c_tz get test alice)
  check "$mode: C reads Django's user row" "$at $rt $exp" "alice-token-1 alice-refresh-1 1900003600"
  check "$mode: Django's indexes used as they are, none added" "$(sql "$db" "$idx_sql")" "$django_indexes"
  check "$mode: three indexes (unique, env_name, user_id)" \
    "$(sql "$db" "select count(*) from pragma_index_list('bkoauth_access_token')")" 3
  IFS='|' read -r id_before exp_dt created_before < <($py "$compat" "$db" $use_tz show test alice)
  ctool "sqlite:$db" $c_tz put test alice alice-token-2 alice-refresh-2 1900007200 0
  IFS='|' read -r id_after exp_dt created_after < <($py "$compat" "$db" $use_tz show test alice)
  check "$mode: C updates Django's row in place (id, created_at kept)" \
    "$id_after|$created_after" "$id_before|$created_before"
  check "$mode: Django reads C's update of its row" "$exp_dt" "$(django_dt $mode 1900007200)"
  IFS='|' read -r at rt exp created < <($py "$compat" "$db" $use_tz get test alice)
  check "$mode: Django reads C's tokens" "$at $rt $exp" "alice-token-2 alice-refresh-2 1900007200"
  # Django keeps writing the file libbkoauth opened (journal mode as libbkoauth left it)
  $py "$compat" "$db" $use_tz update test - app-token-2 1950000000
  $py "$compat" "$db" $use_tz put test carol carol-token-1 "" 1960000000
  IFS='|' read -r at rt exp created < <(ctool "sqlite:$db" $c_tz get test -)
  check "$mode: C reads Django's later APP update" "$at|$exp" "app-token-2|1950000000"
  IFS='|' read -r at rt exp created < <(ctool "sqlite:$db" $c_tz get test carol)
  check "$mode: C reads Django's later insert" "$at|$exp" "carol-token-1|1960000000"
  check "$mode: the database is sound" "$(sql "$db" "pragma integrity_check")" ok

  # ---- (b) libbkoauth creates the table and writes; Django reads and updates ----
  db="$work/c-$mode.db"
  ctool "sqlite:$db" $c_tz put test - c-app-token "" 2000000000 1800000000
  ctool "sqlite:$db" $c_tz put test bob bob-token-1 bob-refresh-1 2000007200 1800000000
  # the columns of the model (Django's create_model here makes them in the model's order; the
  # whole definition, as the three migrations leave it, is test_django_takeover.sh's)
  cols="select group_concat(d, ' ') from (select name || ':' || type || ':' || \"notnull\" || ':' || pk as d from pragma_table_info('bkoauth_access_token') order by name)"
  check "$mode: C's table has Django's columns" "$(sql "$db" "$cols")" "$(sql "$work/django-$mode.db" "$cols")"
  check "$mode: C writes the APP row with user_id NULL" \
    "$(sql "$db" "select typeof(user_id) from bkoauth_access_token where access_token='c-app-token'")" null
  IFS='|' read -r at rt exp created < <($py "$compat" "$db" $use_tz get test -)
  check "$mode: Django reads C's APP row" "$at|$rt|$exp" "c-app-token||2000000000"
  IFS='|' read -r at rt exp created < <($py "$compat" "$db" $use_tz get test bob)
  check "$mode: Django reads C's user row" "$at $rt $exp $created" "bob-token-1 bob-refresh-1 2000007200 1800000000"
  IFS='|' read -r id exp_dt created_dt < <($py "$compat" "$db" $use_tz show test bob)
  check "$mode: Django's datetimes of C's row (aware UTC / naive local)" "$exp_dt|$created_dt" \
    "$(django_dt $mode 2000007200)|$(django_dt $mode 1800000000)"
  $py "$compat" "$db" $use_tz update test bob bob-token-2 2100000000
  IFS='|' read -r at rt exp created < <(ctool "sqlite:$db" $c_tz get test bob)
  check "$mode: C reads Django's update" "$at $rt $exp $created" "bob-token-2 bob-refresh-1 2100000000 1800000000"
  check "$mode: stored text is Django's" \
    "$(sql "$db" "select expires || '|' || created_at from bkoauth_access_token where user_id='bob'")" \
    "$(stored_text $mode 2100000000)|$(stored_text $mode 1800000000)"
done
exit $fail
