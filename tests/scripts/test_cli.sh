#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The bkoauth command line, end to end against bkoauth-devserver on a free loopback port:
# every command, every exit status, the JSON shape, masking in list and in every error message,
# the settings lookup order, bad arguments and --help.
#   usage: test_cli.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
. "$(dirname "$0")/cli_common.sh" test_cli "$1" "$2"

APP_CODE_V=cli-app
APP_SECRET_V=cli-secret-0123456789abcdef
devserver_start "$DEVSERVER" --app-code "$APP_CODE_V" --app-secret "$APP_SECRET_V" \
  --user cred-alice-0123456789=alice --user cred-bob-0123456789=bob || exit 1

# Every secret that has been seen; no stderr and no list output may ever hold one whole.
SECRETS=("$APP_SECRET_V" cred-alice-0123456789 cred-bob-0123456789)
remember() { [ -n "$1" ] && SECRETS+=("$1"); }

# run [VAR=VALUE...] -- ARGS...: the CLI in a clean environment (plus the base settings unless
# NOBASE=1), in $work; sets OUT, ERR, RC.
BASE=(OAUTH_API_URL="$DEV_URL" APP_CODE="$APP_CODE_V" SECRET_KEY="$APP_SECRET_V"
      "OAUTH_COOKIES_PARAMS={'bk_token': 'bk_token'}" BKOAUTH_DATABASE_URL=sqlite:"$work/main.db")
