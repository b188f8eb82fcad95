#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bkoauth-agent (docs/AGENT.md): the API on the Unix socket and on TCP, who may ask (SO_PEERCRED
# with callers of other uids and gids, the allow lists, the socket's mode and group, the bearer
# secret), hostile requests (huge headers, slowloris, bad JSON, path tricks, the connection
# limit), SIGHUP (settings re-read, the same socket) and SIGTERM (a request in flight finishes,
# exit 0), sd_notify.
#   usage: test_agent.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/agent_common.sh" test_agent "$1" "$2"

devserver_start "$DEVSERVER" --user cred-alice=alice --user cred-bob=bob || exit 1
write_conf "$work/agent.conf"
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/secret"
chmod 600 "$work/secret"
SECRET=$(cat "$work/secret")

# sd_notify: a datagram socket that writes what it gets, one message a line
"$PY" - "$work/notify.sock" "$work/notify.log" <<'EOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        m = s.recv(4096).decode()
        f.write(m.replace("\n", " ") + "\n")
EOF
NOTIFY_PID=$!
for _ in $(seq 1 50); do [ -S "$work/notify.sock" ] && break; sleep 0.1; done
trap 'kill $NOTIFY_PID 2>/dev/null; agent_cleanup' EXIT

NOTIFY_SOCKET="$work/notify.sock" agent_start -c "$work/agent.conf" --socket-mode 0666 --listen 127.0.0.1:0 \
  --port-file "$work/tcp.port" --secret-file "$work/secret" --refresh-ahead 0 --timeout 2 || exit 1
TCP_PORT=$(cat "$work/tcp.port")
grep -q '^READY=1$' "$work/notify.log" && ok || fail "sd_notify: no READY=1 (got: $(cat "$work/notify.log"))"

# ---- the API on the Unix socket ----
req GET /healthz
expect_eq "$CODE" 200 "healthz"
expect_eq "$(jget transport)" unix "healthz transport"
expect_eq "$(jget env_name)" test "healthz env_name"

