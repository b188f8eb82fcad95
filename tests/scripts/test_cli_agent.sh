#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bkoauth --agent [SOCKET] and BKOAUTH_AGENT, end to end: the token commands asked of a real
# bkoauth-agent (over its Unix socket) print what the direct path prints for the same store,
# with the same exit statuses; the option's forms; a missing agent, a refused caller (another
# uid, via setpriv) and commands the agent does not serve get clear errors.
#   usage: test_cli_agent.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
. "$(dirname "$0")/cli_common.sh" test_cli_agent "$1" "$2"
. "$src/tests/scripts/agent_clients_common.sh"

APP_SECRET_V=cli-agent-secret-0123456789
devserver_start "$DEVSERVER" --app-code cli-agent-app --app-secret "$APP_SECRET_V" \
  --user cred-alice-0123456789=alice --user cred-bob-0123456789=bob || exit 1
chmod 755 "$work" # the refused caller (nobody) must reach the socket
agent_conf cli-agent-app "$APP_SECRET_V"
SOCK="$work/agent.sock"

# run [VAR=VALUE...] -- ARGS...: the CLI in a clean environment (no settings at all: with the
# agent it needs none), in $work; sets OUT, ERR, RC. direct ARGS...: the same command on the
# agent's store, without the agent.
run() {
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env -i PATH="$PATH" "${envs[@]}" "$CLI" "$@" >"$work/out" 2>"$work/err" </dev/null
  RC=$?
  OUT=$(cat "$work/out"); ERR=$(cat "$work/err")
}
direct() { run -- -c "$work/agent.conf" "$@"; }
calls() { dev_counters | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
dev_counters() { curl -sf "$DEV_URL/__dev/counters"; }
json() { printf '%s' "$OUT" | "$PY" -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# ---- no agent -------------------------------------------------------------------------------
for form in "--agent=$work/none.sock" "--agent $work/none.sock"; do
  # shellcheck disable=SC2086
  run -- $form token alice; expect_rc 1 "$form, no agent"
  expect_err "^bkoauth: no agent at $work/none.sock: start bkoauth-agent or unset BKOAUTH_AGENT" "$form, no agent"
  [ -z "$OUT" ] && ok || fail "$form, no agent: stdout is not empty: $OUT"
done
run BKOAUTH_AGENT="$work/none.sock" -- app-token; expect_rc 1 "BKOAUTH_AGENT, no agent"
expect_err "no agent at $work/none.sock: start bkoauth-agent or unset BKOAUTH_AGENT" "BKOAUTH_AGENT, no agent"
: >"$work/plain-file"
run -- --agent "$work/plain-file" app-token; expect_rc 1 "a file that is no socket"
expect_err "no agent at $work/plain-file" "a file that is no socket"

# ---- the agent, and the same answers as the direct path --------------------------------------
agent_start "$SOCK" -c "$work/agent.conf" --socket-mode 0666 --refresh-ahead 0 || exit 1

run -- --agent "$SOCK" app-token; expect_rc 0 "--agent app-token"
app=$OUT
[ ${#app} -ge 16 ] && ok || fail "--agent app-token printed '$app', not a token"
direct app-token; expect_rc 0 "direct app-token"; expect_eq "$OUT" "$app" "the agent's APP token is the saved one"
before=$(calls)
run BKOAUTH_AGENT="$SOCK" -- app-token; expect_rc 0 "BKOAUTH_AGENT app-token"; expect_eq "$OUT" "$app" "BKOAUTH_AGENT app-token"
expect_eq "$(calls)" "$before" "a saved APP token asked of the agent again: no SSM call"

run -- --agent "$SOCK" user-token alice --cookie 'theme=dark; bk_token=cred-alice-0123456789' --client-ip 10.1.2.3
expect_rc 0 "--agent user-token"; alice=$OUT
[ ${#alice} -ge 16 ] && [ "$alice" != "$app" ] && ok || fail "--agent user-token printed '$alice'"
direct token alice; expect_rc 0 "direct token alice"; expect_eq "$OUT" "$alice" "the login's token is saved in the agent's store"
for form in "--agent=$SOCK token alice" "token alice --agent $SOCK" "--agent -- token alice"; do
  # shellcheck disable=SC2086
  run BKOAUTH_AGENT="$SOCK" -- $form; expect_rc 0 "$form"; expect_eq "$OUT" "$alice" "$form"
done
run BKOAUTH_AGENT="$SOCK" -- token alice; expect_rc 0 "BKOAUTH_AGENT token"; expect_eq "$OUT" "$alice" "BKOAUTH_AGENT token"
run BKOAUTH_AGENT= -- -c "$work/agent.conf" token alice; expect_rc 0 "empty BKOAUTH_AGENT: direct"
expect_eq "$OUT" "$alice" "an empty BKOAUTH_AGENT is the direct path"

# --json: the direct path's object, but refresh_token (never handed out) is has_refresh_token
run -- --agent "$SOCK" --json token alice; expect_rc 0 "--agent --json token"
expect_eq "$(json 'list(j)')" "['access_token', 'has_refresh_token', 'scope', 'env_name', 'user_id', 'expires', 'expires_in', 'created_at']" "--agent --json members"
agent_json=$OUT
direct --json token alice; direct_json=$OUT
for m in access_token scope env_name user_id expires created_at; do
  a=$(OUT=$agent_json json "j['$m']"); d=$(OUT=$direct_json json "j['$m']")
  expect_eq "$a" "$d" "--json $m through the agent"
done
d=$(OUT=$direct_json json "j['expires_in']"); a=$(OUT=$agent_json json "j['expires_in']")
[ $((d - a)) -ge -2 ] && [ $((d - a)) -le 2 ] && ok || fail "--json expires_in: agent $a, direct $d"
expect_eq "$(OUT=$agent_json json "j['has_refresh_token']")" True "--json has_refresh_token"
run -- --agent "$SOCK" --json app-token; expect_eq "$(json "j['user_id'], j['has_refresh_token']")" "None False" "--json app-token"

# refresh: a new token, saved; the old one is gone
run -- --agent "$SOCK" refresh alice; expect_rc 0 "--agent refresh"; alice2=$OUT
expect_ne "$alice2" "$alice" "--agent refresh gives a new token"
direct token alice; expect_eq "$OUT" "$alice2" "the refreshed token is saved"
run -- --agent "$SOCK" token alice; expect_eq "$OUT" "$alice2" "--agent token after the refresh"

# ---- errors: the same exit statuses and names as the direct path ------------------------------
for cmd in "token nobody" "refresh nobody"; do
  # shellcheck disable=SC2086
  direct $cmd; drc=$RC
  # shellcheck disable=SC2086
  run -- --agent "$SOCK" $cmd; expect_rc "$drc" "--agent $cmd (the direct path's status)"; expect_rc 4 "--agent $cmd"
  expect_err "^bkoauth: TokenNotExist: .*nobody" "--agent $cmd"
done
direct user-token carol --cookie 'bk_token=wrong-credential-123'; drc=$RC
run -- --agent "$SOCK" user-token carol --cookie 'bk_token=wrong-credential-123'
expect_rc "$drc" "--agent login refused (the direct path's status)"; expect_rc 3 "--agent login refused"
expect_err "^bkoauth: TokenAPIError: " "--agent login refused"
[[ "$ERR" == *wrong-credential-123* ]] && fail "the refused credential is on stderr whole: $ERR" || ok
run -- --agent "$SOCK" user-token $'bad\001user' --cookie 'bk_token=x'
expect_rc 1 "--agent with a user name the library refuses"; expect_err "^bkoauth: InvalidArgument: " "bad user name"
run -- --agent "$SOCK" token 'alice@corp x%y'; expect_rc 4 "a user name with @, a space and %, encoded"
expect_err "TokenNotExist: .*alice@corp x%y" "the encoded user name comes back whole"

# the agent serves token commands only; the others stay direct with BKOAUTH_AGENT set
run -- --agent "$SOCK" list; expect_rc 2 "--agent list"; expect_err "the agent serves app-token, user-token, token and refresh, not list" "--agent list"
run BKOAUTH_AGENT="$SOCK" -- -c "$work/agent.conf" list; expect_rc 0 "list with BKOAUTH_AGENT: direct"
expect_out "^USER " "list with BKOAUTH_AGENT"

# ---- a caller the agent does not allow (uid nobody): 403, named ------------------------------
cp "$CLI" "$work/bkoauth"; chmod 755 "$work/bkoauth"
nobody_uid=$(id -u nobody)
setpriv --reuid nobody --regid "$(id -g nobody)" --clear-groups env -i PATH="$PATH" "$work/bkoauth" --agent "$SOCK" token alice \
  >"$work/out" 2>"$work/err"; RC=$?; OUT=$(cat "$work/out"); ERR=$(cat "$work/err")
expect_rc 1 "a refused caller"; expect_err "^bkoauth: Forbidden: " "a refused caller"
expect_err "does not serve uid $nobody_uid " "a refused caller is told its uid"
[ -z "$OUT" ] && ok || fail "a refused caller got output: $OUT"
grep -q "uid $nobody_uid" "$work/agent.log" && ok || fail "the agent did not log the refused uid $nobody_uid"

# ---- the agent stopped: the same clear error ---------------------------------------------------
agent_stop
run -- --agent "$SOCK" token alice; expect_rc 1 "the agent stopped"; expect_err "no agent at $SOCK" "the agent stopped"
finish
