#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/agent/, run as a user runs them against a real bkoauth-agent (and bkoauth-devserver
# behind it): the shell example (curl --unix-socket), the Python one (standard library only) and
# the Go one (built with golang-go). Each gets the APP token, logs a user in, reads the user's
# token back, refreshes it, reports a rejected token that was already renewed (no SSM call), and
# names the agent's errors; each token is checked against the store with the command line.
#   usage: test_agent_examples.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
. "$(dirname "$0")/cli_common.sh" test_agent_examples "$1" "$2"
. "$src/tests/scripts/agent_clients_common.sh"
ex="$src/examples/agent"
command -v go >/dev/null || { echo "test_agent_examples: go is not installed (golang-go: bash scripts/install-deps.sh)" >&2; exit 1; }

APP_SECRET_V=examples-secret-0123456789
devserver_start "$DEVSERVER" --app-code ex-app --app-secret "$APP_SECRET_V" \
  --user cred-sh-0123456789=shuser --user cred-py-0123456789=pyuser --user cred-go-0123456789=gouser || exit 1
agent_conf ex-app "$APP_SECRET_V"
SOCK="$work/agent.sock"
agent_start "$SOCK" -c "$work/agent.conf" --refresh-ahead 0 || exit 1

# the Go example, built once (no network: the standard library only)
GOCACHE="$work/gocache" GOPATH="$work/gopath" GOPROXY=off GOFLAGS= GO111MODULE=auto \
  go build -o "$work/agent_client_go" "$ex/agent_client.go" 2>"$work/go.log" \
  || { cat "$work/go.log" >&2; fail "examples/agent/agent_client.go does not build"; finish; exit 1; }

stored() { env -i PATH="$PATH" "$CLI" -c "$work/agent.conf" token "$1"; }
calls() { curl -sf "$DEV_URL/__dev/counters" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])'; }
# ex NAME ARGS...: runs example NAME (sh, py, go) with BKOAUTH_AGENT set; sets OUT, ERR, RC
ex() {
  local name=$1; shift
  local prog
  case "$name" in
    sh) prog=("$ex/agent_token.sh") ;;
    py) prog=("$PY" "$ex/agent_client.py") ;;
    go) prog=("$work/agent_client_go") ;;
  esac
  env -i PATH="$PATH" BKOAUTH_AGENT="${EX_SOCK:-$SOCK}" "${prog[@]}" "$@" >"$work/out" 2>"$work/err"
  RC=$?; OUT=$(cat "$work/out"); ERR=$(cat "$work/err")
}

app=""
for name in sh py go; do
  user=${name}user; cred=cred-$name-0123456789
  ex "$name" app; expect_rc 0 "$name app"
  [ ${#OUT} -ge 16 ] && ok || fail "$name app printed '$OUT'"
  [ -z "$app" ] && app=$OUT
  expect_eq "$OUT" "$app" "$name app: the one saved APP token"

  ex "$name" login "$user" "$cred" 10.0.0.7; expect_rc 0 "$name login"; t1=$OUT
  expect_eq "$(stored "$user")" "$t1" "$name login: the token is saved"
  ex "$name" token "$user"; expect_rc 0 "$name token"; expect_eq "$OUT" "$t1" "$name token reads the saved token"

  ex "$name" refresh "$user"; expect_rc 0 "$name refresh"; t2=$OUT
  expect_ne "$t2" "$t1" "$name refresh gives a new token"
  expect_eq "$(stored "$user")" "$t2" "$name refresh: the new token is saved"
  before=$(calls)
  ex "$name" refresh "$user" "$t1"; expect_rc 0 "$name refresh with the rejected old token"
  expect_eq "$OUT" "$t2" "$name: a rejected token already renewed gives the renewed one"
  expect_eq "$(calls)" "$before" "$name: no SSM call for a rejected token already renewed"

  ex "$name" token nobody; expect_rc 1 "$name token nobody"; expect_err "TokenNotExist" "$name token nobody"
  [ -z "$OUT" ] && ok || fail "$name token nobody printed: $OUT"
  ex "$name" login "new$user" wrong-credential-0123; expect_rc 1 "$name login refused"; expect_err "TokenAPIError" "$name login refused"
  EX_SOCK="$work/none.sock" ex "$name" app; expect_rc 3 "$name without an agent"; expect_err "no agent at $work/none.sock" "$name without an agent"
done
ex py health; expect_rc 0 "py health"; expect_out '"ok": true' "py health"
# the shell example's curl command, as the README shows it
out=$(curl -s --unix-socket "$SOCK" http://agent/v1/users/shuser/token) && ok || fail "curl --unix-socket failed"
got=$(printf '%s' "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
expect_eq "$got" "$(stored shuser)" "curl --unix-socket: the saved token"
finish