req GET /v1/app/token
expect_eq "$CODE" 200 "app token"
APP=$(jget access_token)
expect_eq "$(jget user_id)" null "app token user_id"
expect_eq "$(jget has_refresh_token)" false "app token has_refresh_token"
expect_eq "$(curl -s "$DEV_URL/__dev/token?access_token=$APP" | jget valid "$(cat)")" true "the app token is the devserver's"
[[ "$BODY" != *\"refresh_token\"* ]] && ok || fail "a refresh_token was handed out: $BODY"

req GET /v1/users/alice/token
expect_eq "$CODE" 404 "no saved token"
expect_eq "$(jget error)" TokenNotExist "no saved token: error name"

req POST /v1/users/alice/login -d '{"cookies": {"bk_token": "cred-alice"}, "client_ip": "10.1.2.3"}'
expect_eq "$CODE" 200 "login"
expect_eq "$(jget user_id)" alice "login user_id"
ALICE=$(jget access_token)
expect_eq "$(curl -s "$DEV_URL/__dev/token?access_token=$ALICE" | jget bk_client_ip "$(cat)")" 10.1.2.3 "client_ip sent"

req POST /v1/users/bob/login -d '{"cookies": {"bk_token": "wrong"}}'
expect_eq "$CODE" 502 "login with a bad credential"
expect_eq "$(jget error)" TokenAPIError "bad credential: error name"
expect_match "$(jget ssm_code)" '^[0-9]+$' "bad credential: ssm_code"

req POST /v1/users/bob/login -d '{"cookies": {"bk_token": "a;b"}}'
expect_eq "$CODE" 400 "a cookie value with ';'"

req GET /v1/users/alice/token
expect_eq "$CODE" 200 "alice's saved token"
expect_eq "$(jget access_token)" "$ALICE" "the saved token is the login's"

before=$(dev_counter refresh)
req POST /v1/users/alice/refresh
expect_eq "$CODE" 200 "refresh"
ALICE2=$(jget access_token)
expect_ne "$ALICE2" "$ALICE" "refresh gives a new token"
expect_eq "$(dev_counter refresh)" $((before + 1)) "refresh: one SSM call"
# a caller still holding the old token: the newer saved one, no SSM call
req POST /v1/users/alice/refresh -d "{\"access_token\": \"$ALICE\"}"
expect_eq "$CODE" 200 "refresh with an old token"
expect_eq "$(jget access_token)" "$ALICE2" "refresh with an old token gives the saved one"
expect_eq "$(dev_counter refresh)" $((before + 1)) "refresh with an old token: no SSM call"

req POST /v1/users/carol/refresh
expect_eq "$CODE" 404 "refresh without a saved token"
req GET /v1/users/alice%40corp/token
expect_eq "$(jget error)" TokenNotExist "a percent-encoded user name is decoded"
expect_match "$(jget message)" 'alice@corp' "the decoded user name"

req GET /nowhere
expect_eq "$CODE" 404 "unknown path"
expect_eq "$(jget error)" NotFound "unknown path: error name"
req DELETE /v1/app/token
expect_eq "$CODE" 405 "wrong method"
expect_match "$HEADERS" 'Allow: GET, HEAD' "405 has Allow"

req GET /stats
expect_eq "$CODE" 200 "stats"
expect_match "$(jget client.renewals)" '^[1-9]' "stats: renewals"
expect_match "$(jget agent.requests)" '^[1-9]' "stats: requests"
# a connection per request (as curl and bkoauth --agent make them): the library's token cache
# (BKOAUTH_CACHE_SECONDS, 10 s here) still answers, not a store read per request
r0=$(jget client.store_reads) h0=$(jget client.cache_hits)
for _ in $(seq 1 20); do req GET /v1/users/alice/token; done
req GET /stats
reads=$(($(jget client.store_reads) - r0)) hits=$(($(jget client.cache_hits) - h0))
[ "$reads" -le 2 ] && [ "$hits" -ge 18 ] && ok ||
  fail "20 requests on new connections: $reads store reads, $hits cache hits (expected at most 2 reads)"
req GET /metrics
expect_eq "$CODE" 200 "metrics"
expect_match "$BODY" 'bkoauth_agent_requests_total\{operation="login",result="OK"\} 1' "metrics: logins"
expect_match "$BODY" 'bkoauth_agent_ssm_calls_total\{call="refresh",result="ok"\} 1' "metrics: SSM refresh calls"
expect_match "$BODY" 'bkoauth_agent_ssm_call_duration_seconds_count [1-9]' "metrics: SSM latency histogram"
if "$PY" -c 'import prometheus_client' 2>/dev/null; then
  echo "$BODY" | "$PY" -c 'import sys; from prometheus_client.parser import text_string_to_metric_families as p; list(p(sys.stdin.read()))' \
    && ok || fail "the metrics text does not parse"
fi

# ---- TCP: the bearer secret ----
treq GET /v1/app/token
expect_eq "$CODE" 401 "TCP without Authorization"
expect_match "$HEADERS" 'WWW-Authenticate: Bearer' "401 asks for a bearer"
treq GET /v1/app/token -H "Authorization: Bearer ${SECRET}x"
expect_eq "$CODE" 403 "TCP with a wrong secret"
treq GET /v1/app/token -H "Authorization: Basic $SECRET"
expect_eq "$CODE" 403 "TCP with another scheme"
treq GET /v1/app/token -H "Authorization: Bearer $SECRET"
expect_eq "$CODE" 200 "TCP with the secret"
expect_eq "$(jget access_token)" "$APP" "the same APP token on TCP"
# the whole API on TCP as well
AUTH=(-H "Authorization: Bearer $SECRET")
treq GET /healthz "${AUTH[@]}"
expect_eq "$CODE" 200 "TCP healthz"
expect_eq "$(jget transport)" tcp "TCP healthz transport"
treq GET /v1/users/alice/token "${AUTH[@]}"
expect_eq "$CODE" 200 "TCP: alice's saved token"
expect_eq "$(jget access_token)" "$ALICE2" "TCP: the same saved token as on the Unix socket"
treq POST /v1/users/bob/login "${AUTH[@]}" -d '{"cookies": {"bk_token": "cred-bob"}}'
expect_eq "$CODE" 200 "TCP login"
expect_eq "$(jget user_id)" bob "TCP login user_id"
BOB=$(jget access_token)
before=$(dev_counter refresh)
treq POST /v1/users/bob/refresh "${AUTH[@]}"
expect_eq "$CODE" 200 "TCP refresh"
expect_ne "$(jget access_token)" "$BOB" "TCP refresh gives a new token"
expect_eq "$(dev_counter refresh)" $((before + 1)) "TCP refresh: one SSM call"
treq GET /v1/users/carol/token "${AUTH[@]}"
expect_eq "$(jget error)" TokenNotExist "TCP: no saved token"
treq POST /v1/users/bob/login "${AUTH[@]}" -d '{"cookies": '
expect_eq "$CODE" 400 "TCP: bad JSON"
treq PUT /v1/users/bob/token "${AUTH[@]}"
expect_eq "$CODE" 405 "TCP: wrong method"
treq GET /v1/users/../../app/token "${AUTH[@]}" --path-as-is
expect_eq "$CODE" 400 "TCP: a '..' segment"
treq GET /stats "${AUTH[@]}"
expect_match "$(jget agent.refused)" '^[1-9]' "TCP: stats count the refusals"
treq GET /metrics "${AUTH[@]}"
expect_match "$BODY" 'bkoauth_agent_refused_total\{transport="tcp"\} 3' "TCP: metrics count the refusals"
treq GET /stats "${AUTH[@]}" --http1.0
expect_eq "$CODE" 200 "TCP: HTTP/1.0"
grep -q "refused a request on TCP from 127.0.0.1 port [0-9]*: no Authorization" "$work/agent.log" && ok ||
  fail "no log line for the TCP refusal"
grep -q "$SECRET" "$work/agent.log" && fail "the secret is in the log" || ok

# ---- the Unix socket: a caller of another uid ----
if [ "$(id -u)" = 0 ]; then
  out=$(setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -w ' %{http_code}' --unix-socket "$SOCK" http://agent/v1/app/token)
  expect_match "$out" 'Forbidden.* 403$' "uid 65534 is refused"
  grep -q "refused a request on the Unix socket from uid 65534 gid 65534" "$work/agent.log" && ok ||
    fail "no log line for the refused uid"
  [[ "$out" != *"$APP"* ]] && ok || fail "the refused caller got the token"
else
  echo "test_agent: not root: the other-uid check is skipped"
fi

# ---- hostile requests ----
big=$(head -c 40000 /dev/zero | tr '\0' a)
req GET /v1/app/token -H "X-Big: $big"
expect_match "$CODE" '^4(13|31)$' "huge header"
req GET "/v1/users/$big/token"
expect_match "$CODE" '^4(13|14|31)$' "a huge request line"
req GET "/v1/users/$(head -c 65 /dev/zero | tr '\0' u)/token"
expect_eq "$(jget error)" InvalidArgument "a user name over 64 characters"
hdrs=()
for i in $(seq 1 2000); do hdrs+=(-H "X-H$i: v"); done
req GET /v1/app/token "${hdrs[@]}"
expect_match "$CODE" '^4(13|31)$' "2000 headers"
req POST /v1/users/alice/login -H 'Content-Type: application/json' --data-binary @<(head -c 20000 /dev/zero | tr '\0' ' ')
expect_eq "$CODE" 413 "a body over 16 KiB"
req POST /v1/users/alice/login -d '{"cookies": {"bk_token": "cred-alice"'
expect_eq "$CODE" 400 "bad JSON"
expect_match "$(jget message)" 'line 1 column' "bad JSON: where"
[[ "$(jget message)" != *cred-alice* ]] && ok || fail "the message quotes the body"
req POST /v1/users/alice/login -d '{"cookies": {"bk_token": "x"}, "cookies": {}}'
expect_eq "$CODE" 400 "a repeated member"
req POST /v1/users/alice/login -d '[1]'
expect_eq "$CODE" 400 "JSON but not an object"
req POST /v1/users/alice/login -d '{"cookies": {"bk_token": "x\u0000y"}}'
expect_eq "$CODE" 400 "a NUL in a JSON string"
req GET /v1/users/../app/token --path-as-is
expect_eq "$CODE" 400 "a '..' segment"
req GET /v1/users/a%2Fb/token
expect_eq "$CODE" 400 "%2F in a segment"
req GET /v1/users/a%00b/token
expect_eq "$CODE" 400 "%00 in a segment"
req GET /v1/users/a%zzb/token
expect_eq "$CODE" 400 "bad percent-encoding"
req GET //v1/app/token --path-as-is
expect_eq "$CODE" 400 "an empty segment"
# raw bytes: a NUL in the request line; half a request left hanging (slowloris) while others ask
"$PY" - "$SOCK" <<'EOF' >"$work/raw.out"
import socket, sys, time
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10); s.connect(sys.argv[1]); return s
s = conn(); s.sendall(b"GET /v1/users/a\x00b/token HTTP/1.1\r\nHost: a\r\n\r\n")
print("nul", s.recv(200).split(b"\r\n")[0].decode())
slow = conn(); slow.sendall(b"GET /v1/app/token HTTP/1.1\r\nHost: a\r\nX-A: ")
more = []
for _ in range(20):
    m = conn(); m.sendall(b"POST /v1/users/alice/login HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{"); more.append(m)
# while they hang, another caller is served, and they are still open after its answer
s = conn(); s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
print("meanwhile", s.recv(200).split(b"\r\n")[0].decode())
def still_open(x):
    x.setblocking(False)
    try:
        return x.recv(1) != b""
    except BlockingIOError:
        return True
    finally:
        x.settimeout(10)
print("open after the answer", sum(still_open(x) for x in more + [slow]))
t0 = time.time()
try:
    got = slow.recv(100)
except socket.timeout:
    got = b"timeout"
print("slowloris closed" if got == b"" else "slowloris got %r" % got, round(time.time() - t0))
closed = 0
for m in more:
    try:
        closed += m.recv(100) == b""
    except socket.timeout:
        pass
print("half bodies closed", closed)
EOF
# libmicrohttpd ends the path at a NUL byte: /v1/users/a, no such path
expect_match "$(grep '^nul' "$work/raw.out")" 'HTTP/1.1 404' "a NUL byte in the request line"
expect_match "$(grep '^slowloris' "$work/raw.out")" '^slowloris closed' "a slowloris connection is closed"
expect_match "$(grep '^meanwhile' "$work/raw.out")" 'HTTP/1.1 200' "served while 21 slow connections hang"
expect_eq "$(grep '^open after' "$work/raw.out")" "open after the answer 21" "the slow connections were still open"
expect_eq "$(grep '^half bodies' "$work/raw.out")" "half bodies closed 20" "connections with half a body are closed"
req GET /healthz
expect_eq "$CODE" 200 "the agent is still up after the hostile requests"

# ---- bad arguments (exit 2) and a socket path that cannot be taken (exit 1) ----
start_rc() { "$AGENT" --socket "$work/other.sock" -c "$work/agent.conf" "$@" >/dev/null 2>"$work/start.err"; echo $?; }
expect_eq "$(start_rc --listen 0.0.0.0:8765 --secret-file "$work/secret")" 2 "--listen on a non-loopback address"
expect_match "$(cat "$work/start.err")" 'loopback' "--listen on a non-loopback address: the message"
expect_eq "$(start_rc --listen 127.0.0.1:0)" 2 "--listen without --secret-file"
expect_eq "$(start_rc --socket-mode 0999)" 2 "a bad --socket-mode"
expect_eq "$(start_rc --refresh-interval 0)" 2 "--refresh-interval 0"
expect_eq "$(start_rc --allow-uid no-such-user-here)" 2 "an unknown --allow-uid"
expect_eq "$("$AGENT" --socket "$SOCK" -c "$work/agent.conf" 2>"$work/start.err"; echo $?)" 1 "a second agent on a socket in use"
expect_match "$(cat "$work/start.err")" 'another agent answers on it' "a second agent: the message"
: >"$work/plain-file"
expect_eq "$("$AGENT" --socket "$work/plain-file" -c "$work/agent.conf" 2>/dev/null; echo $?)" 1 "a socket path that is a plain file"
[ -f "$work/plain-file" ] && ok || fail "the plain file was removed"
short=$(head -c 8 /dev/zero | tr '\0' s)
echo "$short" >"$work/short.secret"
expect_eq "$(start_rc --listen 127.0.0.1:0 --secret-file "$work/short.secret")" 1 "a secret under 16 bytes"

# ---- SIGHUP: settings re-read, the same socket ----
inode=$(stat -c %i "$SOCK")
write_conf "$work/agent.conf" "RUN_MODE = 'PRODUCT'"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 50); do req GET /healthz; [ "$(jget env_name)" = prod ] && break; sleep 0.1; done
expect_eq "$(jget env_name)" prod "SIGHUP: RUN_MODE re-read"
expect_eq "$(jget reloads)" 1 "SIGHUP: one reload"
expect_eq "$(stat -c %i "$SOCK")" "$inode" "SIGHUP: the same socket"
grep -q '^RELOADING=1 MONOTONIC_USEC=[0-9]*$' "$work/notify.log" && ok || fail "sd_notify: no RELOADING=1"
echo "RUN_MODE = os.environ['X']" >"$work/agent.conf"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 50); do grep -q "reload refused" "$work/agent.log" && break; sleep 0.1; done
req GET /healthz
expect_eq "$(jget env_name)" prod "bad settings on SIGHUP: the old ones stay"
req GET /v1/app/token
expect_eq "$CODE" 200 "after a refused reload the agent serves"
# reloads under load: every request made meanwhile, on new and kept-alive connections, answered
write_conf "$work/agent.conf" "RUN_MODE = 'PRODUCT'"
"$PY" - "$SOCK" <<'EOF' >"$work/hup.out" &
import http.client, socket, sys, time
class UnixConn(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); self.sock.settimeout(10)
        self.sock.connect(sys.argv[1])
