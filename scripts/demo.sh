#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job of libbkoauth, end to end, on this machine, with the `bkoauth` command line:
# installs what is missing of the demo's Debian packages (scripts/install-deps.sh demo: no
# database server, no test tools), builds the library with SQLite alone into build-demo/,
# starts bkoauth-devserver (a local SSM service) on a free loopback port, gets the APP token,
# logs a user in with a login cookie, reads that user's saved token back, refreshes it, lists
# the token store and stops the server.
# Tokens are saved in bkoauth.db in the repository root and left there to inspect.
# Tokens and credentials are only ever shown masked (first 4 characters and the length).
#   usage: bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Embedded defaults: the app and the user the devserver knows, and the settings that match them.
DEMO_APP_CODE=demo-app
DEMO_SECRET=demo-secret-4f9c2a7e51b8d036
DEMO_USER=alice
DEMO_CREDENTIAL=demo-bk-token-of-alice-8e1f0c
DB="$root/bkoauth.db"
CONF="$root/.demo/bkoauth.conf"
PY=/usr/bin/python3

steps=8
n=0
step() { n=$((n + 1)); printf '\n[%d/%d] %s\n' "$n" "$steps" "$*"; }
say() { printf '      %s\n' "$*"; }
die() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }

# mask SECRET: the same form bkoauth_mask() gives: "abcd...(32 chars)"
mask() {
  "$PY" -c 'import sys; s=sys.argv[1]; n=len(s); k=4 if n>=16 else n//4; print(s[:k]+"...(%d chars)"%n if n else "(empty)")' "$1"
}
# describe: one line about the token JSON object on stdin (bkoauth --json), secrets masked
describe() {
  "$PY" -c '
import json, sys, time
t = json.load(sys.stdin)
def mask(s):
    n = len(s)
    return (s[:4 if n >= 16 else n // 4] + "...(%d chars)" % n) if n else "(none)"
left = t["expires_in"]
when = "%dd %dh" % (left // 86400, left % 86400 // 3600) if left > 0 else "expired"
print("access_token  %s" % mask(t["access_token"]))
if t["refresh_token"]:
    print("refresh_token %s" % mask(t["refresh_token"]))
print("expires       %s (%s from now), env %s" % (t["expires"].replace("T", " ").replace("Z", " UTC"), when, t["env_name"]))
' | sed 's/^/      /'
}
# key JSON: "first 4 characters, length, expiry" of a token object, to tell one token from another
# without keeping or showing it whole
key_of() {
  "$PY" -c '
import json, sys
t = json.load(sys.stdin)
a = t["access_token"]
print(a[:4 if len(a) >= 16 else len(a) // 4], len(a), t["expires"])'
}
# saved_key USER|APP: the same key for the saved row in the store (from the masked list), or ""
saved_key() {
  "$CLI" -c "$CONF" --json list | "$PY" -c '
import json, sys
who = None if sys.argv[1] == "APP" else sys.argv[1]
for t in json.load(sys.stdin):
    if t["user_id"] == who and t["env_name"] == "test":
        m = t["access_token"]
        print(m[:m.index("...")], m[m.rindex("(") + 1:].split()[0], t["expires"])
' "$1"
}
# reused_or_new KEY_BEFORE KEY_AFTER WHAT
reused_or_new() {
  if [ -n "$1" ] && [ "$1" = "$2" ]; then
    say "The saved $3 was still valid, so it was reused: no call to the SSM service."
  elif [ -n "$1" ]; then
    say "The saved $3 was about to expire, so a new one was fetched from the SSM service and saved."
  else
    say "No $3 was saved yet, so one was fetched from the SSM service and saved in bkoauth.db."
  fi
}

echo "libbkoauth demo: the main job, end to end, against a local SSM service."

# ---- 1. dependencies ------------------------------------------------------------------------
step "Installing what is missing of the demo's packages (scripts/install-deps.sh demo)"
bash scripts/install-deps.sh demo
say "Every Debian package the demo needs is installed (the tests need more: scripts/test.sh"
say "installs them)."

# ---- 2. build -------------------------------------------------------------------------------
# The demo keeps its tokens in SQLite: the PostgreSQL and MySQL stores (libpq, the MariaDB
# client), the tests and the benchmarks are left out of this build, and so are their packages.
# Its own directory: build/ stays as the README's build leaves it.
step "Building the library (SQLite store), the bkoauth command line and bkoauth-devserver into build-demo/"
log=$(mktemp /tmp/bkoauth-demo-build.XXXXXX)
if ! { cmake -S . -B build-demo -DBKOAUTH_WERROR=ON -DBKOAUTH_WITH_POSTGRESQL=OFF -DBKOAUTH_WITH_MYSQL=OFF \
         -DBKOAUTH_BUILD_TESTS=OFF -DBKOAUTH_BUILD_BENCH=OFF -DBKOAUTH_BUILD_EXAMPLES=OFF &&
       cmake --build build-demo -j "$(nproc 2>/dev/null || echo 2)" --target bkoauth_cli bkoauth-devserver; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  die "the build failed (output above)"
fi
rm -f "$log"
CLI="$root/build-demo/tools/bkoauth"
DEVSERVER="$root/build-demo/tools/bkoauth-devserver"
say "Built $(basename "$CLI") ($("$CLI" --version)) and $(basename "$DEVSERVER")."

# ---- 3. the local SSM service and the settings ------------------------------------------------
step "Starting bkoauth-devserver, a local SSM service, on a free loopback port"
. scripts/lib/devserver.sh
trap 'devserver_stop' EXIT
devserver_start "$DEVSERVER" --app-code "$DEMO_APP_CODE" --app-secret "$DEMO_SECRET" \
  --user "$DEMO_CREDENTIAL=$DEMO_USER" || die "bkoauth-devserver did not start"
say "The SSM service listens on $DEV_URL. It knows the app $DEMO_APP_CODE and logs in"
say "$DEMO_USER when her login cookie bk_token holds $(mask "$DEMO_CREDENTIAL")."

# Only the demo's settings count: none from the caller's environment or a ./bkoauth.conf.
unset OAUTH_API_URL OAUTH_COOKIES_PARAMS OAUTH_PARAMS APP_CODE SECRET_KEY BKAUTH_TOKEN_APP_CODE \
  BKAUTH_TOKEN_SECRET_KEY RUN_MODE EXPIRES_SECONDS OAUTH_NEED_NEW_TOKEN BKAUTH_BACKEND_TYPE \
  APIGW_PUBLIC_KEY BKOAUTH_DATABASE_URL BKOAUTH_DB_TIME_ZONE BKOAUTH_TIMEOUT_MS BKOAUTH_TLS_VERIFY \
  BKOAUTH_CA_FILE BKOAUTH_LOG_LEVEL BKOAUTH_CACHE_SECONDS BKOAUTH_CONFIG
mkdir -p "$(dirname "$CONF")"
( umask 077
  cat >"$CONF" <<EOF
# Written by scripts/demo.sh: the Django settings of the Python bkoauth, as they are.
OAUTH_API_URL = '$DEV_URL'
OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}
APP_CODE = '$DEMO_APP_CODE'
SECRET_KEY = '$DEMO_SECRET'
BKOAUTH_DATABASE_URL = 'sqlite:$DB'
EOF
)
say "Settings are in .demo/bkoauth.conf (the Django snippet, verbatim); tokens go to bkoauth.db."

if [ -s "$DB" ]; then
  count=$("$CLI" -c "$CONF" --json list | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')
  say "bkoauth.db already holds $count saved token(s) from an earlier run of this demo."
  if [ -n "$(saved_key "$DEMO_USER")" ]; then
    # The earlier run's devserver issued that token and has stopped; this one would refuse its
    # refresh_token. A real SSM service keeps its tokens, so a real deployment never does this.
    "$CLI" -c "$CONF" delete "$DEMO_USER" >/dev/null
    say "$DEMO_USER's saved token was issued by the earlier run's devserver, which has stopped and"
    say "taken its tokens with it, so it could not be refreshed here: removed it (the APP token stays)."
  fi
fi

# ---- 4. the APP token -------------------------------------------------------------------------
step "Getting the APP access_token:  bkoauth app-token"
before=$(saved_key APP)
json=$("$CLI" -c "$CONF" --json app-token) || die "bkoauth app-token failed (message above)"
printf '%s' "$json" | describe
reused_or_new "$before" "$(printf '%s' "$json" | key_of)" "APP token"
again=$("$CLI" -c "$CONF" --json app-token) || die "bkoauth app-token failed (message above)"
if [ "$(printf '%s' "$again" | key_of)" = "$(printf '%s' "$json" | key_of)" ]; then
  say "Asked again: the same saved token came back, without calling the service."
else
  die "a second bkoauth app-token gave another token"
fi

# ---- 5. a user logs in ------------------------------------------------------------------------
step "Logging $DEMO_USER in with her login cookie:  bkoauth user-token $DEMO_USER --cookie 'bk_token=...'"
before=$(saved_key "$DEMO_USER")
json=$("$CLI" -c "$CONF" --json user-token "$DEMO_USER" --cookie "bk_token=$DEMO_CREDENTIAL") ||
  die "bkoauth user-token failed (message above)"
printf '%s' "$json" | describe
reused_or_new "$before" "$(printf '%s' "$json" | key_of)" "token of $DEMO_USER"
login_key=$(printf '%s' "$json" | key_of)

# ---- 6. reading it back -----------------------------------------------------------------------
step "Reading $DEMO_USER's saved token back, as a later job would:  bkoauth token $DEMO_USER"
json=$("$CLI" -c "$CONF" --json token "$DEMO_USER") || die "bkoauth token failed (message above)"
printf '%s' "$json" | describe
if [ "$(printf '%s' "$json" | key_of)" = "$login_key" ]; then
  say "It is the token saved at login, read from bkoauth.db without a request or a cookie."
else
  say "The saved token was about to expire, so it was refreshed on the way."
fi

# ---- 7. refreshing it -------------------------------------------------------------------------
step "Refreshing $DEMO_USER's token with its refresh_token:  bkoauth refresh $DEMO_USER"
json=$("$CLI" -c "$CONF" --json refresh "$DEMO_USER") || die "bkoauth refresh failed (message above)"
printf '%s' "$json" | describe
if [ "$(printf '%s' "$json" | key_of)" != "$login_key" ]; then
  say "The SSM service issued a new access_token and refresh_token; they replaced the old ones in"
  say "$DEMO_USER's row. The old access_token stays valid for a short overlap, so nothing breaks."
else
  die "bkoauth refresh gave the same token back"
fi

# ---- 8. the store ------------------------------------------------------------------------------
step "Listing the token store:  bkoauth list"
"$CLI" -c "$CONF" list | sed 's/^/      /'
devserver_stop
trap - EXIT
say "Stopped the SSM service."

cat <<EOF

Done. The tokens stay in bkoauth.db: inspect them with
  build-demo/tools/bkoauth -D sqlite:bkoauth.db list
  sqlite3 bkoauth.db 'select user_id, env_name, expires from bkoauth_access_token'
Run this demo again: it finds the saved APP token and reuses it. Next: bash scripts/test.sh
EOF
