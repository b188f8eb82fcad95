#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The size rules of the tree (CONTRIBUTING.md): no file in src/ or tools/ over 800 lines, no C
# function there over 60 lines. Prints each offender and fails when there is one.
#   usage: scripts/check-layout.sh [DIR...]    (default: src tools, from the repository root)
# A function is read the way clang-format (.clang-format) lays one out: its body opens with a
# "{" in column 0 and closes with the next "}" in column 0; its definition starts at the first
# line of its signature (the lines just above the "{" back to a blank line, a comment, a
# preprocessor line or the end of the previous definition). Its length is the definition's line
# count, signature and braces included.
#   CHECK_LAYOUT_MAX_FILE=800 CHECK_LAYOUT_MAX_FUNCTION=60: the limits (for trying a tighter one)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
max_file=${CHECK_LAYOUT_MAX_FILE:-800}
max_function=${CHECK_LAYOUT_MAX_FUNCTION:-60}
[ $# -gt 0 ] || set -- src tools
for d in "$@"; do
  [ -d "$d" ] || { echo "check-layout: no directory $d under $root" >&2; exit 2; }
done

# every text file of the tree (not only C: a script or man page of 2,000 lines is as hard to
# read), as git knows them when this is a checkout, else as find sees them
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- "$@" | sort)
else
  mapfile -t files < <(find "$@" -type f | sort)
fi
[ ${#files[@]} -gt 0 ] || { echo "check-layout: no files in $*" >&2; exit 2; }

bad=0 functions=0
for f in "${files[@]}"; do
  [ -f "$f" ] || continue # deleted in the work tree
  grep -Iq . "$f" 2>/dev/null || continue # binary or empty
  lines=$(wc -l <"$f")
  if [ "$lines" -gt "$max_file" ]; then
    echo "$f: $lines lines (at most $max_file in a file)"
    bad=$((bad + 1))
  fi
  case "$f" in *.c | *.h) ;; *) continue ;; esac
  out=$(awk -v max="$max_function" -v file="$f" '
    # the first line of the signature of the definition whose "{" is on line n
    function start(n,   s) {
      s = n
      while (s > 1 && s - 1 > last_end) {
        l = text[s - 1]
        if (l ~ /^[ \t]*$/ || l ~ /^[ \t]*(\/\*|\*|\/\/|#)/ || l ~ /\*\/[ \t]*$/ || l ~ /^[};]/) break
        s--
      }
      return s
    }
    { text[NR] = $0 }
    /^\{/ { open = NR; next }
    /^\}/ && open {
      s = start(open)
      sig = ""
      for (i = s; i < open; i++) sig = sig " " text[i]
      name = sig
      sub(/\(.*/, "", name)
      n = split(name, w, /[ \t*]+/)
      name = w[n]
      len = NR - s + 1
      count++
      if (len > max) printf "%s:%d: %s(): %d lines (at most %d in a function)\n", file, s, name, len, max
      open = 0
      last_end = NR
    }
    END { printf "#functions %d\n", count }
  ' "$f")
  functions=$((functions + $(printf '%s\n' "$out" | sed -n 's/^#functions //p')))
  over=$(printf '%s\n' "$out" | grep -v '^#functions ' || true)
  if [ -n "$over" ]; then
    printf '%s\n' "$over"
    bad=$((bad + $(printf '%s\n' "$over" | wc -l)))
  fi
done
echo "check-layout: ${#files[@]} files, $functions functions in $*: $bad over the limits" \
  "($max_file lines a file, $max_function a function)"
[ "$bad" -eq 0 ]
