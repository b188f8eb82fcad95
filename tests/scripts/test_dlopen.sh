#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# libcurl, libcrypto, libpq and the MariaDB connector loaded on first use (docs/ARCHITECTURE.md):
#   - libbkoauth.so, the command line and a program linked with the library alone have no NEEDED
#     entry for them; the library declares them in its .note.dlopen ELF notes (and so does the
#     static archive);
#   - `bkoauth --version` and `bkoauth token alice` (SQLite, a fresh saved token) load none of
#     them; an SSM call loads libcurl (and the TLS libraries it needs), `verify-jwt` libcrypto;
#   - a library that cannot be loaded (BKOAUTH_TEST_DLOPEN_FAIL) is a clear error naming the
#     Debian package to install, never a crash, for each of the four; the next call, once the
#     library can be loaded, succeeds; a library found but too old (a stand-in lacking its
#     functions) names the missing function and the package to upgrade;
#   - 16 threads racing on the first SSM calls (SQLite store), then a fork after first use; a
#     fork while another thread is in the middle of loading libcurl.
#   usage: test_dlopen.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
. "$(dirname "$0")/cli_common.sh" test_dlopen "$1" "$2"
FIRST="$build/tests/bkoauth-first-use"
[ -x "$FIRST" ] || { echo "test_dlopen: not built: $FIRST" >&2; exit 1; }
HEAVY='libcurl\.so|libpq\.so|libmariadb\.so|libcrypto\.so'

# ---- no NEEDED entry; the .note.dlopen notes
for f in "$build/libbkoauth.so" "$CLI" "$FIRST"; do
  needed=$(readelf -d "$f" | grep NEEDED)
  [ -n "$needed" ] || fail "readelf -d $f: no NEEDED entry at all"
  if grep -Eq "$HEAVY" <<<"$needed"; then fail "$f links $(grep -Eo "$HEAVY" <<<"$needed" | tr '\n' ' ')"; else ok; fi
done
for f in "$build/libbkoauth.so" "$build/libbkoauth.a"; do
  notes=$(readelf -n "$f" 2>&1)
  n=$(grep -c 'FDO .*0x407c0c0a' <<<"$notes")
  expect_eq "$n" 4 "$f: FDO dlopen notes (type 0x407c0c0a)"
  json=$(readelf -p .note.dlopen "$f" 2>&1)
  for pair in ssm:libcurl.so.4 jwt:libcrypto.so.3 postgresql:libpq.so.5 mysql:libmariadb.so.3; do
    if grep -q "\"feature\":\"${pair%%:*}\".*\"priority\":\"[a-z]*\",\"soname\":\[\"${pair#*:}\"\]" <<<"$json"; then ok
    else fail "$f: no .note.dlopen entry for ${pair#*:}: $json"; fi
  done
done

# ---- what the command line loads
APP_CODE_V=dl-app
APP_SECRET_V=dl-secret-0123456789abcdef
devserver_start "$DEVSERVER" --app-code "$APP_CODE_V" --app-secret "$APP_SECRET_V" \
  --user cred-alice-0123456789=alice || exit 1
BASE=(OAUTH_API_URL="$DEV_URL" APP_CODE="$APP_CODE_V" SECRET_KEY="$APP_SECRET_V"
      "OAUTH_COOKIES_PARAMS={'bk_token': 'bk_token'}" BKOAUTH_DATABASE_URL=sqlite:"$work/main.db")
run() { # [VAR=VALUE...] -- ARGS...: sets OUT, ERR, RC; the loader's list of loaded libraries in $work/libs
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env -i PATH="$PATH" "${BASE[@]}" "${envs[@]}" LD_DEBUG=files LD_DEBUG_OUTPUT="$work/ld" "$CLI" "$@" \
    >"$work/out" 2>"$work/err" </dev/null
  RC=$?
  OUT=$(cat "$work/out")
  ERR=$(cat "$work/err")
  cat "$work"/ld.* 2>/dev/null | grep -Eo "file=[^ ]*" | sort -u >"$work/libs"
  rm -f "$work"/ld.*
}
loaded() { grep -Eo "$HEAVY" "$work/libs" | sort -u | tr '\n' ' '; }

run -- --version
expect_rc 0 "--version"
expect_eq "$(loaded)" "" "--version loads"
run -- user-token alice --cookie 'bk_token=cred-alice-0123456789'
expect_rc 0 "user-token alice (saves the token)"
expect_eq "$(loaded)" "libcrypto.so libcurl.so " "user-token (an SSM call: libcurl and its TLS library) loads"
run -- token alice
expect_rc 0 "token alice from the SQLite store"
expect_eq "$(loaded)" "" "token alice (SQLite, a fresh saved token) loads"
[ -s "$work/libs" ] || fail "LD_DEBUG=files listed nothing: the check above checked nothing"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | openssl pkey -pubout >"$work/pub.pem"
KEY="APIGW_PUBLIC_KEY=$(cat "$work/pub.pem")"
run "$KEY" -- verify-jwt eyJhbGciOiJSUzI1NiJ9.e30.c2ln
expect_rc 7 "verify-jwt of a token not signed by the key"
expect_err "JWTError: .*signature" "the signature refused"
expect_eq "$(loaded)" "libcrypto.so " "verify-jwt loads"

