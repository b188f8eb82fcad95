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
#   store_first_use URL NAME SONAME PACKAGE MAPPED CHILD   the checks of a server store's first use
#                        ($FIRST: tests/dlopen/first_use.c): the devserver started; with SONAME
#                        hidden, a StoreError naming PACKAGE and a retry that succeeds; 16 threads
#                        racing on the first call map MAPPED once, and the child of a fork after
#                        it has CHILD mapped; then user-token alice and oom_first_use on URL.
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

store_first_use() {
  local url=$1 name=$2 soname=$3 package=$4 mapped=$5 child=$6
  devserver_start "$DEVSERVER" --app-code "$DL_APP_CODE" --app-secret "$DL_APP_SECRET" \
    --user cred-alice-0123456789=alice || exit 1
  firstuse BKOAUTH_DATABASE_URL=sqlite:"$work/retry.db" "$FIRST" retry "$url"
  expect_rc 0 "bkoauth-first-use retry ($soname): $OUT"
  expect_out "$soname hidden: StoreError .*install the package $package" "$soname hidden"
  firstuse BKOAUTH_DATABASE_URL="$url" "$FIRST" race
  expect_rc 0 "bkoauth-first-use race ($name): $OUT"
  expect_out "after the race: $mapped mapped" "the race loaded $mapped"
  expect_out "in the child: $child mapped" "the child after fork"
  firstuse "$CLI" -D "$url" user-token alice --cookie bk_token=cred-alice-0123456789
  expect_rc 0 "user-token alice on the $name store: $OUT"
  oom_first_use "$url"
}
