#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/outside/outside.c outside the project
# with pkg-config and with CMake's find_package, and runs it against bkoauth-devserver on both
# protocols.
set -euo pipefail
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd)
. "$src/scripts/lib/devserver.sh"
work=$(mktemp -d /tmp/bkoauth-install-test.XXXXXX)
trap 'devserver_stop; rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
pcdir=$(dirname "$(find "$work/prefix" -name bkoauth.pc | head -1)")
libdir=$(dirname "$pcdir")
for f in "$work/prefix/include/bkoauth.h" "$libdir/libbkoauth.so" "$libdir/libbkoauth.a" \
         "$libdir/cmake/bkoauth/bkoauthConfig.cmake" "$work/prefix/bin/bkoauth-devserver"; do
  [ -e "$f" ] || { echo "not installed: $f" >&2; exit 1; }
done

export PKG_CONFIG_PATH="$pcdir"
cc -std=c11 -Wall -Wextra -Werror "$src/tests/outside/outside.c" -o "$work/outside-pc" $(pkg-config --cflags --libs bkoauth)
# the static archive, with the dependencies named in Requires.private (their shared libraries)
cc -std=c11 -Wall -Wextra -Werror "$src/tests/outside/outside.c" -o "$work/outside-static" \
   $(pkg-config --cflags bkoauth) "$libdir/libbkoauth.a" \
   $(pkg-config --print-requires-private bkoauth | xargs pkg-config --libs) -lpthread
cmake -S "$src/tests/outside" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake-build" >/dev/null

export LD_LIBRARY_PATH="$libdir"
devserver_start "$work/prefix/bin/bkoauth-devserver" --app-code outside-app --app-secret outside-secret \
  --user "cred-olga=olga"
for backend in "" bk_token; do
  for prog in "$work/outside-pc" "$work/outside-static" "$work/cmake-build/outside"; do
    db="$work/$(basename "$prog")-${backend:-ieod}.db"
    env -i PATH="$PATH" LD_LIBRARY_PATH="$libdir" OAUTH_API_URL="$DEV_URL" APP_CODE=outside-app \
      SECRET_KEY=outside-secret OAUTH_COOKIES_PARAMS='{"bk_token": "bk_token"}' BKAUTH_BACKEND_TYPE="$backend" \
      BKOAUTH_DATABASE_URL="sqlite:$db" OUTSIDE_USER=olga OUTSIDE_COOKIE="bk_token=cred-olga" "$prog"
  done
done
echo "install test: pkg-config (shared, static) and CMake consumers passed on both protocols"
