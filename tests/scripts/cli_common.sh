# SPDX-License-Identifier: MIT
# cli_common.sh - what the command line's test scripts share, sourced as
#   . "$(dirname "$0")/cli_common.sh" NAME BUILD_DIR SOURCE_DIR
# Sets build, src, CLI, DEVSERVER, PY; checks that the programs are built; sources
# scripts/lib/devserver.sh; makes the work directory $work (removed at exit, with the devserver
# stopped) and enters it; defines the check counters (fail, ok, finish) and the expectations on
# RC, OUT and ERR that the script's own run() sets.
cli_name=$1
build=$(cd "$2" && pwd)
src=$(cd "$3" && pwd)
CLI="$build/tools/bkoauth"
DEVSERVER="$build/tools/bkoauth-devserver"
PY=/usr/bin/python3
for f in "$CLI" "$DEVSERVER"; do
  [ -x "$f" ] || { echo "$cli_name: not built: $f" >&2; exit 1; }
done
. "$src/scripts/lib/devserver.sh"

work=$(mktemp -d "/tmp/bkoauth-$cli_name.XXXXXX")
trap 'devserver_stop; rm -rf "$work"' EXIT
cd "$work" || exit 1

failures=0
checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
# finish: the summary line; the exit status says whether every check held
finish() {
  echo "$cli_name: $checks checks, $failures failures"
  [ "$failures" -eq 0 ]
}

expect_rc() { # status, what
  if [ "$RC" -eq "$1" ]; then ok; else fail "$2: exit status $RC, expected $1; stdout: $OUT; stderr: $ERR"; fi
}
expect_err() { # regex, what
  if [[ "$ERR" =~ $1 ]]; then ok; else fail "$2: stderr does not match /$1/: $ERR"; fi
}
expect_out() { # regex, what
  if [[ "$OUT" =~ $1 ]]; then ok; else fail "$2: stdout does not match /$1/: $OUT"; fi
}
expect_eq() { # actual, expected, what
  if [ "$1" = "$2" ]; then ok; else fail "$3: got '$1', expected '$2'"; fi
}
expect_ne() { # actual, unexpected, what
  if [ "$1" != "$2" ]; then ok; else fail "$3: both are '$1'"; fi
}
