#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bkoauth command line against a hostile stand-in SSM service (bkoauth-devserver's raw and
# echo faults) and hostile arguments and settings (issue 11): what a person sees on the terminal
# never holds a control character, a forged line or a secret in any encoding; a grant with
# control characters is refused and not saved; non-literal settings are refused.
#   usage: test_cli_hostile.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
. "$(dirname "$0")/cli_common.sh" test_cli_hostile "$1" "$2"

SECRET='s3cr3t/Key+2024=='
CRED='cred alice/+x'
devserver_start "$DEVSERVER" --app-code host-app --app-secret "$SECRET" --user "$CRED=alice" || exit 1

BASE=(OAUTH_API_URL="$DEV_URL" APP_CODE=host-app SECRET_KEY="$SECRET"
      "OAUTH_COOKIES_PARAMS={'bk_token': 'bk_token'}" BKOAUTH_DATABASE_URL=sqlite:"$work/t.db")
# run [VAR=VALUE...] -- ARGS...: sets OUT, ERR (raw bytes kept in files), RC
run() {
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env -i PATH="$PATH" "${BASE[@]}" "${envs[@]}" "$CLI" "$@" >"$work/out" 2>"$work/err" </dev/null
  RC=$?
  OUT=$(cat "$work/out")
  ERR=$(cat "$work/err")
}
# Every line of stderr starts with "bkoauth: ", none holds a control character, nothing forged.
expect_clean() {
  if LC_ALL=C grep -q $'[\x01-\x08\x0b-\x1f\x7f]' "$work/err" "$work/out"; then
    fail "$1: a control character on the terminal: $(od -c "$work/err" | head -5)"
  else ok; fi
  if grep -v "^usage: bkoauth \|^Try 'bkoauth " "$work/err" | grep -qv '^bkoauth: '; then
    fail "$1: a line of stderr not from bkoauth: $ERR"
  else ok; fi
  if grep -q '^bkoauth: \(TokenAPIError: \)\?forged' "$work/err"; then fail "$1: a forged line: $ERR"; else ok; fi
}
# Neither secret in any form: raw, percent-encoded (both cases), '+' for space, JSON-escaped.
expect_no_secret() {
  local s form
  for s in "$SECRET" "$CRED"; do
    for form in "$s" \
      "$("$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$s")" \
      "$("$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe="").lower())' "$s")" \
      "$("$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote_plus(sys.argv[1], safe=""))' "$s")" \
      "$("$PY" -c 'import sys; print(sys.argv[1].replace("/", "\\/"))' "$s")" "${s:0:6}"; do
      if [[ "$OUT$ERR" == *"$form"* ]]; then fail "$1: a form of a secret ($form) in the output: $ERR"; return; fi
    done
  done
  ok
}
fault() { curl -sf -X POST "$DEV_URL/__dev/fault?$1" >/dev/null || fail "fault $1 refused"; }
raw() { # raw STATUS BODY
  fault "kind=raw&count=1&status=$1&body=$("$PY" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$2")"
}
saved() { "$PY" -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from bkoauth_access_token").fetchone()[0])' "$work/t.db"; }

# ---- a grant with control characters: refused, not printed, not saved -----------------------
for tok in 'tok\nINJECTED LINE\u001b[2J' 'tok\r\nX' 'tok\u007f' 'tok\tX' 'tok\u202eevil'; do
  raw 200 "{\"result\": true, \"data\": {\"access_token\": \"$tok\", \"expires_in\": 3600}}"
  run -- app-token
  expect_rc 3 "app-token $tok"
  expect_err "^bkoauth: TokenAPIError: .*data\.access_token" "app-token $tok: the field named"
  [ -z "$OUT" ] && ok || fail "app-token $tok printed: $OUT"
  expect_clean "app-token $tok"
  [[ "$ERR" == *INJECTED* || "$ERR" == *evil* ]] && fail "app-token $tok: the token quoted: $ERR"
  [ "$(saved)" = 0 ] && ok || fail "app-token $tok: saved"
done
raw 200 '{"result": true, "data": {"access_token": "ok-token", "expires_in": 3600}}'
run -- app-token; expect_rc 0 "a good grant"; [ "$OUT" = ok-token ] && ok || fail "good grant printed '$OUT'"

# ---- the service quotes the request back: no secret, in any form ------------------------------
fault "kind=echo&count=4"
run -- user-token alice --cookie "bk_token=$CRED"
expect_rc 3 "echo: user-token"; expect_clean "echo: user-token"; expect_no_secret "echo: user-token"
expect_err 'bad request' "echo: the service's message quoted"
run BKAUTH_BACKEND_TYPE=bk_token -- user-token alice --cookie "bk_token=$CRED"
expect_rc 3 "echo ee: user-token"; expect_clean "echo ee: user-token"; expect_no_secret "echo ee: user-token"
run BKOAUTH_LOG_LEVEL=debug -- refresh nobody
expect_clean "refresh nobody"
# the secret where the service's message is cut
msg="$(printf 'm%.0s' $(seq 190))$SECRET tail"
raw 200 "{\"result\": false, \"message\": \"$msg\"}"
run -- app-token --json
expect_rc 3 "a secret at the cut"; expect_no_secret "a secret at the cut"
# percent-encoded in lower case, as a proxy may quote it
run -- delete --app; expect_rc 0 "delete --app"
raw 502 "{\"message\": \"upstream: GET /?app_secret=s3cr3t%2fKey%2b2024%3d%3d\"}"
run -- app-token; expect_rc 3 "lower-case encoding"; expect_clean "lower-case encoding"
expect_err 'HTTP 502, saying "upstream: GET /\?app_secret=s3cr\.\.\.\(17 chars\)"' "lower-case encoding masked"
expect_no_secret "lower-case encoding"

# ---- a user name cannot forge a line ----------------------------------------------------------
for u in $'mallory\nbkoauth: TokenAPIError: forged' $'mallory\rbkoauth: forged' $'m\e[2Jx' $'rtl\u202eforged'; do
  for cmd in token refresh "delete" "user-token"; do
    if [ "$cmd" = user-token ]; then run -- user-token "$u" --cookie "bk_token=$CRED"; else run -- $cmd "$u"; fi
    expect_clean "$cmd with a hostile user name"
    [ "$RC" -ne 0 ] && ok || fail "$cmd with a hostile user name succeeded"
  done
done
run -- $'frob\nbkoauth: forged'; expect_rc 2 "a hostile command name"; expect_clean "a hostile command name"
run -- list $'--x=\nforged'; expect_rc 2 "a hostile option"; expect_clean "a hostile option"

# ---- no credential, no call ---------------------------------------------------------------------
before=$(curl -sf "$DEV_URL/__dev/counters" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')
run -- user-token bob --cookie 'lang=zh-cn'
expect_rc 3 "no credential"; expect_err "no login credential in the request: cookie bk_token missing" "no credential"
after=$(curl -sf "$DEV_URL/__dev/counters" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')
[ "$before" = "$after" ] && ok || fail "no credential: the service was called"

# ---- settings: literals only; BOM and trailing commas fine; URL passwords masked -----------------
conf() { printf '%b' "$1" >"$work/bkoauth.conf"; run -- -c "$work/bkoauth.conf" list; }
for bad in "SECRET_KEY = b'x'" "SECRET_KEY = f'x'" "SECRET_KEY = os.environ.get('X')" "APP_CODE = settings.APP" \
           "APP_CODE = 'a' + 'b'"; do
  conf "# settings\n$bad\n"
  expect_rc 5 "$bad"; expect_err "^bkoauth: ConfigError: $work/bkoauth.conf:2: " "$bad: file and line named"
done
conf "\xef\xbb\xbfOAUTH_COOKIES_PARAMS = {\n    'bk_token': 'bk_token',  # the login\n}\nSECRET_KEY = r'x'\n"
expect_rc 0 "BOM, trailing comma and comment"
run "OAUTH_API_URL=ftp://user:pw-0123456789@host/" -- list
expect_rc 5 "an ftp URL"; expect_err "ftp://user:\*\*\*@host/" "an ftp URL: password masked"
[[ "$ERR" == *pw-0123456789* ]] && fail "an ftp URL: password shown: $ERR" || ok
run "OAUTH_API_URL=http://user:pw-0123456789@127.0.0.1:1/" -- check
[[ "$OUT$ERR" == *pw-0123456789* ]] && fail "check shows the URL's password: $OUT" || ok

# ---- TLS off is loud at once, at any level but off -------------------------------------------
run BKOAUTH_TLS_VERIFY=false BKOAUTH_LOG_LEVEL=error -- list
expect_rc 0 "TLS off, list"
[ "$(grep -c 'TLS verification is off' "$work/err")" = 1 ] && ok || fail "TLS off: warned $(grep -c 'TLS verification is off' "$work/err") times: $ERR"
run BKOAUTH_TLS_VERIFY=false BKOAUTH_LOG_LEVEL=off -- list
[[ "$ERR" == *"TLS verification"* ]] && fail "TLS off with log level off: $ERR" || ok

# ---- a saved row with junk is reported, never printed ------------------------------------------
"$PY" - "$work/t.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("insert into bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, user_id, created_at) "
           "values ('junk\n\x1b[2Jtok', '2030-01-01 00:00:00', '', '', 'test', 'eve', '2026-01-01 00:00:00')")
db.execute("insert into bkoauth_access_token (access_token, expires, refresh_token, scope, env_name, user_id, created_at) "
           "values ('date-tok', 'not a date', '', '', 'test', 'dan', '2026-01-01 00:00:00')")
db.commit()
EOF
run -- list; expect_rc 0 "list with junk rows"; expect_clean "list with junk rows"
expect_err "row id [0-9]+ .*cannot be used" "list: the junk row named by id"
expect_err "row id [0-9]+ has an unreadable expires" "list: the bad date named by id"
run -- token eve; expect_rc 6 "token of a junk row"; expect_clean "token of a junk row"
[ -z "$OUT" ] && ok || fail "token of a junk row printed: $OUT"
run -- --json list; expect_rc 0 "list --json with junk rows"; expect_clean "list --json"

finish
