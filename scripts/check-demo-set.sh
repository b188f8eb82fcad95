#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks that the demo set of scripts/install-deps.sh is enough, on a machine that has more
# installed, without removing anything: in a private mount namespace (unshare -m, as root) the
# headers and pkg-config files of every installed -dev package outside the demo set and what it
# depends on are hidden (libpq-dev, libmariadb-dev and libcmocka-dev among them); there
#  1. a plain `cmake -S . -B DIR` configures, says which parts it leaves out, and builds;
#  2. scripts/demo.sh builds and runs the main job end to end.
# Nothing outside the namespace changes: the mounts end with it.
#   usage: bash scripts/check-demo-set.sh [--configure-only]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${BKOAUTH_IN_DEMO_NAMESPACE:-}" != 1 ]; then
  [ "$(id -u)" -eq 0 ] || { echo "check-demo-set: needs root (unshare -m)" >&2; exit 2; }
  bash scripts/install-deps.sh demo
  empty=$(mktemp -d /tmp/bkoauth-demo-empty.XXXXXX) # mounted over header directories inside
  rc=0
  BKOAUTH_IN_DEMO_NAMESPACE=1 BKOAUTH_DEMO_EMPTY="$empty" unshare -m --propagation private bash "$0" "$@" || rc=$?
  rmdir "$empty"
  exit $rc
fi

# ---- inside the namespace: hide what the demo set does not bring ------------------------------
# the demo set's packages and everything they depend on (installed), by name without :arch
mapfile -t demo < <(bash scripts/install-deps.sh --list demo 2>/dev/null | awk '{print $1}')
keep=$(mktemp /tmp/bkoauth-demo-keep.XXXXXX)
apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${demo[@]}" 2>/dev/null | grep -E '^[a-z0-9]' | sed 's/:.*//' | sort -u >"$keep"
mapfile -t hide < <(dpkg-query -W -f='${Package}\n' | grep -- '-dev$' | sort -u | comm -23 - "$keep")
# files the kept packages own must stay even when a hidden package owns them too
kept_files=$(mktemp /tmp/bkoauth-demo-files.XXXXXX)
{ xargs dpkg -L <"$keep" 2>/dev/null || true; } | sort -u >"$kept_files"
hidden=0
empty=$BKOAUTH_DEMO_EMPTY
for f in $({ dpkg -L "${hide[@]}" 2>/dev/null || true; } | grep -E '^/usr/(include|lib|share)/.*(\.h|\.hpp|\.pc)$' | sort -u | comm -23 - "$kept_files"); do
  [ -f "$f" ] || continue
  mount --bind /dev/null "$f"
  hidden=$((hidden + 1))
done
# a header directory that only hidden packages fill: empty it as a whole
for d in $({ dpkg -L "${hide[@]}" 2>/dev/null || true; } | grep -E '^/usr/include/[^/]+$' | sort -u | comm -23 - "$kept_files"); do
  [ -d "$d" ] && mount --bind "$empty" "$d"
done
# pkg-config reads an empty .pc file as a broken package: name only the kept modules' directories
# and leave out the empty files
pcdir=$(mktemp -d /tmp/bkoauth-demo-pc.XXXXXX)
for f in $(grep -E '\.pc$' "$kept_files"); do
  [ -s "$f" ] && ln -sf "$f" "$pcdir/"
done
export PKG_CONFIG_LIBDIR="$pcdir"
echo "check-demo-set: ${#hide[@]} -dev packages outside the demo set hidden ($hidden files), e.g." \
  "$(printf '%s\n' "${hide[@]}" | grep -E '^lib(pq|mariadb|cmocka)-dev$' | tr '\n' ' ')"
for h in libpq-fe.h mariadb/mysql.h cmocka.h; do
  if [ -s "/usr/include/$h" ] || [ -s "/usr/include/postgresql/$h" ]; then
    echo "check-demo-set: $h is still visible" >&2
    exit 1
  fi
done

build=$(mktemp -d /tmp/bkoauth-demo-build.XXXXXX)
trap 'rm -rf "$build" "$pcdir" "$keep" "$kept_files"' EXIT
echo "== a plain configure with the demo set: cmake -S . -B $build"
cmake -S . -B "$build" -DBKOAUTH_WERROR=ON >"$build.log" 2>&1 || { cat "$build.log"; rm -f "$build.log"; exit 1; }
grep -E "left out|^-- bkoauth:|BKOAUTH_BUILD_DEVSERVER" "$build.log" || true
rm -f "$build.log"
[ "${1:-}" = "--configure-only" ] && exit 0
echo "== cmake --build $build"
cmake --build "$build" -j 2 >"$build.log" 2>&1 || { tail -40 "$build.log"; rm -f "$build.log"; exit 1; }
rm -f "$build.log"
echo "== scripts/demo.sh with the demo set"
bash scripts/demo.sh
echo "check-demo-set: the demo set configures the library and runs the demo"
