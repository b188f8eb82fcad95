#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A build with every optional part off (no PostgreSQL, no MySQL, no devserver; SQLite only):
# it builds and installs without libpq, the MariaDB client or libmicrohttpd linked in, and an
# outside program compiles against it with pkg-config (shared and static) and runs, against the
# devserver of the main build. A PostgreSQL or MySQL URL there is a ConfigError saying so.
#   usage: test_minimal_build.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd)
. "$src/scripts/lib/devserver.sh"
work=$(mktemp -d /tmp/bkoauth-minimal.XXXXXX)
trap 'devserver_stop; rm -rf "$work"' EXIT

cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBKOAUTH_WERROR=ON \
  -DBKOAUTH_WITH_POSTGRESQL=OFF -DBKOAUTH_WITH_MYSQL=OFF -DBKOAUTH_BUILD_DEVSERVER=OFF \
  -DBKOAUTH_BUILD_TESTS=OFF -DBKOAUTH_BUILD_EXAMPLES=OFF -DBKOAUTH_BUILD_BENCH=OFF >/dev/null
cmake --build "$work/build" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
cmake --install "$work/build" --prefix "$work/prefix" >/dev/null
pcdir=$(dirname "$(find "$work/prefix" -name bkoauth.pc | head -1)")
libdir=$(dirname "$pcdir")

fail() { echo "minimal build: $*" >&2; exit 1; }
[ -e "$work/prefix/bin/bkoauth-devserver" ] && fail "the devserver was installed"
[ -x "$work/prefix/bin/bkoauth" ] || fail "the command line was not installed"
needed=$(objdump -p "$libdir/libbkoauth.so" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
for dep in libpq libmariadb libmysqlclient libmicrohttpd; do
  [[ "$needed" == *"$dep"* ]] && fail "libbkoauth.so needs $dep: $needed"
done
grep -E '^Requires.private:' "$pcdir/bkoauth.pc" | grep -qE 'libpq|mariadb|microhttpd' &&
  fail "bkoauth.pc requires a store it was built without: $(grep Requires.private "$pcdir/bkoauth.pc")"

export PKG_CONFIG_PATH="$pcdir"
cc -std=c11 -Wall -Wextra -Werror "$src/tests/outside/outside.c" -o "$work/outside-pc" $(pkg-config --cflags --libs bkoauth)
cc -std=c11 -Wall -Wextra -Werror "$src/tests/outside/outside.c" -o "$work/outside-static" \
  $(pkg-config --cflags bkoauth) "$libdir/libbkoauth.a" \
  $(pkg-config --print-requires-private bkoauth | xargs pkg-config --libs) -lpthread
static_needed=$(objdump -p "$work/outside-static" | awk '/NEEDED/ {print $2}' | tr '\n' ' ')
for dep in libpq libmariadb libmicrohttpd; do
  [[ "$static_needed" == *"$dep"* ]] && fail "a program linked with the minimal libbkoauth.a needs $dep"
done

devserver_start "$build/tools/bkoauth-devserver" --app-code min-app --app-secret min-secret --user "cred-olga=olga"
for prog in "$work/outside-pc" "$work/outside-static"; do
  env -i PATH="$PATH" LD_LIBRARY_PATH="$libdir" OAUTH_API_URL="$DEV_URL" APP_CODE=min-app SECRET_KEY=min-secret \
    OAUTH_COOKIES_PARAMS='{"bk_token": "bk_token"}' BKOAUTH_DATABASE_URL="sqlite:$work/$(basename "$prog").db" \
    OUTSIDE_USER=olga OUTSIDE_COOKIE="bk_token=cred-olga" "$prog" >/dev/null
done
for url in "postgresql://u@127.0.0.1:1/x" "mysql://u@127.0.0.1:1/x"; do
  set +e
  out=$(env -i PATH="$PATH" LD_LIBRARY_PATH="$libdir" OAUTH_API_URL="$DEV_URL" BKOAUTH_DATABASE_URL="$url" \
    "$work/prefix/bin/bkoauth" list 2>&1)
  rc=$?
  set -e
  [ "$rc" = 5 ] || fail "$url in the minimal build: exit $rc, want 5 (ConfigError): $out"
  [[ "$out" == *"built without"* ]] || fail "$url in the minimal build does not say what the build lacks: $out"
done
echo "minimal build: SQLite only, no libpq / MariaDB client / libmicrohttpd; outside programs ran"