run() {
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local base=("${BASE[@]}")
  [ "${NOBASE:-0}" = 1 ] && base=()
  env -i PATH="$PATH" "${base[@]}" "${envs[@]}" "$CLI" "$@" >"$work/out" 2>"$work/err" </dev/null
  RC=$?
  OUT=$(cat "$work/out")
  ERR=$(cat "$work/err")
  check_no_secret "$*"
}
# Same with standard input from the string $STDIN.
run_stdin() {
  local input="$1"; shift
  env -i PATH="$PATH" "${BASE[@]}" "$CLI" "$@" >"$work/out" 2>"$work/err" <<<"$input"
  RC=$?
  OUT=$(cat "$work/out")
  ERR=$(cat "$work/err")
  check_no_secret "$*"
}
check_no_secret() {
  local s
  for s in "${SECRETS[@]}"; do
    if [[ "$ERR" == *"$s"* ]]; then fail "[$1] stderr holds a whole secret (${s:0:4}...): $ERR"; fi
  done
}
dev() { curl -sf -X "${2:-GET}" "$DEV_URL$1"; }
# calls: how many SSM calls reached the devserver so far (fails the test when it cannot tell)
calls() {
  local n; n=$(dev /__dev/counters | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])') || n=""
  [ -n "$n" ] || fail "could not read the devserver's counters"
  printf '%s' "$n"
}
# json EXPR: evaluates a Python expression over j = the JSON on stdout; prints the result.
json() { printf '%s' "$OUT" | "$PY" -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# ---- help, version and bad arguments --------------------------------------------------------
run -- --help; expect_rc 0 "--help"; expect_out "usage: bkoauth" "--help"
for c in app-token user-token token refresh list delete verify-jwt; do
  expect_out "$c" "--help lists $c"
done
run -- -h; expect_rc 0 "-h"; expect_out "usage: bkoauth" "-h"
run -- help; expect_rc 0 "help"; expect_out "Exit status" "help"
run -- --version; expect_rc 0 "--version"; expect_out "^bkoauth [0-9]+\.[0-9]+\.[0-9]+" "--version"
declare -A SYN=([app-token]="app-token" [user-token]="user-token USER --cookie HEADER" [token]="token USER"
                [refresh]="refresh USER" [list]="list" [delete]="delete USER | delete --app"
                [verify-jwt]="verify-jwt \[JWT\]")
for c in "${!SYN[@]}"; do
  run -- help "$c"; expect_rc 0 "help $c"; expect_out "usage: bkoauth .*${SYN[$c]}" "help $c"
  help1="$OUT"
  run -- "$c" --help; expect_rc 0 "$c --help"; expect_eq "$OUT" "$help1" "$c --help equals help $c"
  run -- "$c" -h; expect_rc 0 "$c -h"
done
# help needs no settings at all
NOBASE=1 run -- token --help; expect_rc 0 "help without settings"

run --; expect_rc 2 "no command"; expect_err "missing COMMAND" "no command"; expect_err "usage: bkoauth" "no command"
run -- frobnicate; expect_rc 2 "unknown command"; expect_err "unknown command 'frobnicate'" "unknown command"
expect_err "usage: bkoauth" "unknown command"
run -- --frob list; expect_rc 2 "unknown option"; expect_err "unknown option --frob" "unknown option"
expect_err "usage: bkoauth" "unknown option"
run -- list --secret-key="$APP_SECRET_V"; expect_rc 2 "unknown option with a value"   # value masked: checked by run
run -- token; expect_rc 2 "token without USER"; expect_err "missing USER" "token without USER"
expect_err "usage: bkoauth .*token USER" "token without USER"
run -- refresh; expect_rc 2 "refresh without USER"
run -- user-token; expect_rc 2 "user-token without USER"
run -- user-token alice; expect_rc 2 "user-token without --cookie"; expect_err "--cookie HEADER is required" "no cookie"
run -- user-token alice --cookie; expect_rc 2 "--cookie without value"; expect_err "needs a value" "--cookie no value"
run -- token alice bob; expect_rc 2 "token with two users"; expect_err "too many arguments" "two users"
run -- token ""; expect_rc 2 "empty USER"
run -- delete; expect_rc 2 "delete without USER"
run -- delete alice --app; expect_rc 2 "delete USER --app"
run -- list --cookie x; expect_rc 2 "list --cookie"; expect_err "does not take --cookie" "list --cookie"
run -- token alice --app; expect_rc 2 "token --app"
run -- -c; expect_rc 2 "-c without FILE"
run -- help frobnicate; expect_rc 2 "help of an unknown command"

# ---- ConfigError (5) -----------------------------------------------------------------------
run EXPIRES_SECONDS=soon -- app-token; expect_rc 5 "bad EXPIRES_SECONDS"
expect_err "^bkoauth: ConfigError: .*EXPIRES_SECONDS" "bad EXPIRES_SECONDS"
run -- -c "$work/missing.conf" app-token; expect_rc 5 "missing -c file"
expect_err "^bkoauth: ConfigError: .*missing.conf" "missing -c file"
printf 'OAUTH_API_URL = "http://127.0.0.1:1"\nTHIS IS NOT A SETTING\n' >"$work/bad.conf"
run -- -c "$work/bad.conf" app-token; expect_rc 5 "malformed settings file"
expect_err "bad.conf.*2" "malformed settings file names file and line"
run "OAUTH_COOKIES_PARAMS={not json" -- app-token; expect_rc 5 "malformed JSON setting"
run -- -D nosuchdb:foo app-token; expect_rc 5 "bad -D URL"
[ -e "$work/main.db" ] && fail "a ConfigError created the database"

# ---- app-token (0), reuse, JSON ------------------------------------------------------------
run -- app-token; expect_rc 0 "app-token"; APP1="$OUT"; remember "$APP1"
expect_out '^[^[:space:]]+$' "app-token prints the token alone"
[ "$(printf '%s\n' "$OUT" | wc -l)" = 1 ] && ok || fail "app-token prints one line"
[ -z "$ERR" ] && ok || fail "app-token wrote to stderr: $ERR"
mode=$(stat -c %a "$work/main.db"); expect_eq "$mode" 600 "the database file mode"
calls1=$(calls)
run -- app-token; expect_rc 0 "app-token again"; expect_eq "$OUT" "$APP1" "the saved APP token is reused"
expect_eq "$(calls)" "$calls1" "reusing the saved APP token does not call the service"
run -- --json app-token; expect_rc 0 "app-token --json"
expect_eq "$(json 'sorted(j.keys())')" \
  "['access_token', 'created_at', 'env_name', 'expires', 'expires_in', 'refresh_token', 'scope', 'user_id']" \
  "token JSON keys"
expect_eq "$(json 'j["access_token"]')" "$APP1" "JSON access_token"
expect_eq "$(json 'j["user_id"] is None')" True "JSON user_id null for APP"
expect_eq "$(json 'j["env_name"]')" test "JSON env_name"
expect_eq "$(json 'j["refresh_token"]')" "" "APP token has no refresh_token"
expect_out '"expires": "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"' "expires ISO 8601 UTC"
expect_out '"created_at": "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z"' "created_at ISO 8601 UTC"
# expires and expires_in agree with each other and with now (within a few seconds)
expect_eq "$(json 'abs(int(__import__("calendar").timegm(__import__("time").strptime(j["expires"], "%Y-%m-%dT%H:%M:%SZ"))) - int(__import__("time").time()) - j["expires_in"]) <= 5')" \
  True "expires_in matches expires"
expect_eq "$(json 'isinstance(j["expires_in"], int) and j["expires_in"] > 86400')" True "expires_in positive"
# global options after the command work too
run -- app-token --json; expect_rc 0 "--json after the command"; expect_eq "$(json 'j["access_token"]')" "$APP1" "--json after"

# ---- user-token, token, refresh -------------------------------------------------------------
run -- user-token alice --cookie 'bk_token=cred-alice-0123456789; other=1' --client-ip 10.1.2.3
expect_rc 0 "user-token"; ALICE1="$OUT"; remember "$ALICE1"
expect_ne "$ALICE1" "$APP1" "user and APP tokens differ"
run -- --json token alice; expect_rc 0 "token alice --json"
expect_eq "$(json 'j["access_token"]')" "$ALICE1" "token reads the saved user token"
expect_eq "$(json 'j["user_id"]')" alice "JSON user_id"
ALICE_R1=$(json 'j["refresh_token"]'); remember "$ALICE_R1"
[ -n "$ALICE_R1" ] && ok || fail "the user token has a refresh_token"
run -- token alice; expect_rc 0 "token alice"; expect_eq "$OUT" "$ALICE1" "token prints the access_token alone"
run -- user-token alice --cookie 'bk_token=cred-alice-0123456789'; expect_rc 0 "user-token again"
expect_eq "$OUT" "$ALICE1" "a second login reuses the saved token"
run -- token bob; expect_rc 4 "token of a user never logged in"
expect_err "^bkoauth: TokenNotExist: " "TokenNotExist message"
run -- refresh bob; expect_rc 4 "refresh of a user never logged in"; expect_err "^bkoauth: TokenNotExist: " "refresh bob"
run -- token "$(printf 'u%.0s' $(seq 1 70))"; expect_rc 1 "an over-long user is InvalidArgument (1)"
expect_err "^bkoauth: InvalidArgument: " "over-long user"

run -- refresh alice; expect_rc 0 "refresh alice"; ALICE2="$OUT"; remember "$ALICE2"
expect_ne "$ALICE2" "$ALICE1" "refresh gives a new access_token"
run -- --json token alice; expect_rc 0 "token after refresh"
expect_eq "$(json 'j["access_token"]')" "$ALICE2" "the refreshed token is saved"
ALICE_R2=$(json 'j["refresh_token"]'); remember "$ALICE_R2"
expect_ne "$ALICE_R2" "$ALICE_R1" "refresh gives a new refresh_token"
run -- --json refresh alice; expect_rc 0 "refresh --json"; ALICE3=$(json 'j["access_token"]'); remember "$ALICE3"
remember "$(json 'j["refresh_token"]')"
expect_eq "$(json 'j["user_id"]')" alice "refresh --json user_id"

# ---- TokenAPIError (3) ----------------------------------------------------------------------
run -- user-token bob --cookie 'bk_token=cred-nobody-0123456789'; SECRETS+=(cred-nobody-0123456789)
check_no_secret "user-token with an unknown credential"
expect_rc 3 "a credential the service refuses"; expect_err "^bkoauth: TokenAPIError: " "refused credential"
run SECRET_KEY=wrong-secret-0123456789 -- -D "sqlite:$work/other.db" app-token; SECRETS+=(wrong-secret-0123456789)
check_no_secret "app-token with a wrong secret"
expect_rc 3 "a wrong app secret"; expect_err "^bkoauth: TokenAPIError: " "wrong app secret"
dev "/__dev/fault?kind=http500&count=1" POST >/dev/null || fail "could not inject a fault"
run -- refresh alice; expect_rc 3 "refresh while the service answers HTTP 500"
expect_err "^bkoauth: TokenAPIError: .*500" "HTTP 500 message"
run -- token alice; expect_eq "$OUT" "$ALICE3" "a failed refresh keeps the saved token"
run OAUTH_API_URL=http://127.0.0.1:1 -- -D "sqlite:$work/unreach.db" app-token; expect_rc 3 "unreachable service"
expect_err "^bkoauth: TokenAPIError: " "unreachable service"

# ---- list ------------------------------------------------------------------------------------
run -- list; expect_rc 0 "list"
expect_out "USER +ENV +EXPIRES \(UTC\) +LEFT +ACCESS_TOKEN +REFRESH_TOKEN" "list header"
expect_out $'\n\\(APP\\) +test +[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} +[0-9]+d [0-9]+h +[^ ]{4}\\.\\.\\.\\([0-9]+ chars\\) +-' "list APP row"
expect_out $'\nalice +test +[0-9-]{10} [0-9:]{8} +[0-9]+d [0-9]+h +[^ ]{4}\\.\\.\\.\\([0-9]+ chars\\) +[^ ]{4}\\.\\.\\.\\([0-9]+ chars\\)' "list alice row"
for s in "${SECRETS[@]}"; do [[ "$OUT" == *"$s"* ]] && fail "list shows a whole secret (${s:0:4}...)"; done
ok
run -- --json list; expect_rc 0 "list --json"
expect_eq "$(json 'len(j)')" 2 "list --json has both tokens"
expect_eq "$(json '[t["user_id"] for t in j]')" "[None, 'alice']" "list --json order: APP first"
expect_eq "$(json 'all(__import__("re").fullmatch(r".{4}\.\.\.\(\d+ chars\)", t["access_token"]) for t in j)')" True \
  "list --json masks access_token"
expect_eq "$(json 'j[1]["refresh_token"].endswith("chars)") and j[0]["refresh_token"] == ""')" True \
  "list --json masks refresh_token"
