#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The manual pages keep up with the code: bkoauth(3) shows the synopsis of every function
# bkoauth.h exports (BKOAUTH_API) and describes it, and names no function the header lacks; the
# build makes a page per function that shows bkoauth(3); bkoauth-devserver(1) explains every
# option `bkoauth-devserver --help` lists; and, where man is installed, the pages render without
# a warning.
set -euo pipefail
build=$(cd "$1" && pwd); src=$(cd "$2" && pwd)
fail() { echo "test_man: FAIL: $*" >&2; exit 1; }
page="$src/docs/man/bkoauth.3"

api=$(sed -n 's/^BKOAUTH_API .*[ *]\(bkoauth_[a-z0-9_]*\)(.*/\1/p' "$src/include/bkoauth.h" | sort -u)
[ "$(echo "$api" | wc -l)" -ge 20 ] || fail "found only $(echo "$api" | wc -l) BKOAUTH_API functions in bkoauth.h"
synopsis=$(sed -n '/^\.SH SYNOPSIS/,/^\.SH /p' "$page")
description=$(sed -n '/^\.SH DESCRIPTION/,/^\.SH RETURN VALUE/p' "$page")
for fn in $api; do
  grep -q "[ *]$fn(" <<<"$synopsis" || fail "bkoauth(3) has no synopsis of $fn (docs/man/bkoauth.3)"
  grep -q "^\.BR $fn ()" <<<"$description" || fail "bkoauth(3) does not describe $fn (no '.BR $fn ()' in DESCRIPTION)"
  [ "$(cat "$build/docs/man/man3/$fn.3" 2>/dev/null)" = ".so man3/bkoauth.3" ] \
    || fail "the build has no page $fn.3 showing bkoauth(3) ($build/docs/man/man3/$fn.3)"
done
stale=$(grep -o 'bkoauth_[a-z0-9_]*(' <<<"$synopsis" | tr -d '(' | sort -u | comm -23 - <(echo "$api"))
[ -z "$stale" ] || fail "bkoauth(3) shows functions bkoauth.h does not export: $stale"

options=$("$build/tools/bkoauth-devserver" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
[ "$(echo "$options" | wc -l)" -ge 8 ] || fail "bkoauth-devserver --help lists only: $options"
for o in $options; do
  grep -q "^\.B[IR]* *$(sed 's/-/\\\\-/g' <<<"$o")\b" "$src/tools/devserver/bkoauth-devserver.1" \
    || fail "bkoauth-devserver(1) has no entry for $o"
done

agent_options=$("$build/tools/bkoauth-agent" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
[ "$(echo "$agent_options" | wc -l)" -ge 10 ] || fail "bkoauth-agent --help lists only: $agent_options"
for o in $agent_options; do
  grep -q "^\.B[IR]* .*$(sed 's/-/\\\\-/g' <<<"$o")\b" "$src/tools/agent/bkoauth-agent.1" \
    || fail "bkoauth-agent(1) has no entry for $o"
done
# bkoauth(1) explains every option of `bkoauth --help`
cli_options=$("$build/tools/bkoauth" --help | grep -o -- '--[a-z][a-z-]*' | sort -u)
for o in $cli_options; do
  grep -q "^\.B[IR]* .*$(sed 's/-/\\\\-/g' <<<"$o")\b" "$src/tools/bkoauth.1" || fail "bkoauth(1) has no entry for $o"
done

if command -v man >/dev/null 2>&1; then
  for f in "$page" "$src/tools/devserver/bkoauth-devserver.1" "$src/tools/bkoauth.1" "$src/tools/agent/bkoauth-agent.1"; do
    warnings=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$f" 2>&1 >/dev/null || true)
    [ -z "$warnings" ] || fail "$f renders with warnings: $warnings"
  done
  rendered="rendered without warnings"
else
  rendered="not rendered (man is not installed)"
fi
echo "test_man: bkoauth(3) covers the $(echo "$api" | wc -l) functions of bkoauth.h, bkoauth-devserver(1) its" \
     "$(echo "$options" | wc -l) options, bkoauth-agent(1) its $(echo "$agent_options" | wc -l); pages $rendered"
