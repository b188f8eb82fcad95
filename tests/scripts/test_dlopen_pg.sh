#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# libpq loaded on first use, in a fresh process linked with libbkoauth.so alone
# (tests/dlopen/first_use.c): 16 threads racing on the first PostgreSQL store opening and the first
# SSM calls, then a fork after first use; libpq hidden (BKOAUTH_TEST_DLOPEN_FAIL) is an error naming
# libpq5, and the next opening, once it can be loaded, succeeds; the first opening with each
# allocation failing in turn (dlopen_common.sh). A database of its own, dropped after.
#   usage: test_dlopen_pg.sh BUILD_DIR SOURCE_DIR    (BKOAUTH_TEST_PG_URL, BKOAUTH_TEST_PG_DIR: scripts/test.sh)
set -uo pipefail
if [ -z "${BKOAUTH_TEST_PG_URL:-}" ] || [ -z "${BKOAUTH_TEST_PG_DIR:-}" ]; then
  echo "SKIP: no test PostgreSQL cluster (BKOAUTH_TEST_PG_URL, BKOAUTH_TEST_PG_DIR: run scripts/test.sh)"
  exit 77
fi
. "$(dirname "$0")/cli_common.sh" test_dlopen_pg "$1" "$2"
. "$(dirname "$0")/dlopen_common.sh"
FIRST="$build/tests/bkoauth-first-use"
[ -x "$FIRST" ] || { echo "test_dlopen_pg: not built: $FIRST" >&2; exit 1; }
pg_port=$(cat "$BKOAUTH_TEST_PG_DIR/port")
psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
db="bkoauth_dlopen_$$"
server() { "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -X -A -t -q -v ON_ERROR_STOP=1 -d postgres "$@"; }
server -c "CREATE DATABASE \"$db\"" || exit 1
trap 'server -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"; devserver_stop; rm -rf "$work"' EXIT
url="postgresql://postgres@127.0.0.1:$pg_port/$db"

store_first_use "$url" PostgreSQL libpq.so.5 libpq5 libpq.so libcurl.so
finish