expect_eq "$(json 'sorted(j[1].keys())')" \
  "['access_token', 'created_at', 'env_name', 'expires', 'expires_in', 'refresh_token', 'scope', 'user_id']" \
  "list --json keys"
for s in "${SECRETS[@]}"; do [[ "$OUT" == *"$s"* ]] && fail "list --json shows a whole secret (${s:0:4}...)"; done
# an expired row shows "expired"
sqlite3 "$work/main.db" "UPDATE bkoauth_access_token SET expires='2001-01-01 00:00:00' WHERE user_id='alice'"
run -- list; expect_out $'\nalice +test +2001-01-01 00:00:00 +expired ' "list shows expired"
run -- -D "sqlite:$work/empty.db" list; expect_rc 0 "list of an empty store"; expect_out "no saved tokens" "empty list"
run -- -D "sqlite:$work/empty.db" --json list; expect_eq "$OUT" "[]" "empty list --json"
# every spelling of an option getopt_long takes: "--long=V", "-sV", a unique prefix, after the command
run -- --database="sqlite:$work/empty.db" list; expect_rc 0 "--database=URL"; expect_out "no saved tokens" "--database=URL"
run -- "-Dsqlite:$work/empty.db" list --json; expect_eq "$OUT" "[]" "-DURL, --json after the command"
run -- list --js --data "sqlite:$work/empty.db"; expect_eq "$OUT" "[]" "unique prefixes of long options"
POSIXLY_CORRECT=1 run -- list --json -D "sqlite:$work/empty.db"; expect_eq "$OUT" "[]" "options after the command under POSIXLY_CORRECT"
run -- -D "sqlite:$work/empty.db" token -- -alice; expect_rc 4 "-- then a USER starting with '-'"
expect_err "TokenNotExist" "-- then a USER starting with '-'"
run -- --json="$APP_SECRET_V" list; expect_rc 2 "a value given to --json"; expect_err "unknown option --json=" "--json=VALUE"
run -- -x list; expect_rc 2 "unknown short option"; expect_err "unknown option -x" "unknown short option"

