#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The license: a LICENSE file with the MIT text, an SPDX line at the top of every source, header,
# script and CMake file, and debian/copyright stating the same license.
#   test_license.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
src=${2:?source dir}
cd "$src"
fail=0
grep -q '^MIT License$' LICENSE || { echo "LICENSE: not the MIT License"; fail=1; }
grep -q 'Copyright (c) 2026 The libbkoauth authors' LICENSE || { echo "LICENSE: copyright line missing"; fail=1; }
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files)
else
  files=$(find . -type f ! -path './build*' ! -path './.git/*' | sed 's|^\./||')
fi
checked=0
while IFS= read -r f; do
  case "$f" in
    fuzz/corpus/*) continue ;;
    *.c|*.h|*.sh|*.py|*CMakeLists.txt|*.cmake|*.cmake.in|*.pc.in|debian/rules|.ci/run) ;;
    *) continue ;;
  esac
  [ -f "$f" ] || continue
  checked=$((checked + 1))
  if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT'; then
    echo "$f: no 'SPDX-License-Identifier: MIT' in its first lines"
    fail=1
  fi
done <<< "$files"
[ "$checked" -gt 100 ] || { echo "only $checked files checked: the file list is wrong"; fail=1; }
grep -q '^License: Expat$' debian/copyright || { echo "debian/copyright: no Expat (MIT) license"; fail=1; }
grep -q 'no-license' debian/copyright && { echo "debian/copyright: still says there is no license"; fail=1; }
grep -q 'MIT' README.md || { echo "README.md: the license is not named"; fail=1; }
grep -q 'MIT' docs/zh-CN/README.md || { echo "docs/zh-CN/README.md: the license is not named"; fail=1; }
[ "$fail" = 0 ] && echo "license: $checked files carry the SPDX line; LICENSE, debian/copyright and READMEs agree"
exit "$fail"
