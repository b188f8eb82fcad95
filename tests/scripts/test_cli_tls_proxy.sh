#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# What an operator sees from the bkoauth command line when the SSM service is behind HTTPS with a
# private CA and behind a proxy: a throwaway CA (openssl), stunnel4 terminating TLS in front of
# bkoauth-devserver, tinyproxy with BasicAuth, all on loopback and started here.
#   usage: test_cli_tls_proxy.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
. "$(dirname "$0")/cli_common.sh" test_cli_tls_proxy "$1" "$2"

for p in openssl stunnel4 tinyproxy; do
  command -v "$p" >/dev/null || { echo "test_cli_tls_proxy: $p is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
APP_CODE_V=cli-app
APP_SECRET_V=cli-secret-0123456789abcdef
PROXY_PW=Pr0xyPassw0rdCli
WRONG_PW=Wr0ngPassw0rdCli
devserver_start "$DEVSERVER" --app-code "$APP_CODE_V" --app-secret "$APP_SECRET_V" || exit 1
DEV_PORT=${DEV_URL##*:}

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; devserver_stop; rm -rf "$work"' EXIT
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port: until something listens (10 s)
  local i
  for i in $(seq 1 200); do
    "$PY" -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; return 1
}

# ---- the throwaway CA and certificates
(
  set -e; exec 2>pki.log
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
  key ca.key
  openssl req -x509 -new -key ca.key -out ca.pem -days 2 -subj /CN=bkoauth-cli-test-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
  leaf() {
    key "$1.key"; openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$2"
    printf 'subjectAltName=%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.pem"
  }
  leaf good 127.0.0.1 IP:127.0.0.1,DNS:localhost
  leaf other ssm.example.com DNS:ssm.example.com
) || { echo "making the test CA failed: $(cat pki.log)" >&2; exit 1; }

# ---- stunnel in front of the devserver: one port per certificate
TLS_GOOD=$(free_port); TLS_OTHER=$(free_port)
cat > stunnel.conf <<CONF
foreground = quiet
pid =
syslog = no
output = $work/stunnel.log
[good]
accept = 127.0.0.1:$TLS_GOOD
connect = 127.0.0.1:$DEV_PORT
cert = $work/good.pem
key = $work/good.key
[other]
accept = 127.0.0.1:$TLS_OTHER
connect = 127.0.0.1:$DEV_PORT
cert = $work/other.pem
key = $work/other.key
CONF
stunnel4 stunnel.conf & PIDS+=($!)
wait_port "$TLS_OTHER" || exit 1

# ---- tinyproxy with BasicAuth
PROXY_PORT=$(free_port)
cat > tinyproxy.conf <<CONF
Port $PROXY_PORT
Listen 127.0.0.1
Timeout 30
LogFile "$work/tinyproxy.log"
LogLevel Info
PidFile "$work/tinyproxy.pid"
Allow 127.0.0.1
BasicAuth alice $PROXY_PW
CONF
tinyproxy -d -c tinyproxy.conf & PIDS+=($!)
wait_port "$PROXY_PORT" || exit 1
DOWN_PORT=$(free_port)
PROXY="http://alice:$PROXY_PW@127.0.0.1:$PROXY_PORT"

# run [VAR=VALUE...] -- ARGS...: the CLI in a clean environment with a new database; OUT, ERR, RC
n=0
run() {
  local envs=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  n=$((n + 1))
  env -i PATH="$PATH" OAUTH_API_URL="$DEV_URL" APP_CODE="$APP_CODE_V" SECRET_KEY="$APP_SECRET_V" \
    BKOAUTH_DATABASE_URL="sqlite:$work/t$n.db" BKOAUTH_TIMEOUT_MS=5000 "${envs[@]}" "$CLI" "$@" \
    >"$work/out" 2>"$work/err" </dev/null
  RC=$?
  OUT=$(cat "$work/out")
  ERR=$(cat "$work/err")
  for pw in "$PROXY_PW" "$WRONG_PW"; do
    if [[ "$OUT$ERR" == *"$pw"* ]]; then fail "$*: a proxy password is shown: $OUT $ERR"; else ok; fi
  done
}
proxied() { grep -c "Request (file descriptor" "$work/tinyproxy.log" 2>/dev/null || true; }

# ---- HTTPS with the private CA
run OAUTH_API_URL="https://127.0.0.1:$TLS_GOOD" -- check
expect_rc 3 "check, private CA not given"
expect_out "SSM service: TokenAPIError: .*not issued by a CA this host trusts.*BKOAUTH_CA_FILE" "unknown CA named"
run OAUTH_API_URL="https://127.0.0.1:$TLS_GOOD" BKOAUTH_CA_FILE="$work/ca.pem" -- check
expect_rc 0 "check with BKOAUTH_CA_FILE"
expect_out "SSM service: ok: reached: HTTP [0-9]+ .*, directly \(no proxy\)" "check with BKOAUTH_CA_FILE"
run OAUTH_API_URL="https://127.0.0.1:$TLS_GOOD" BKOAUTH_CA_FILE="$work/ca.pem" -- app-token
expect_rc 0 "app-token over HTTPS with BKOAUTH_CA_FILE"
expect_out "^[0-9a-f]{40}$" "app-token over HTTPS"
run OAUTH_API_URL="https://127.0.0.1:$TLS_OTHER" BKOAUTH_CA_FILE="$work/ca.pem" -- app-token
expect_rc 3 "certificate for another name"
expect_err "its certificate is for another host name than the one in OAUTH_API_URL" "wrong host named"
run OAUTH_API_URL="https://127.0.0.1:$TLS_GOOD" BKOAUTH_TLS_VERIFY=false -- app-token
expect_rc 0 "verification off"
expect_err "warning: BKOAUTH_TLS_VERIFY is false: TLS verification is off" "verification off warned"

# ---- through the proxy
before=$(proxied)
run OAUTH_API_URL="https://127.0.0.1:$TLS_GOOD" BKOAUTH_CA_FILE="$work/ca.pem" https_proxy="$PROXY" -- check
expect_rc 0 "check through the proxy"
expect_out "SSM service: ok: reached: HTTP [0-9]+ .*, through the proxy http://alice:\*\*\*@127.0.0.1:$PROXY_PORT \(from https_proxy\)" \
  "check shows the proxy, masked, and its variable"
run OAUTH_API_URL="https://127.0.0.1:$TLS_GOOD" BKOAUTH_CA_FILE="$work/ca.pem" HTTPS_PROXY="$PROXY" -- app-token
expect_rc 0 "app-token through the proxy (CONNECT)"
run http_proxy="$PROXY" -- app-token
expect_rc 0 "app-token through the proxy (plain HTTP)"
expect_eq "$(proxied)" "$((before + 3))" "the proxy passed on the check and both calls"

run http_proxy="http://127.0.0.1:$DOWN_PORT" -- app-token
expect_rc 3 "proxy down"
expect_err "connection refused by the proxy at 127.0.0.1:$DOWN_PORT \(from http_proxy\): is the proxy running there, and is http_proxy right\?" \
  "proxy down: the proxy and its variable named"
if [[ "$ERR" == *"is the SSM service running"* ]]; then fail "proxy down blamed on the SSM service: $ERR"; else ok; fi

run http_proxy="http://alice:$WRONG_PW@127.0.0.1:$PROXY_PORT" BKOAUTH_LOG_LEVEL=debug -- app-token
expect_rc 3 "wrong proxy password"
expect_err "the proxy at 127.0.0.1:$PROXY_PORT \(from http_proxy\) refused its credentials.*check the proxy's user and password in http_proxy" \
  "wrong proxy password named"
if [[ "$ERR" == *"APP_CODE"* ]]; then fail "a proxy refusal blamed on APP_CODE: $ERR"; else ok; fi

run http_proxy="http://127.0.0.1:$DOWN_PORT" no_proxy=localhost,127.0.0.1 -- app-token
expect_rc 0 "no_proxy bypasses the proxy"
run http_proxy="http://127.0.0.1:$DOWN_PORT" BKOAUTH_PROXY=none -- app-token
expect_rc 0 "BKOAUTH_PROXY=none: no proxy"
before=$(proxied)
run http_proxy="http://127.0.0.1:$DOWN_PORT" BKOAUTH_PROXY="$PROXY" -- app-token
expect_rc 0 "BKOAUTH_PROXY overrides http_proxy"
expect_eq "$(proxied)" "$((before + 1))" "BKOAUTH_PROXY: through the proxy"
run BKOAUTH_PROXY="ftp://alice:$WRONG_PW@proxy" -- check
expect_rc 5 "BKOAUTH_PROXY of another scheme"
expect_out "settings: ConfigError: .*BKOAUTH_PROXY: 'ftp://alice:\*\*\*@proxy' is not a proxy URL" "refused, masked"

finish