# ---- delete ----------------------------------------------------------------------------------
run -- delete alice; expect_rc 0 "delete alice"; expect_out "deleted" "delete alice"
run -- token alice; expect_rc 4 "token after delete"
run -- delete alice; expect_rc 4 "delete twice"; expect_err "^bkoauth: TokenNotExist: " "delete twice"
run -- --json delete --app; expect_rc 0 "delete --app"; expect_eq "$(json 'j["deleted"] and j["user_id"] is None')" True "delete --json"
run -- --json list; expect_eq "$OUT" "[]" "store empty after deletes"
calls2=$(calls)
run -- app-token; expect_rc 0 "app-token after delete --app"; remember "$OUT"
expect_ne "$OUT" "$APP1" "a deleted APP token is fetched anew"
expect_ne "$(calls)" "$calls2" "fetching anew calls the service"

# ---- StoreError (6) --------------------------------------------------------------------------
run -- -D "sqlite:$work/no/such/dir/t.db" app-token; expect_rc 6 "database in a missing directory"
expect_err "^bkoauth: StoreError: " "missing directory"
run -- -D "sqlite:$work" list; expect_rc 6 "database path is a directory"
if [ "$(id -u)" != 0 ]; then
  mkdir "$work/ro" && chmod 0555 "$work/ro"
  run -- -D "sqlite:$work/ro/t.db" list; expect_rc 6 "database in a read-only directory"
