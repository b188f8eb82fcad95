# SPDX-License-Identifier: MIT
# dlopen_common.sh - what tests/scripts/test_dlopen_pg.sh and test_dlopen_mysql.sh share, sourced
# after cli_common.sh and with the devserver started (DEV_URL):
#   firstuse VAR=VALUE... PROGRAM ARGS...   a run in a clean environment with the devserver's
#                                          settings; sets RC and OUT (stdout and stderr)
#   oom_first_use URL    `bkoauth-faulty -D URL token alice` (tests/cli/bkoauth_faulty.c) in
#                        fresh processes, with its 1st, 2nd, 3rd... allocation failing in turn,
#                        until a run does not reach the failing one: the store's library is loaded
#                        on first use in each. Every run ends as with memory (alice's saved token)
#                        or with exit status 1 and "bkoauth: OutOfMemory: ..." on stderr; never
#                        another error, never a crash. Alice's token must be saved in URL first.
DL_APP_CODE=dl-app
DL_APP_SECRET=dl-secret-0123456789abcdef
firstuse() {
  env -i PATH="$PATH" OAUTH_API_URL="$DEV_URL" APP_CODE="$DL_APP_CODE" SECRET_KEY="$DL_APP_SECRET" \
    "OAUTH_COOKIES_PARAMS={'bk_token': 'bk_token'}" "$@" >"$work/out" 2>&1
  RC=$?
  OUT=$(cat "$work/out")
}

oom_first_use() {
  local url=$1 faulty="$build/tests/bkoauth-faulty" n=1 failed allocs want err ooms=0 t=$SECONDS
  [ -x "$faulty" ] || { fail "not built: $faulty"; return; }
  firstuse "$CLI" -D "$url" token alice
  want=$OUT
  [ "$RC" = 0 ] && [ -n "$want" ] || { fail "token alice on the store, with memory: $OUT"; return; }
  while :; do
    rm -f "$work/report"
    env -i PATH="$PATH" OAUTH_API_URL="$DEV_URL" APP_CODE="$DL_APP_CODE" SECRET_KEY="$DL_APP_SECRET" \
      BKOAUTH_TEST_FAIL_ALLOC=$n BKOAUTH_TEST_FAIL_REPORT="$work/report" ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
      "$faulty" -D "$url" token alice >"$work/out" 2>"$work/err" </dev/null
    RC=$?
    OUT=$(<"$work/out")
    err=$(<"$work/err")
    failed="" allocs=0
    [ -f "$work/report" ] && read -r failed allocs <"$work/report"
    if [ -z "$failed" ]; then
      fail "first use, allocation $n failing: no report (exit status $RC; stderr: $err)"
      break
    fi
    if [ "$RC" = 0 ] && [ "$OUT" = "$want" ]; then
      : # as with memory
    elif [ "$failed" -gt 0 ] && [ "$RC" = 1 ] && [[ "$err" =~ (^|$'\n')bkoauth:\ OutOfMemory:\ . ]]; then
      ooms=$((ooms + 1))
    else
      fail "first use, allocation $n failing: exit status $RC; stdout: $OUT; stderr: $err"
    fi
    [ "$failed" = 0 ] && break
    n=$((n + 1))
  done
  # not vacuous: the sweep went past the settings into the store's opening and read
  [ "$allocs" -ge 20 ] && [ "$ooms" -ge 10 ] || fail "first use under OOM: only $allocs allocations, $ooms OutOfMemory"
  ok
  echo "first use of $(sed 's/:.*//' <<<"$url") under OOM: $allocs allocations, $ooms OutOfMemory, $((SECONDS - t)) s"
}
