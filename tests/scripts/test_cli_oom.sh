#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The command line with each allocation failing in turn: bkoauth token, app-token, list, refresh,
# user-token, delete and verify-jwt (with and without --json) run with their 1st, 2nd, 3rd...
# allocation failing, until a run does not reach the failing one. Every run must end as it does
# with memory (same exit status, same output) or with exit status 1 and a line
# "bkoauth: OutOfMemory: ..." on stderr: never another error, never a crash, never a secret on
# stderr. A run that failed leaves the database as good as before: the same command on it, with
# memory, succeeds (checked after every 10th failed run).
#
# It drives bkoauth-faulty, the test build of the command line with the fault-injecting
# allocator (tests/cli/bkoauth_faulty.c; BKOAUTH_TEST_FAIL_ALLOC=N). Allocations the library
# makes through its allocators count (its own, Jansson's, libcurl's); SQLite's and OpenSSL's do
# not. Settings and the client come first in every command: the first command tries those
# allocations, the others start after them. Under a sanitizer build (BKOAUTH_TEST_SANITIZED=1,
# about 0.3 s a run) every 10th allocation only; the plain build tries every one, and test_oom
# tries every one of the library's calls under the sanitizers, in one process.
#   usage: test_cli_oom.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
CLI="$build/tools/bkoauth"
FAULTY="$build/tests/bkoauth-faulty"
DEVSERVER="$build/tools/bkoauth-devserver"
for f in "$CLI" "$FAULTY" "$DEVSERVER"; do
  [ -x "$f" ] || { echo "test_cli_oom: not built: $f" >&2; exit 1; }
done
for c in openssl curl; do
  command -v "$c" >/dev/null || { echo "test_cli_oom: needs the $c command" >&2; exit 77; }
done
. "$src/scripts/lib/devserver.sh"

stride=1
[ "${BKOAUTH_TEST_SANITIZED:-0}" = 1 ] && stride=10

tmp=/tmp
[ -d /dev/shm ] && [ -w /dev/shm ] && tmp=/dev/shm # about a thousand runs, each with its database
work=$(mktemp -d "$tmp/bkoauth-cli-oom.XXXXXX")
trap 'devserver_stop; rm -rf "$work"' EXIT
cd "$work" || exit 1

SECRET=oom-cli-secret-0123456789abcdef
ALICE=cred-alice-0123456789
BOB=cred-bob-0123456789
devserver_start "$DEVSERVER" --app-code oom-cli --app-secret "$SECRET" --user "$ALICE=alice" \
  --user "$BOB=bob" || exit 1

failures=0
runs=0
relogins=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# the settings: a file (read with -c) and the environment
cat >"$work/bkoauth.conf" <<EOF
# as a Django settings snippet
OAUTH_API_URL = '$DEV_URL'
APP_CODE = 'oom-cli'
SECRET_KEY = '$SECRET'
OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}
OAUTH_PARAMS = {
    'bk_app_hint': 'cli',  # sent with user-token calls
}
EOF
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/gw.key" 2>/dev/null
openssl pkey -in "$work/gw.key" -pubout -out "$work/gw.pub" 2>/dev/null
b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
make_jwt() {
  local h p s
  h=$(printf '%s' '{"alg":"RS256","typ":"JWT"}' | b64url)
  p=$(printf '%s' "$1" | b64url)
  s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -sign "$work/gw.key" | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}
PAYLOAD="{\"iss\":\"APIGW\",\"exp\":$(($(date +%s) + 3600)),\"app\":{\"app_code\":\"gw-app\",\"verified\":true},\"user\":{\"username\":\"alice\",\"verified\":false}}"
GOOD=$(make_jwt "$PAYLOAD")
BADSIG="${GOOD%.*}.$(printf 'not the signature at all, but of a plausible length ........' | b64url)"

GWKEY=$(cat "$work/gw.pub")

# cli BINARY DB ARGS...: a run in a clean environment; sets RC, OUT, ERR
cli() {
  local bin="$1" db="$2"; shift 2
  env -i PATH="$PATH" APIGW_PUBLIC_KEY="$GWKEY" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" ${FAIL_ENV:+$FAIL_ENV} \
    "$bin" -c "$work/bkoauth.conf" -D "sqlite:$db" "$@" >"$work/out" 2>"$work/err" </dev/null
  RC=$?
  OUT=$(<"$work/out")
  ERR=$(<"$work/err")
}
normal() { FAIL_ENV="" cli "$CLI" "$@"; }

# The databases each run starts from: "full" holds the APP token and alice's, "noalice" the APP's.
normal "$work/noalice.db" app-token
cp "$work/noalice.db" "$work/full.db"
normal "$work/full.db" user-token alice --cookie "bk_token=$ALICE"
[ "$RC" = 0 ] || { echo "test_cli_oom: cannot make the databases: $ERR" >&2; exit 1; }

