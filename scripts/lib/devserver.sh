# SPDX-License-Identifier: MIT
# Sourced by scripts and script tests: start and stop bkoauth-devserver on a free loopback port.
#   devserver_start BINARY [ARGS...]   sets DEV_PID and DEV_URL
#   devserver_stop
devserver_start() {
  local bin="$1"; shift
  DEV_PORT_FILE=$(mktemp /tmp/bkoauth-devserver-port.XXXXXX)
  rm -f "$DEV_PORT_FILE"
  "$bin" --listen 127.0.0.1:0 --port-file "$DEV_PORT_FILE" --quiet "$@" &
  DEV_PID=$!
  local i
  for i in $(seq 1 100); do
    if [ -s "$DEV_PORT_FILE" ]; then
      DEV_URL="http://127.0.0.1:$(cat "$DEV_PORT_FILE")"
      return 0
    fi
    if ! kill -0 "$DEV_PID" 2>/dev/null; then
      echo "bkoauth-devserver exited at start" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "bkoauth-devserver did not start within 10 s" >&2
  return 1
}

devserver_stop() {
  if [ -n "${DEV_PID:-}" ]; then
    kill "$DEV_PID" 2>/dev/null || true
    wait "$DEV_PID" 2>/dev/null || true
    DEV_PID=""
  fi
  rm -f "${DEV_PORT_FILE:-}"
}
