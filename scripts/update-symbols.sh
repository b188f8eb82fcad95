#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerates debian/libbkoauth0.symbols from a build of libbkoauth.so, after the public API
# changed (for instance after a merge that adds a bkoauth_* function). The package build checks
# the file strictly (dpkg-gensymbols -c4: any difference fails it), so run this, review the
# difference it prints, and commit the file.
#   scripts/update-symbols.sh           rewrite debian/libbkoauth0.symbols
#   scripts/update-symbols.sh --check   only compare; exit 1 when the file is out of date
# Symbols already listed keep their version; new ones get the upstream version of
# project(VERSION) in CMakeLists.txt; symbols no longer exported are dropped. Needs cmake, a C
# compiler, the library's build dependencies and dpkg-dev (scripts/package.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
[ "${1:-}" = "--check" ] && check=1

symbols=debian/libbkoauth0.symbols
soname=libbkoauth.so.0
version=$(sed -n 's/^project(bkoauth VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
[ -n "$version" ] || { echo "update-symbols: no project(bkoauth VERSION ...) in CMakeLists.txt" >&2; exit 1; }

work=$(mktemp -d /tmp/bkoauth-symbols.XXXXXX)
trap 'rm -rf "$work"' EXIT
# the switches debian/rules uses (every store on), nothing but the library built
cmake -S . -B "$work/build" -DBKOAUTH_WITH_POSTGRESQL=ON -DBKOAUTH_WITH_MYSQL=ON \
      -DBKOAUTH_BUILD_TESTS=OFF -DBKOAUTH_BUILD_EXAMPLES=OFF -DBKOAUTH_BUILD_BENCH=OFF -DBKOAUTH_FUZZ=OFF \
      >"$work/build.log" 2>&1 \
  && cmake --build "$work/build" --target bkoauth -j "$(nproc 2>/dev/null || echo 2)" >>"$work/build.log" 2>&1 \
  || { cat "$work/build.log" >&2; echo "update-symbols: the build failed (above)" >&2; exit 1; }
lib=$(readlink -f "$work/build/libbkoauth.so")
got=$(objdump -p "$lib" | awk '$1 == "SONAME" {print $2}')
if [ "$got" != "$soname" ]; then
  echo "update-symbols: the library's soname is $got, not $soname: a new soname needs a new runtime" \
       "package (see debian/README.source)" >&2
  exit 1
fi

if [ -f "$symbols" ]; then
  cp "$symbols" "$work/template"
else
  printf '%s libbkoauth0 #MINVER#\n* Build-Depends-Package: libbkoauth-dev\n' "$soname" >"$work/template"
fi
# -c0: report, do not fail; symbols gone show up as "#MISSING: ..." lines, which are dropped
dpkg-gensymbols -c0 -q -plibbkoauth0 -v"$version" -e"$lib" -I"$work/template" -O"$work/generated"
grep -v '#MISSING' "$work/generated" >"$work/new"

if cmp -s "$work/new" "$work/template"; then
  echo "update-symbols: $symbols is up to date ($(grep -c '^ ' "$work/new") symbols of $soname)"
  exit 0
fi
diff -u --label "$symbols (now)" --label "$symbols (library)" "$work/template" "$work/new" || true
if [ "$check" = 1 ]; then
  echo "update-symbols: $symbols does not match the library: run bash scripts/update-symbols.sh" >&2
  exit 1
fi
cp "$work/new" "$symbols"
echo "update-symbols: wrote $symbols ($(grep -c '^ ' "$work/new") symbols of $soname); review and commit it"
