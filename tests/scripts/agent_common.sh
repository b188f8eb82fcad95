# SPDX-License-Identifier: MIT
# agent_common.sh - what bkoauth-agent's test scripts share, sourced as
#   . "$(dirname "$0")/agent_common.sh" NAME BUILD_DIR SOURCE_DIR
# Sets build, src, AGENT, CLI, DEVSERVER, PY and the work directory $work (removed at exit with
# every server stopped); check counters (fail, ok, finish); agent_start/agent_stop; req/treq
# (a request on the Unix socket / on TCP: sets CODE, BODY, HEADERS); jget (a JSON field of BODY).
agent_name=$1
build=$(cd "$2" && pwd)
src=$(cd "$3" && pwd)
AGENT="$build/tools/bkoauth-agent"
CLI="$build/tools/bkoauth"
DEVSERVER="$build/tools/bkoauth-devserver"
PY=/usr/bin/python3
for f in "$AGENT" "$DEVSERVER"; do
  [ -x "$f" ] || { echo "$agent_name: not built: $f" >&2; exit 1; }
done
command -v curl >/dev/null || { echo "$agent_name: needs curl (scripts/install-deps.sh)" >&2; exit 1; }
. "$src/scripts/lib/devserver.sh"

work=$(mktemp -d "/tmp/bkoauth-$agent_name.XXXXXX")
chmod 755 "$work"
AGENT_PID=""
agent_cleanup() {
  if [ -n "$AGENT_PID" ]; then kill "$AGENT_PID" 2>/dev/null; wait "$AGENT_PID" 2>/dev/null; fi
  devserver_stop
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$work"
}
trap agent_cleanup EXIT

failures=0
checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }
finish() {
  echo "$agent_name: $checks checks, $failures failures"
  [ "$failures" -eq 0 ]
}
expect_eq() { # actual, expected, what
  if [ "$1" = "$2" ]; then ok; else fail "$3: got '$1', expected '$2'"; fi
}
expect_ne() {
  if [ "$1" != "$2" ]; then ok; else fail "$3: both are '$1'"; fi
}
expect_match() { # text, regex, what
  if [[ "$1" =~ $2 ]]; then ok; else fail "$3: '$1' does not match /$2/"; fi
}

# agent_start ARGS...: starts the agent on $SOCK (more options as given), logging to
# $work/agent.log; waits for the socket to answer.
SOCK="$work/agent.sock"
agent_start() {
  : >"$work/agent.log"
  "$AGENT" --socket "$SOCK" "$@" 2>>"$work/agent.log" &
  AGENT_PID=$!
  local i
  for i in $(seq 1 100); do
    if curl -s -o /dev/null --unix-socket "$SOCK" http://agent/healthz 2>/dev/null; then return 0; fi
    kill -0 "$AGENT_PID" 2>/dev/null || { echo "agent exited at start:" >&2; cat "$work/agent.log" >&2; AGENT_PID=""; return 1; }
    sleep 0.1
  done
  echo "agent did not answer within 10 s" >&2
  return 1
}
# agent_stop: SIGTERM; AGENT_RC is its exit status.
agent_stop() {
  AGENT_RC=""
  if [ -n "$AGENT_PID" ]; then
    kill -TERM "$AGENT_PID" 2>/dev/null
    wait "$AGENT_PID"
    AGENT_RC=$?
    AGENT_PID=""
  fi
}

# req METHOD PATH [CURL ARGS...]: CODE, BODY, HEADERS of a request on the Unix socket.
req() {
  local m=$1 p=$2
  [ -z "${AGENT_TRACE:-}" ] || echo "T $(date +%s) $m $p" >&2
  shift 2
  BODY=$(curl -s -m 20 -D "$work/h" -o - -w '\n%{http_code}' -X "$m" --unix-socket "$SOCK" "$@" "http://agent$p")
  CODE=${BODY##*$'\n'}
  BODY=${BODY%$'\n'*}
  HEADERS=$(cat "$work/h" 2>/dev/null)
}
# treq METHOD PATH [CURL ARGS...]: the same on TCP ($TCP_PORT).
treq() {
  local m=$1 p=$2
  [ -z "${AGENT_TRACE:-}" ] || echo "T $(date +%s) $m $p" >&2
  shift 2
  BODY=$(curl -s -m 20 -D "$work/h" -o - -w '\n%{http_code}' -X "$m" "$@" "http://127.0.0.1:$TCP_PORT$p")
  CODE=${BODY##*$'\n'}
  BODY=${BODY%$'\n'*}
  HEADERS=$(cat "$work/h" 2>/dev/null)
}
# jget FIELD [JSON]: a field of BODY (or JSON) in the agent's compact JSON, "a.b" for nested
# (the last name is looked up); a string up to its first escaped quote; empty when absent.
jget() {
  local key=${1##*.} text=${2-$BODY}
  local re="\"$key\": *(\"([^\"\\]*)|([^,} \"]*))"
  if [[ "$text" =~ $re ]]; then
    if [ -n "${BASH_REMATCH[2]}" ] || [ "${BASH_REMATCH[1]:0:1}" = '"' ]; then echo "${BASH_REMATCH[2]}"; else echo "${BASH_REMATCH[3]}"; fi
  fi
}
# dev_counter NAME: a devserver counter
dev_counter() {
  local c
  c=$(curl -s "$DEV_URL/__dev/counters")
  local re="\"$1\": *([0-9]+)"
  [[ "$c" =~ $re ]] && echo "${BASH_REMATCH[1]}"
}
# write_conf FILE [MORE LINES]: the settings of a client of the devserver, SQLite in $work
write_conf() {
  local f=$1
  shift
  {
    echo "OAUTH_API_URL = '$DEV_URL'"
    echo "APP_CODE = 'demo-app'"
    echo "SECRET_KEY = 'demo-secret'"
    echo "OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}"
    echo "BKOAUTH_DATABASE_URL = 'sqlite:$work/tokens.db'"
    for l in "$@"; do echo "$l"; done
  } >"$f"
}
