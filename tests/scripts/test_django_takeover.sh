#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A Django app's table taken over and handed back on SQLite (tests/scripts/django_takeover.sh):
# libbkoauth's table is the one the bkoauth app's three Django migrations make, recorded with
# `manage.py migrate bkoauth --fake`; a table Django made is used with no DDL.
#   usage: test_django_takeover.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/django_takeover.sh" "$1" "$2"
dump() { # the table and its indexes as SQLite keeps them
  sqlite3 "$1" "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'bkoauth_access_token' ORDER BY name"
}
takeover_run sqlite "sqlite:$work/c.db" "$work/c.db" "sqlite:$work/django.db" "$work/django.db"
exit $fail