fi
printf 'this is not a database, just text of some length to fill a page ......\n%.0s' $(seq 1 80) >"$work/junk.db"
run -- -D "sqlite:$work/junk.db" list; expect_rc 6 "a file that is not a database"

# ---- JWTError (7) and verify-jwt --------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/gw.key" 2>/dev/null
openssl pkey -in "$work/gw.key" -pubout -out "$work/gw.pub" 2>/dev/null
GWKEY=$(cat "$work/gw.pub")
# make_jwt PAYLOAD_JSON: an RS256 JWT signed with gw.key
b64url() { "$PY" -c 'import base64,sys; print(base64.urlsafe_b64encode(sys.stdin.buffer.read()).decode().rstrip("="))'; }
make_jwt() {
  local h p s
  h=$(printf '%s' '{"alg":"RS256","typ":"JWT"}' | b64url)
  p=$(printf '%s' "$1" | b64url)
  s=$(printf '%s' "$h.$p" | openssl dgst -sha256 -sign "$work/gw.key" | b64url)
  printf '%s.%s.%s' "$h" "$p" "$s"
}
now=$(date +%s)
GOOD=$(make_jwt "{\"iss\":\"APIGW\",\"exp\":$((now + 600)),\"app\":{\"app_code\":\"gw-app\",\"verified\":true},\"user\":{\"username\":\"alice\",\"verified\":false}}")
OLD=$(make_jwt "{\"iss\":\"APIGW\",\"exp\":$((now - 3600)),\"app\":{\"app_code\":\"gw-app\",\"verified\":true}}")
run APIGW_PUBLIC_KEY="$GWKEY" -- verify-jwt "$GOOD"; expect_rc 0 "verify-jwt of a good token"
expect_out "app: +gw-app \(verified\)" "verify-jwt app"; expect_out "user: +alice \(not verified\)" "verify-jwt user"
run_stdin "$GOOD" verify-jwt; expect_rc 7 "verify-jwt without APIGW_PUBLIC_KEY"; expect_err "^bkoauth: JWTError: " "no key"
BASE+=(APIGW_PUBLIC_KEY="$GWKEY")
run_stdin "$GOOD" verify-jwt; expect_rc 0 "verify-jwt from stdin"; expect_out "app: +gw-app" "verify-jwt stdin"
run -- --json verify-jwt "$GOOD"; expect_rc 0 "verify-jwt --json"
expect_eq "$(json '(j["app_code"], j["app_verified"], j["username"], j["user_verified"], j["payload"]["iss"])')" \
  "('gw-app', True, 'alice', False, 'APIGW')" "verify-jwt --json fields"