kept, codes, t0 = UnixConn("agent"), {}, time.time()
while time.time() - t0 < 2.0:
    for c in (kept, UnixConn("agent")):
        try:
            c.request("GET", "/v1/app/token"); r = c.getresponse(); r.read(); k = r.status
        except Exception as e:
            k = type(e).__name__
        codes[k] = codes.get(k, 0) + 1
print(" ".join("%s=%d" % kv for kv in sorted(codes.items(), key=str)))
EOF
HUP_PID=$!
for _ in 1 2 3 4; do sleep 0.3; kill -HUP "$AGENT_PID"; done
wait "$HUP_PID"
expect_match "$(cat "$work/hup.out")" '^200=[0-9]+$' "requests during four reloads all answered 200"
req GET /stats
expect_eq "$(jget agent.reloads)" 5 "four more reloads"

# ---- SIGTERM: a request in flight finishes, exit 0 ----
curl -s -X POST "$DEV_URL/__dev/fault?kind=slow&count=1&delay_ms=1500" >/dev/null
write_conf "$work/agent.conf"
kill -HUP "$AGENT_PID"
for _ in $(seq 1 50); do req GET /healthz; [ "$(jget env_name)" = test ] && break; sleep 0.1; done
curl -s -o "$work/inflight.out" -w '%{http_code}' -X POST --unix-socket "$SOCK" http://agent/v1/users/alice/refresh \
  >"$work/inflight.code" &
