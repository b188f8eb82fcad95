#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
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
# the static archive as pkg-config --static gives it (-Wl,-Bstatic takes libbkoauth.a for
# -lbkoauth; its dependencies stay shared): libcurl, libcrypto, libpq and the MariaDB connector
# are loaded on first use, so none of them is linked, and the program carries the archive's
# .note.dlopen notes
cc -std=c11 -Wall -Wextra -Werror "$src/tests/outside/outside.c" -o "$work/outside-static" \
   $(pkg-config --cflags bkoauth) -Wl,-Bstatic -lbkoauth -Wl,-Bdynamic \
   $(pkg-config --static --libs bkoauth | sed 's/\(^\| \)-lbkoauth\( \|$\)/ /')
# Namespace: every global name the installed libraries define begins with bkoauth_ (internal
# ones are local), and a program with names of its own like the library's internal ones links
# the static archive and runs
for lib in "$libdir/libbkoauth.a" "$libdir/libbkoauth.so"; do
  if [ "${lib##*.}" = so ]; then names=$(nm -D --defined-only "$lib" | awk '{print $NF}')
  else names=$(nm -g --defined-only "$lib" | awk 'NF == 3 {print $3}'); fi
  bad=$(printf '%s\n' "$names" | grep -v -e '^bkoauth_[a-z]' -e '^$' || true)
  [ -z "$bad" ] || { echo "$(basename "$lib") defines global names outside bkoauth_: $bad" >&2; exit 1; }
  printf '%s\n' "$names" | grep -q '^bkoauth_get_access_token$' || { echo "$lib: no bkoauth_get_access_token" >&2; exit 1; }
done
cat >"$work/clash.c" <<'C'
#include <bkoauth.h>
#include <stdio.h>
/* names the library uses inside: they must not clash with a program's own */
int log_write(void) { return 1; }
int cache_new(void) { return 2; }
int store_open(void) { return 3; }
int http_new(void) { return 4; }
int err_set(void) { return 5; }
int buf_append(void) { return 6; }
int dt_parse(void) { return 7; }
int key_hash(void) { return 8; }
int pool_get(void) { return 9; }
int main(void)
{
    bkoauth_config *c = bkoauth_config_new();
    int sum = log_write() + cache_new() + store_open() + http_new() + err_set() + buf_append() + dt_parse() +
              key_hash() + pool_get();
    bkoauth_config_free(c);
    printf("%d %s\n", sum, bkoauth_version());
    return sum == 45 ? 0 : 1;
}
C
cc -std=c11 -Wall -Werror -Wno-missing-prototypes "$work/clash.c" -o "$work/clash" $(pkg-config --cflags bkoauth) \
   "$libdir/libbkoauth.a" $(pkg-config --print-requires-private bkoauth | xargs pkg-config --libs) -lpthread
"$work/clash" >/dev/null
cmake -S "$src/tests/outside" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
for prog in "$work/outside-static" "$work/cmake-build/outside-static"; do
  if readelf -d "$prog" | grep -Eq 'NEEDED.*(libbkoauth|libcurl|libpq|libmariadb|libcrypto|libssl)\.'; then
    echo "$prog links $(readelf -d "$prog" | grep NEEDED)" >&2; exit 1
  fi
  [ "$(readelf -n "$prog" | grep -c 'FDO .*0x407c0c0a')" -ge 4 ] || { echo "$prog lacks the .note.dlopen notes of libbkoauth.a" >&2; exit 1; }
done

export LD_LIBRARY_PATH="$libdir"
devserver_start "$work/prefix/bin/bkoauth-devserver" --app-code outside-app --app-secret outside-secret \
  --user "cred-olga=olga"
for backend in "" bk_token; do
  for prog in "$work/outside-pc" "$work/outside-static" "$work/cmake-build/outside" "$work/cmake-build/outside-static"; do
    db="$work/$(basename "$prog")-$(basename "$(dirname "$prog")")-${backend:-ieod}.db"
    env -i PATH="$PATH" LD_LIBRARY_PATH="$libdir" OAUTH_API_URL="$DEV_URL" APP_CODE=outside-app \
      SECRET_KEY=outside-secret OAUTH_COOKIES_PARAMS='{"bk_token": "bk_token"}' BKAUTH_BACKEND_TYPE="$backend" \
      BKOAUTH_DATABASE_URL="sqlite:$db" OUTSIDE_USER=olga OUTSIDE_COOKIE="bk_token=cred-olga" "$prog"
  done
done
echo "install test: pkg-config (shared, static) and CMake (shared, static) consumers passed on both protocols"