# what may change between two good runs: fresh tokens, times
shape() {
  sed -E -e 's/^[0-9a-f]{16,}$/T/' -e 's/"(access_token|refresh_token)": "[^"]*"/"\1": "T"/' \
    -e 's/"expires_in": [0-9-]+/"expires_in": S/' -e 's/"(expires|created_at)": "[^"]*"/"\1": "D"/'
}

# refreshes: how many refreshes the devserver granted so far
refreshes() { curl -s "$DEV_URL/__dev/counters" | grep -o '"refresh": *[0-9]*' | grep -o '[0-9]*$'; }

# sweep NAME START DB ARGS...: runs ARGS with allocation START, START+stride, ... failing, each on a
# copy of DB ("full", or "empty" for none; "relogin": full with a token of alice whose
# refresh_token is unused, from a new login whenever a run spent it), until a run does not reach
# the failing allocation. Sets ALLOCS: the number of allocations of the command.
sweep() {
  local name="$1" n="$2" from="$3"; shift 3
  local want_rc want_out failed allocs=0 s ooms=0 t=$SECONDS spent=""
  prepare() {
    rm -f "$work/run.db" "$work/run.db-wal" "$work/run.db-shm"
    case "$from" in
      empty) ;;
      full) cp "$work/full.db" "$work/run.db" ;;
      relogin)
        if [ ! -f "$work/alice.db" ] || [ "$(refreshes)" != "$spent" ]; then
          cp "$work/noalice.db" "$work/alice.db"
          normal "$work/alice.db" user-token alice --cookie "bk_token=$ALICE"
          [ "$RC" = 0 ] || fail "$name: cannot log alice in again: $ERR"
          spent=$(refreshes)
          relogins=$((relogins + 1))
        fi
        cp "$work/alice.db" "$work/run.db"
        ;;
    esac
  }
  prepare
  normal "$work/run.db" "$@"
  want_rc=$RC
  want_out=$(printf '%s' "$OUT" | shape)
  while :; do
    prepare
    rm -f "$work/report"
    FAIL_ENV="BKOAUTH_TEST_FAIL_ALLOC=$n BKOAUTH_TEST_FAIL_REPORT=$work/report" cli "$FAULTY" "$work/run.db" "$@"
    runs=$((runs + 1))
    failed="" allocs=0
    [ -f "$work/report" ] && read -r failed allocs <"$work/report"
    if [ -z "$failed" ]; then
      fail "$name, allocation $n failing: no report (exit status $RC; stderr: $ERR)"
      break
    fi
    for s in "$SECRET" "$ALICE" "$BOB"; do
      [[ "$ERR" == *"$s"* ]] && fail "$name, allocation $n failing: stderr holds a secret (${s:0:4}...)"
    done
    if [ "$RC" = "$want_rc" ] && [ "$(printf '%s' "$OUT" | shape)" = "$want_out" ]; then
      : # as with memory (a failure the code got over, or none)
    elif [ "$failed" -gt 0 ] && [ "$RC" = 1 ] && [[ "$ERR" =~ (^|$'\n')bkoauth:\ OutOfMemory:\ . ]]; then
      ooms=$((ooms + 1))
      # the database is as good as before: the same command, with memory, succeeds on it
      if [ "$from" != relogin ] && [ $((ooms % 10)) = 1 ]; then
        normal "$work/run.db" "$@"
        [ "$RC" = "$want_rc" ] || fail "$name: after OutOfMemory at allocation $n, with memory: exit $RC: $ERR"
      fi
    else
      fail "$name, allocation $n failing: exit status $RC (with memory $want_rc); stdout: $OUT; stderr: $ERR"
    fi
    [ "$failed" = 0 ] && break
    n=$((n + stride))
  done
  printf '%-36s %4d allocations, %4d OutOfMemory, %3d s\n' "$name" "$allocs" "$ooms" $((SECONDS - t))
  ALLOCS=$allocs
}

t0=$(date +%s)
# settings and the client, in every command: tried once, with the first command
sweep "delete nobody (settings, client)" 1 full delete nobody
first=$((ALLOCS + 1))
sweep "token alice" "$first" full token alice
sweep "--json token alice" "$first" full --json token alice
sweep "app-token (saved)" "$first" full app-token
sweep "app-token (fetched)" "$first" empty app-token
sweep "list" "$first" full list
sweep "--json list" "$first" full --json list
sweep "refresh alice" "$first" relogin refresh alice
sweep "user-token bob (fetched)" "$first" full user-token bob --cookie "bk_token=$BOB"
sweep "delete alice" "$first" full delete alice
sweep "--json verify-jwt (good)" "$first" full --json verify-jwt "$GOOD"
sweep "--json verify-jwt (bad signature)" "$first" full --json verify-jwt "$BADSIG"
echo "$runs runs with a failing allocation (every ${stride}), $relogins new logins for refresh, $(($(date +%s) - t0)) s"

if [ "$failures" -gt 0 ]; then
  echo "test_cli_oom: $failures failure(s)" >&2
  exit 1
fi
echo "test_cli_oom: all passed"