# ---- a library that cannot be loaded: the package named, exit status of the kind
run BKOAUTH_TEST_DLOPEN_FAIL=libcurl.so.4 BKOAUTH_DATABASE_URL=sqlite:"$work/empty.db" -- app-token
expect_rc 3 "app-token without libcurl"
expect_err "TokenAPIError: .*libcurl\.so\.4.*cannot be loaded.*install the package libcurl4" "libcurl missing"
run BKOAUTH_TEST_DLOPEN_FAIL=libpq.so.5 -- -D postgresql://nobody@127.0.0.1:1/none token alice
expect_rc 6 "a postgresql:// store without libpq"
expect_err "StoreError: .*libpq\.so\.5.*cannot be loaded.*install the package libpq5" "libpq missing"
run BKOAUTH_TEST_DLOPEN_FAIL=libmariadb.so.3 -- -D mysql://u:p@127.0.0.1:1/none token alice
expect_rc 6 "a mysql:// store without the MariaDB connector"
expect_err "StoreError: .*libmariadb\.so\.3.*cannot be loaded.*install the package libmariadb3" "libmariadb missing"
run "$KEY" BKOAUTH_TEST_DLOPEN_FAIL=libcrypto.so.3 -- verify-jwt eyJhbGciOiJSUzI1NiJ9.e30.c2ln
expect_rc 7 "verify-jwt without libcrypto"
expect_err "JWTError: .*libcrypto\.so\.3.*cannot be loaded.*install the package libssl3" "libcrypto missing"
# a library found but too old (a stand-in lacking every function, first on LD_LIBRARY_PATH): the
# missing function and the package to upgrade named, no crash
command -v cc >/dev/null || fail "no C compiler for the stand-in libraries"
for case in "libcurl.so.4 libcurl4 3 TokenAPIError -- app-token" \
            "libpq.so.5 libpq5 6 StoreError -- -D postgresql://nobody@127.0.0.1:1/none token alice" \
            "libmariadb.so.3 libmariadb3 6 StoreError -- -D mysql://u:p@127.0.0.1:1/none token alice" \
            "libcrypto.so.3 libssl3 7 JWTError -- verify-jwt"; do
  read -r soname package rc kind rest <<<"$case"
  mkdir -p "$work/old-$soname"
  echo 'int bk_stand_in;' | cc -shared -fPIC -x c - -o "$work/old-$soname/$soname" || fail "cannot build a stand-in $soname"
  if [ "$soname" = libcrypto.so.3 ]; then
    run "$KEY" LD_LIBRARY_PATH="$work/old-$soname" BKOAUTH_DATABASE_URL=sqlite:"$work/empty.db" -- verify-jwt eyJhbGciOiJSUzI1NiJ9.e30.c2ln
  else
    # shellcheck disable=SC2086 # the arguments of the case, split on purpose
    run LD_LIBRARY_PATH="$work/old-$soname" BKOAUTH_DATABASE_URL=sqlite:"$work/empty.db" $rest
  fi
  expect_rc "$rc" "$soname too old"
  expect_err "$kind: .*${soname//./\\.} lacks [a-zA-Z_0-9]* \\(too old\\).*upgrade the package $package" "$soname too old: the function and the package named"
  grep -q "old-$soname/$soname" "$work/libs" || fail "the stand-in $soname was not the one loaded: $(cat "$work/libs")"
done

# without the hook the same store fails at the connection, not at the library
run -- -D mysql://u:p@127.0.0.1:1/none token alice
expect_rc 6 "a mysql:// store on a closed port"
if [[ "$ERR" == *libmariadb3* ]]; then fail "the connector was loaded, yet: $ERR"; else ok; fi
expect_eq "$(loaded)" "libcrypto.so libmariadb.so " "a mysql:// store loads"

# ---- a fresh process: the failure not remembered; 16 threads on the first calls, then a fork
firstuse() {
  env -i PATH="$PATH" "${BASE[@]}" "$@" >"$work/out" 2>&1
  RC=$?
  OUT=$(cat "$work/out")
}
firstuse BKOAUTH_DATABASE_URL=sqlite:"$work/retry.db" "$FIRST" retry
expect_rc 0 "bkoauth-first-use retry: $OUT"
firstuse BKOAUTH_DATABASE_URL=sqlite:"$work/race.db" "$FIRST" race
expect_rc 0 "bkoauth-first-use race (SQLite): $OUT"
expect_out "after the race: libcurl.so mapped" "the race loaded libcurl"
# fork() while another thread is in the middle of loading libcurl (a stand-in whose constructor
# sleeps): the child's first SSM call ends, with the stand-in's error
mkdir -p "$work/slow"
printf '#include <unistd.h>\n__attribute__((constructor)) static void slow(void) { usleep(900000); }\nint bk_stand_in;\n' \
  | cc -shared -fPIC -x c - -o "$work/slow/libcurl.so.4" || fail "cannot build the slow stand-in libcurl.so.4"
firstuse LD_LIBRARY_PATH="$work/slow" "$FIRST" forkload
expect_rc 0 "bkoauth-first-use forkload: $OUT"
expect_out "child: TokenAPIError .*libcurl\.so\.4 lacks" "the child's first SSM call after a fork in the middle of a load"
finish