CURL_PID=$!
sleep 0.5
kill -TERM "$AGENT_PID"
wait "$CURL_PID"
wait "$AGENT_PID"
rc=$?
AGENT_PID=""
expect_eq "$(cat "$work/inflight.code")" 200 "SIGTERM: the request in flight got its answer"
expect_match "$(cat "$work/inflight.out")" '"user_id":"alice"' "SIGTERM: the answer is alice's token"
expect_eq "$rc" 0 "SIGTERM: exit status"
[ ! -e "$SOCK" ] && ok || fail "SIGTERM: the socket file is left"
grep -q '^STOPPING=1$' "$work/notify.log" && ok || fail "sd_notify: no STOPPING=1"

# ---- SIGTERM with a request in flight past --stop-timeout: the agent exits then, not when the
# request ends; that caller gets no answer ----
agent_start -c "$work/agent.conf" --refresh-ahead 0 --stop-timeout 1 || exit 1
curl -s -X POST "$DEV_URL/__dev/fault?kind=slow&count=1&delay_ms=6000" >/dev/null
curl -s -o /dev/null -w '%{http_code}' -X POST --unix-socket "$SOCK" http://agent/v1/users/alice/refresh \
  >"$work/late.code" &
CURL_PID=$!
sleep 0.5
t0=$(date +%s%N)
agent_stop
elapsed_ms=$((($(date +%s%N) - t0) / 1000000))
wait "$CURL_PID"
expect_eq "$AGENT_RC" 0 "--stop-timeout: exit status"
[ "$elapsed_ms" -lt 4500 ] && ok || fail "--stop-timeout 1: the agent took $elapsed_ms ms to stop (the request takes 6 s)"
expect_eq "$(cat "$work/late.code")" 000 "--stop-timeout: the request cut off gets no answer"
grep -q 'still in flight after 1 s: their callers get no answer' "$work/agent.log" && ok ||
  fail "--stop-timeout: no warning line"