run -- verify-jwt not.a.jwt; expect_rc 7 "verify-jwt of garbage"; expect_err "^bkoauth: JWTError: " "garbage"
run_stdin "garbage" verify-jwt; expect_rc 7 "verify-jwt of garbage on stdin"
run_stdin "" verify-jwt; expect_rc 7 "verify-jwt of nothing"
run -- verify-jwt "$OLD"; expect_rc 7 "verify-jwt of an expired token"; expect_err "expired" "expired token"
# the signature of GOOD over the payload of OLD: a badly signed token
BADSIG="${GOOD%%.*}.$(printf '%s' "$OLD" | cut -d. -f2).${GOOD##*.}"
run -- --json verify-jwt "$BADSIG"; expect_rc 7 "verify-jwt of a badly signed token"
expect_eq "$(json '(j["result"], j["data"], len(j["message"]) > 0)')" "(False, None, True)" "refusal body"
[[ "$ERR" == *"$GOOD"* ]] && fail "a JWT error message holds the JWT"

# ---- without OAUTH_API_URL (as the Python library: only a call to the service fails) ----------
NOAPI=(APP_CODE="$APP_CODE_V" SECRET_KEY="$APP_SECRET_V" BKOAUTH_DATABASE_URL=sqlite:"$work/noapi.db")
run BKOAUTH_DATABASE_URL=sqlite:"$work/noapi.db" -- user-token alice --cookie "bk_token=cred-alice-0123456789"
expect_rc 0 "login while the service is set"; NOAPI_TOKEN=$OUT
NOBASE=1 run "${NOAPI[@]}" -- token alice; expect_rc 0 "token of a fresh saved token without OAUTH_API_URL"
expect_eq "$OUT" "$NOAPI_TOKEN" "the saved token without OAUTH_API_URL"
NOBASE=1 run "${NOAPI[@]}" -- list; expect_rc 0 "list without OAUTH_API_URL"; expect_out "alice" "list without OAUTH_API_URL"
NOBASE=1 run "${NOAPI[@]}" APIGW_PUBLIC_KEY="$GWKEY" -- verify-jwt "$GOOD"; expect_rc 0 "verify-jwt without OAUTH_API_URL"
NOBASE=1 run "${NOAPI[@]}" -- app-token; expect_rc 3 "app-token without OAUTH_API_URL"
expect_err "^bkoauth: TokenAPIError: .*OAUTH_API_URL is not set" "app-token without OAUTH_API_URL"
NOBASE=1 run "${NOAPI[@]}" -- refresh alice; expect_rc 3 "refresh without OAUTH_API_URL"
expect_err "OAUTH_API_URL is not set" "refresh without OAUTH_API_URL"
NOBASE=1 run "${NOAPI[@]}" -- delete alice; expect_rc 0 "delete without OAUTH_API_URL"
NOBASE=1 run "${NOAPI[@]}" -- token alice; expect_rc 4 "deleted without OAUTH_API_URL"

# ---- settings lookup order: -c FILE, else $BKOAUTH_CONFIG, else ./bkoauth.conf; the environment
# on top of the file; -D over everything. Each source names its own database: where the APP token
# lands tells which one won.
conf() { # FILE DB
  printf "OAUTH_API_URL = '%s'\nAPP_CODE = '%s'\nSECRET_KEY = '%s'\nBKOAUTH_DATABASE_URL = 'sqlite:%s'\n" \
    "$DEV_URL" "$APP_CODE_V" "$APP_SECRET_V" "$2" >"$1"
}
mkdir -p "$work/order"
conf "$work/order/c.conf" "$work/order/c.db"
conf "$work/order/env.conf" "$work/order/env.db"
conf "$work/bkoauth.conf" "$work/order/cwd.db"
saved_in() { (cd "$work/order" && ls -- *.db 2>/dev/null | tr '\n' ' '); rm -f "$work/order/"*.db*; }
NOBASE=1 run -- app-token; expect_rc 0 "settings from ./bkoauth.conf"
expect_eq "$(saved_in)" "cwd.db " "./bkoauth.conf when nothing else names a file"
NOBASE=1 run BKOAUTH_CONFIG="$work/order/env.conf" -- app-token; expect_rc 0 "settings from \$BKOAUTH_CONFIG"
expect_eq "$(saved_in)" "env.db " "\$BKOAUTH_CONFIG over ./bkoauth.conf"
NOBASE=1 run BKOAUTH_CONFIG="$work/order/env.conf" -- -c "$work/order/c.conf" app-token; expect_rc 0 "-c FILE"
expect_eq "$(saved_in)" "c.db " "-c FILE over \$BKOAUTH_CONFIG"
NOBASE=1 run BKOAUTH_DATABASE_URL="sqlite:$work/order/var.db" -- -c "$work/order/c.conf" app-token
expect_eq "$(saved_in)" "var.db " "the environment over the settings file"
NOBASE=1 run BKOAUTH_DATABASE_URL="sqlite:$work/order/var.db" -- -c "$work/order/c.conf" -D "sqlite:$work/order/flag.db" app-token
expect_eq "$(saved_in)" "flag.db " "-D over the environment and the file"
rm -f "$work/bkoauth.conf"

