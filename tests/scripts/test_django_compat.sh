#!/usr/bin/env bash
# A Django app (the bkoauth model, Django's own ORM and schema editor) and libbkoauth share one
# SQLite token table, both ways, with Django's USE_TZ = True (UTC) and USE_TZ = False (local
# time; TZ=Asia/Shanghai so local differs from UTC).
set -euo pipefail
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd)
py=/usr/bin/python3
compat="$src/tests/django/compat.py"
tool="$build/tests/store_tool"
work=$(mktemp -d /tmp/bkoauth-django.XXXXXX)
trap 'rm -rf "$work"' EXIT
export TZ=Asia/Shanghai
fail=0
check() { # what, got, want
  if [ "$2" != "$3" ]; then echo "FAIL: $1: got '$2', want '$3'" >&2; fail=1; else echo "ok: $1"; fi
}

for mode in utc local; do
  if [ $mode = utc ]; then use_tz=1; c_tz=UTC; else use_tz=0; c_tz=local; fi
  # (a) Django creates the table and writes; libbkoauth reads
  db="$work/django-$mode.db"
  $py "$compat" "$db" $use_tz create
  $py "$compat" "$db" $use_tz put test - app-token-1 "" 1900000000
  $py "$compat" "$db" $use_tz put test alice alice-token-1 alice-refresh-1 1900003600
  IFS='|' read -r at rt exp created < <("$tool" "sqlite:$db" $c_tz get test -)
  check "$mode: C reads Django's APP row" "$at|$rt|$exp" "app-token-1||1900000000"
  IFS='|' read -r at rt exp created < <("$tool" "sqlite:$db" $c_tz get test alice)
  check "$mode: C reads Django's user row" "$at $rt $exp" "alice-token-1 alice-refresh-1 1900003600"
  check "$mode: Django's indexes used as they are, none added" \
    "$(sqlite3 "$db" "select count(*) from pragma_index_list('bkoauth_access_token')")" 3
  now=$(date +%s)
  [ $((created - now)) -le 5 ] && [ $((now - created)) -le 60 ] || { echo "FAIL: $mode: created_at $created vs now $now" >&2; fail=1; }
  # (b) libbkoauth creates the table and writes; Django reads, updates; libbkoauth reads it back
  db="$work/c-$mode.db"
  "$tool" "sqlite:$db" $c_tz put test - c-app-token "" 2000000000 1800000000
  "$tool" "sqlite:$db" $c_tz put test bob bob-token-1 bob-refresh-1 2000007200 1800000000
  IFS='|' read -r at rt exp created < <($py "$compat" "$db" $use_tz get test -)
  check "$mode: Django reads C's APP row" "$at|$rt|$exp" "c-app-token||2000000000"
  IFS='|' read -r at rt exp created < <($py "$compat" "$db" $use_tz get test bob)
  check "$mode: Django reads C's user row" "$at $rt $exp $created" "bob-token-1 bob-refresh-1 2000007200 1800000000"
  $py "$compat" "$db" $use_tz update test bob bob-token-2 2100000000
  IFS='|' read -r at rt exp created < <("$tool" "sqlite:$db" $c_tz get test bob)
  check "$mode: C reads Django's update" "$at $rt $exp $created" "bob-token-2 bob-refresh-1 2100000000 1800000000"
  # the text itself is Django's format
  raw=$(sqlite3 "$db" "select expires from bkoauth_access_token where user_id='bob'")
  if [ $mode = utc ]; then want=$(date -u -d @2100000000 '+%Y-%m-%d %H:%M:%S'); else want=$(date -d @2100000000 '+%Y-%m-%d %H:%M:%S'); fi
  check "$mode: stored text" "$raw" "$want"
done
exit $fail