[ ! -e "$SOCK" ] && ok || fail "--stop-timeout: the socket file is left"
curl -s -X POST "$DEV_URL/__dev/fault?kind=slow&count=0" >/dev/null

# ---- the allow lists, the socket's group and mode, the connection limit ----
# uid 65534 (nobody) by --allow-uid, primary gid 65532 by --allow-gid, gid 65531 by --group; the
# socket is 0660 of group 65531, so a caller must also be in that group to connect at all
if [ "$(id -u)" = 0 ]; then
  agent_start -c "$work/agent.conf" --refresh-ahead 0 --group 65531 --allow-uid nobody --allow-gid 65532 \
    --max-connections 4 --timeout 2 || exit 1
  expect_eq "$(stat -c '%a %g' "$SOCK")" "660 65531" "the socket's mode and group"
  as() { # UID GID [SUPPLEMENTARY]: GET /v1/app/token as that caller; prints body and status
    local groups=(--clear-groups)
    [ -z "${3:-}" ] || groups=(--groups "$3")
    setpriv --reuid="$1" --regid="$2" "${groups[@]}" curl -s -w ' %{http_code}' --unix-socket "$SOCK" http://agent/v1/app/token
  }
  expect_match "$(as 65534 65531)" '"access_token".* 200$' "--allow-uid nobody: served"
  expect_match "$(as 65533 65531)" '"access_token".* 200$' "--group's gid: served"
  expect_match "$(as 65533 65532 65531)" '"access_token".* 200$' "--allow-gid: served"
  expect_match "$(as 65533 65533 65531)" 'Forbidden.* 403$' "in the socket's group but not allowed: refused"
  grep -q "refused a request on the Unix socket from uid 65533 gid 65533" "$work/agent.log" && ok ||
    fail "no log line for uid 65533"
  # a refused caller causes nothing: a login with a good credential calls no SSM
  before=$(dev_counter total)
  out=$(setpriv --reuid=65533 --regid=65533 --groups 65531 curl -s -w ' %{http_code}' -X POST \
    --unix-socket "$SOCK" http://agent/v1/users/mallory/login -d '{"cookies": {"bk_token": "cred-bob"}}')
  expect_match "$out" 'Forbidden.* 403$' "a refused caller's login"
  expect_eq "$(dev_counter total)" "$before" "a refused caller's login: no SSM call"
  expect_eq "$(as 65533 65533)" " 000" "not in the socket's group: the kernel refuses the connection"
  # the agent's own uid is allowed only when no --allow-uid and no --allow-gid is given
  req GET /v1/app/token
  expect_eq "$CODE" 403 "the agent's own uid, not in the lists given: refused"
  # --max-connections 4: four connections hang; a fifth is closed at once; after --timeout they
  # are closed and callers are served again
  setpriv --reuid=65534 --regid=65531 --clear-groups "$PY" - "$SOCK" <<'EOF' >"$work/limit.out"
import socket, sys, time
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10); s.connect(sys.argv[1]); return s
def ask():
    s = conn()
    try:
        s.sendall(b"GET /v1/app/token HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        return s.recv(200).split(b"\r\n")[0].decode() or "closed"
    except socket.timeout:
        return "timeout"
    except (BrokenPipeError, ConnectionResetError):
        return "closed"
hang = [conn() for _ in range(4)]
for h in hang: h.sendall(b"GET /v1/app/token HTTP/1.1\r\n")
time.sleep(0.3)
t0 = time.time()
print("fifth", ask(), round(time.time() - t0))
for h in hang: h.recv(100)
# the agent's count drops as its threads end, just after the connections close
for _ in range(30):
    got = ask()
    if got != "closed": break
    time.sleep(0.1)
print("after", got)
EOF
  expect_match "$(grep '^fifth' "$work/limit.out")" '^fifth closed 0$' "a fifth connection is closed at once"
  expect_match "$(grep '^after' "$work/limit.out")" 'HTTP/1.1 200' "served again once the hanging ones time out"
  req GET /healthz
  expect_eq "$CODE" 403 "still up (and still refusing its own uid)"
  agent_stop
  expect_eq "$AGENT_RC" 0 "the allow-list agent's exit status"
fi

finish
