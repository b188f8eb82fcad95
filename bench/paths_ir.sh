#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench_paths_ir for one libbkoauth.so on SQLite: starts this tree's bkoauth-devserver on a free
# loopback port, saves alice's token with this tree's `bkoauth user-token`, builds
# bench/bench_paths_ir.c against LIBDIR/libbkoauth.so and runs it under callgrind; prints the
# instructions per call of the hot path (20,000 cached calls) and of the store path (2,000 calls
# with the cache off). Needs valgrind.
#   bash bench/paths_ir.sh TOOLS_BUILD_DIR LIBDIR
#   e.g. bash bench/paths_ir.sh build build; bash bench/paths_ir.sh build /tmp/before/build
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
tools=$(cd "$1" && pwd)/tools
lib=$(cd "$2" && pwd)
d=$(mktemp -d /tmp/bkoauth-paths-ir.XXXXXX)
"$tools/bkoauth-devserver" --listen 127.0.0.1:0 --port-file "$d/port" --quiet --app-code irapp \
  --app-secret irsecret --user cred-alice=alice >/dev/null 2>&1 &
dev=$!
trap 'kill $dev 2>/dev/null; wait $dev 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 100); do [ -s "$d/port" ] && break; sleep 0.1; done
export OAUTH_API_URL="http://127.0.0.1:$(cat "$d/port")" APP_CODE=irapp SECRET_KEY=irsecret \
  OAUTH_COOKIES_PARAMS="{'bk_token': 'bk_token'}" BKOAUTH_DATABASE_URL="sqlite:$d/t.db"
"$tools/bkoauth" user-token alice --cookie "bk_token=cred-alice" >/dev/null
cc -O2 -g -I"$src/include" "$src/bench/bench_paths_ir.c" -o "$d/ir" -L"$lib" -lbkoauth -Wl,-rpath,"$lib"
valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file="$d/cg" "$d/ir" alice 20000 2000 >/dev/null 2>&1
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ {gsub(",", "", $1); print $1}'; }
[ -n "${BKOAUTH_IR_KEEP:-}" ] && cp "$d/cg.1" "$d/cg.2" "$BKOAUTH_IR_KEEP"/
hot=$(total "$d/cg.1")
store=$(total "$d/cg.2")
echo "hot path: $((hot / 20000)) instructions per call; store path (SQLite): $((store / 2000)) instructions per call ($lib/libbkoauth.so)"
