# SPDX-License-Identifier: MIT
# agent_clients_common.sh - what the tests of bkoauth-agent's clients (the command line's
# --agent, examples/agent/) share, sourced after cli_common.sh:
#   agent_start SOCKET [ARGS...]   starts $build/tools/bkoauth-agent --socket SOCKET ARGS with the
#                                  environment it is given, its log in $work/agent.log; waits
#                                  until GET /healthz answers 200 (10 s at most); sets AGENT_PID
#   agent_stop                     SIGTERM, and waits for it
#   agent_get SOCKET PATH          curl's output of GET PATH on the socket
#   agent_conf APP_CODE SECRET     writes $work/agent.conf: the agent's settings for the
#                                  devserver at $DEV_URL, its store sqlite:$work/agent.db
AGENT="$build/tools/bkoauth-agent"
[ -x "$AGENT" ] || { echo "$cli_name: not built: $AGENT" >&2; exit 1; }
AGENT_PID=""

agent_start() {
  local sock=$1; shift
  "$AGENT" --socket "$sock" "$@" 2>>"$work/agent.log" &
  AGENT_PID=$!
  local i
  for i in $(seq 1 100); do
    if curl -sf --unix-socket "$sock" http://agent/healthz >/dev/null 2>&1; then return 0; fi
    if ! kill -0 "$AGENT_PID" 2>/dev/null; then
      echo "bkoauth-agent exited at start:" >&2; cat "$work/agent.log" >&2; AGENT_PID=""; return 1
    fi
    sleep 0.1
  done
  echo "bkoauth-agent did not answer /healthz on $sock within 10 s:" >&2; cat "$work/agent.log" >&2
  return 1
}

agent_stop() {
  if [ -n "$AGENT_PID" ]; then
    kill "$AGENT_PID" 2>/dev/null || true
    wait "$AGENT_PID" 2>/dev/null || true
    AGENT_PID=""
  fi
}

agent_get() { curl -sS --unix-socket "$1" "http://agent$2"; }

agent_conf() {
  cat >"$work/agent.conf" <<CONF
OAUTH_API_URL = '$DEV_URL'
APP_CODE = '$1'
SECRET_KEY = '$2'
OAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}
BKOAUTH_DATABASE_URL = 'sqlite:$work/agent.db'
CONF
}

trap 'agent_stop; devserver_stop; rm -rf "$work"' EXIT
