#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Compares the ABI of libbkoauth.so between two commits with abidiff (Debian's abigail-tools):
# each commit is checked out into a temporary git worktree and built there (RelWithDebInfo:
# abidiff reads the types from the debug information; both stores on, as the packages build),
# then `abidiff` compares the two shared libraries, restricted to the types of their public
# header (include/bkoauth.h of each). Prints the command and abidiff's report; the exit status
# is abidiff's (0: no change; see abidiff(1) for the bits of the others).
#   bash scripts/abi-check.sh [BASE [NEW]]     default BASE: 071e69e (the last build before the
#                                              restructuring of src/ and tools/), NEW: HEAD
# Nothing in the working tree changes: the builds and worktrees live under a temporary
# directory, removed at the end (BKOAUTH_ABI_KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-071e69e}
new=${2:-HEAD}
bash scripts/install-deps.sh abi

work=$(mktemp -d /tmp/bkoauth-abi.XXXXXX)
cleanup() {
  for side in base new; do
    [ -d "$work/$side" ] && git worktree remove --force "$work/$side" >/dev/null 2>&1 || true
  done
  if [ "${BKOAUTH_ABI_KEEP:-0}" = 1 ]; then echo "abi-check: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

build() { # side, commit
  local side=$1 commit=$2
  git worktree add --detach "$work/$side" "$commit" >/dev/null 2>&1
  echo "abi-check: $side = $(git -C "$work/$side" log -1 --format='%h %s' | cut -c1-90)" >&2
  cmake -S "$work/$side" -B "$work/build-$side" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DBKOAUTH_WITH_POSTGRESQL=ON -DBKOAUTH_WITH_MYSQL=ON -DBKOAUTH_BUILD_DEVSERVER=OFF \
    -DBKOAUTH_BUILD_TESTS=OFF -DBKOAUTH_BUILD_EXAMPLES=OFF -DBKOAUTH_BUILD_BENCH=OFF \
    >"$work/$side.log" 2>&1 || { cat "$work/$side.log" >&2; exit 2; }
  cmake --build "$work/build-$side" -j 2 --target bkoauth >>"$work/$side.log" 2>&1 ||
    { tail -30 "$work/$side.log" >&2; exit 2; }
}
build base "$base"
build new "$new"

lib() { readlink -f "$work/build-$1/libbkoauth.so"; }
cmd=(abidiff --headers-dir1 "$work/base/include" --headers-dir2 "$work/new/include" "$(lib base)" "$(lib new)")
echo "\$ abidiff --headers-dir1 BASE/include --headers-dir2 NEW/include BASE/libbkoauth.so NEW/libbkoauth.so"
rc=0
"${cmd[@]}" || rc=$?
if [ "$rc" = 0 ]; then
  echo "abi-check: no ABI change between $base and $new (abidiff exit status 0)"
else
  echo "abi-check: abidiff exit status $rc between $base and $new"
fi
exit "$rc"
