#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every allocation of the library goes through its allocators (src/base/alloc.c: bkoauth__malloc,
# bkoauth__calloc, bkoauth__realloc, bkoauth__free, bkoauth__strdup, bkoauth__strndup,
# bkoauth__json_loadb, bkoauth__json_dump), so that bkoauth_set_allocators() reaches all of it
# and every failure is counted. Checked on the compiled objects: none but alloc.c.o may call the
# C library's allocation functions, or Jansson's parsers and json_dumps() (whose string belongs to
# Jansson's allocator, and which Jansson 2.14 may return with a key left out when out of memory).
#   usage: test_alloc_calls.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
objdir="$build/CMakeFiles/bkoauth_objects.dir/src"
[ -d "$objdir" ] || { echo "test_alloc_calls: no objects in $objdir" >&2; exit 1; }
command -v nm >/dev/null || { echo "test_alloc_calls: needs nm (binutils)" >&2; exit 77; }

forbidden='^(malloc|calloc|realloc|reallocarray|free|strdup|strndup|asprintf|vasprintf|json_dumps|json_dumpf|json_dump_file|json_loads|json_loadb|json_loadf|json_load_file)$'

failures=0
checked=0
while IFS= read -r obj; do
  rel=${obj#"$objdir"/}
  [ "$rel" = base/alloc.c.o ] && continue
  checked=$((checked + 1))
  calls=$(nm -u "$obj" | awk '{print $NF}' | grep -E "$forbidden" | tr '\n' ' ')
  if [ -n "$calls" ]; then
    echo "FAIL: $rel calls $calls(use the bkoauth__ functions of src/internal.h and src/base/json.h)" >&2
    failures=$((failures + 1))
  fi
done < <(find "$objdir" -name '*.o' | sort)

[ "$checked" -gt 5 ] || { echo "test_alloc_calls: only $checked objects found" >&2; exit 1; }
if [ "$failures" -gt 0 ]; then
  echo "test_alloc_calls: $failures object(s) allocate around the library's allocators" >&2
  exit 1
fi
echo "test_alloc_calls: $checked objects allocate through the library's allocators only"