# ---- check: settings, store, service; one line each, exit status of the first failure's kind
run -- check; expect_rc 0 "check with everything in place"
expect_out "^settings: ok: OAUTH_API_URL $DEV_URL" "check: settings line"
expect_out "store: ok: .*[0-9]+ tokens? saved" "check: store line"
expect_out "Django migrations: ok: no Django migration records for the table bkoauth_access_token: a Django app sharing it must run \`python manage.py migrate bkoauth --fake\` once" \
  "check: no Django records in a table libbkoauth made, and the command to record them"
expect_out "SSM service: ok: reached: HTTP [0-9]+" "check: service line"
run -- --json check; expect_rc 0 "check --json"
expect_eq "$(json '(j["ok"], [c["check"] for c in j["checks"]], [c["ok"] for c in j["checks"]])')" \
  "(True, ['settings', 'store', 'Django migrations', 'SSM service'], [True, True, True, True])" "check --json shape"
# Django's records of the table, once a Django app recorded it (rows of another app are not its)
sqlite3 "$work/main.db" "CREATE TABLE django_migrations (id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
  app varchar(255) NOT NULL, name varchar(255) NOT NULL, applied datetime NOT NULL);
  INSERT INTO django_migrations (app, name, applied) VALUES ('contenttypes', '0001_initial', '2024-01-01'),
  ('bkoauth', '0002_auto_refresh_token_scope', '2024-01-01'), ('bkoauth', '0001_initial', '2024-01-01');"
run -- check; expect_rc 0 "check with Django's records"
expect_out "Django migrations: ok: recorded for the table bkoauth_access_token \(app bkoauth\): 0001_initial, 0002_auto_refresh_token_scope"$'\n'"SSM service" \
  "check: Django's records of the table listed, in order"
run -- --json check
expect_eq "$(json '[c["message"] for c in j["checks"] if c["check"] == "Django migrations"]')" \
  "['recorded for the table bkoauth_access_token (app bkoauth): 0001_initial, 0002_auto_refresh_token_scope']" \
  "check --json: the same Django line"
sqlite3 "$work/main.db" "DROP TABLE django_migrations"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
run OAUTH_API_URL="http://127.0.0.1:$port" -- check; expect_rc 3 "check with the service down"
expect_out "SSM service: TokenAPIError: connection refused" "check: service down named"
expect_out "store: ok" "check: the store still checked with the service down"
run BKOAUTH_DATABASE_URL="postgresql://user:pw-secret-1@127.0.0.1:$port/x" -- check; expect_rc 6 "check with the store down"
expect_out "store: StoreError: " "check: store down named"
expect_out "SSM service: skipped" "check: service skipped without a client"
[[ "$OUT" == *"Django migrations: ok"* ]] && fail "check: Django records claimed with the store down"
[[ "$OUT$ERR" == *pw-secret-1* ]] && fail "check shows the database password"
run BKOAUTH_TIMEOUT_MS=abc -- check; expect_rc 5 "check with a bad setting"
expect_out "^settings: ConfigError: .*BKOAUTH_TIMEOUT_MS" "check: the bad setting named"

finish
