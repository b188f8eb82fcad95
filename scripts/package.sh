#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the Debian packages libbkoauth0, libbkoauth-dev, bkoauth-tools and bkoauth-devserver
# (debian/), checks them with lintian and prints where the .deb files are.
#   scripts/package.sh [OUTDIR]     default OUTDIR: build-deb/ in the source tree
# Installs what the build needs first (idempotent: nothing is installed when all is there).
# The source tree is copied to OUTDIR/libbkoauth-VERSION/ and built there, so the build leaves nothing in the
# tree and writes nothing beside it. DEB_BUILD_OPTIONS is honoured (nocheck skips the unit
# tests; parallel=N). Any lintian error or warning fails the script: a warning that is right
# for these packages is overridden in debian/*.lintian-overrides, with the reason beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(pwd)
out=${1:-build-deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# ---- the build's own tools, then the Build-Depends of debian/control -------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
# the packaging tools and the store headers: the package set of scripts/install-deps.sh
bash scripts/install-deps.sh package
apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || $SUDO apt-get update -qq; apt_updated=1; }
profiles=""
case " ${DEB_BUILD_OPTIONS:-} " in *" nocheck "*) profiles=nocheck ;; esac
if ! dpkg-checkbuilddeps ${profiles:+-P"$profiles"} >/dev/null 2>&1; then
  echo "package: installing the Build-Depends of debian/control" >&2
  $SUDO apt-get build-dep -y -qq ${profiles:+-P "$profiles"} "$src" >/dev/null 2>&1 \
    || { apt_update; $SUDO apt-get build-dep -y ${profiles:+-P "$profiles"} "$src"; }
fi

# ---- versions: debian/changelog must package the version CMake builds -------------------------
upstream=$(sed -n 's/^project(bkoauth VERSION \([0-9][0-9.]*\).*/\1/p' CMakeLists.txt)
debversion=$(dpkg-parsechangelog -S Version)
if [ "${debversion%-*}" != "$upstream" ]; then
  echo "package: debian/changelog packages $debversion but CMakeLists.txt builds $upstream:" \
       "add a debian/changelog entry for $upstream-1 (see debian/README.source)" >&2
  exit 1
fi

# ---- a clean copy of the tree (tracked and new files, not ignored build directories) --------
stage="$out/libbkoauth-$upstream"
rm -rf "$stage"
mkdir -p "$stage"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard \
    | (cd "$src" && xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
    | tar -C "$src" --null -T - -cf - | tar -C "$stage" -xf -
else
  tar -C "$src" --exclude='./build*' --exclude=./.git --exclude="./${out#"$src"/}" -cf - . | tar -C "$stage" -xf -
fi
rm -f "$out"/*.deb "$out"/*.ddeb "$out"/*.changes "$out"/*.buildinfo

# ---- build ---------------------------------------------------------------------------------
echo "== dpkg-buildpackage -us -uc -b (DEB_BUILD_OPTIONS=${DEB_BUILD_OPTIONS:-})"
start=$(date +%s)
(cd "$stage" && dpkg-buildpackage -us -uc -b -Jauto ${profiles:+-P"$profiles"}) >"$out/build.log" 2>&1 || {
  tail -n 60 "$out/build.log" >&2
  echo "package: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  if grep -q '^dpkg-gensymbols: error' "$out/build.log"; then
    echo "package: debian/libbkoauth0.symbols does not match the library's exported symbols:" \
         "run bash scripts/update-symbols.sh, review the difference and commit it" >&2
  fi
  exit 1
}
echo "built in $(( $(date +%s) - start )) s (log: $out/build.log)"

# ---- lintian --------------------------------------------------------------------------------
changes=$(ls "$out"/libbkoauth_*.changes)
echo "== lintian $(basename "$changes")"
# --fail-on none and the verdict read from the tags: with --show-overrides, lintian 2.116 also
# counts overridden tags for --fail-on
lintian --fail-on none --display-info --show-overrides "$changes" >"$out/lintian.log" 2>&1 \
  || { cat "$out/lintian.log" >&2; echo "package: lintian could not run" >&2; exit 1; }
grep -v '^running with root privileges is not recommended!$' "$out/lintian.log" || true
errors=$(grep -c '^E: ' "$out/lintian.log" || true)
warnings=$(grep -c '^W: ' "$out/lintian.log" || true)
echo "lintian: $errors errors, $warnings warnings, $(grep -c '^O: ' "$out/lintian.log" || true) overridden (reasons in debian/*.lintian-overrides)"
if [ "$errors" != 0 ] || [ "$warnings" != 0 ]; then
  echo "package: lintian found errors or warnings (above): fix them, or override a warning that is" \
       "right for these packages in debian/<package>.lintian-overrides with the reason" >&2
  exit 1
fi

echo "== packages in $out:"
ls -1 "$out"/*.deb
