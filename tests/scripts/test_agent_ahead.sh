#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bkoauth-agent (docs/AGENT.md): refresh ahead (tokens due soon are renewed with no caller
# present; a caller afterwards makes no SSM call; two agents sharing a store renew a token once,
# the other picks it up), an SSM outage (valid saved tokens served), a
# socket from systemd (socket activation).
#   usage: test_agent_ahead.sh BUILD_DIR SOURCE_DIR
. "$(dirname "$0")/agent_common.sh" test_agent_ahead "$1" "$2"

devserver_start "$DEVSERVER" --user cred-alice=alice --user cred-bob=bob || exit 1
# a token is due for the agent when it has less than 60 + 100 s left
write_conf "$work/agent.conf" "EXPIRES_SECONDS = 60" "BKOAUTH_CACHE_SECONDS = 0" "BKOAUTH_BACKOFF_SECONDS = 1" \
  "BKOAUTH_BACKOFF_MAX_SECONDS = 2"
dev_config() { curl -s -X POST "$DEV_URL/__dev/config?ttl=$1" >/dev/null; }

# tokens of 120 s, saved before the agent starts: due at once
dev_config 120
export BKOAUTH_CONFIG="$work/agent.conf"
if [ -x "$CLI" ]; then
  ALICE=$("$CLI" user-token alice --cookie bk_token=cred-alice)
  APP=$("$CLI" app-token)
else
  agent_start -c "$work/agent.conf" --refresh-ahead 0 || exit 1
  req POST /v1/users/alice/login -d '{"cookies": {"bk_token": "cred-alice"}}'
  ALICE=$(jget access_token)
  req GET /v1/app/token
  APP=$(jget access_token)
  agent_stop
fi
unset BKOAUTH_CONFIG
expect_match "$ALICE" '^[0-9a-f]{40}$' "alice's first token"
# from now on tokens live long: one renewal each, then nothing is due
dev_config 100000
agent_start -c "$work/agent.conf" --refresh-ahead 100 --refresh-spread 0 --refresh-interval 1 || exit 1
for _ in $(seq 1 60); do
  [ "$(dev_counter refresh)" -ge 1 ] && [ "$(dev_counter app_token)" -ge 2 ] && break
  sleep 0.2
done
expect_eq "$(dev_counter refresh)" 1 "refresh ahead: alice's token renewed once, with no caller"
expect_eq "$(dev_counter app_token)" 2 "refresh ahead: the APP token fetched again once, with no caller"
sleep 1.5 # another pass or two: nothing is due any more
total=$(dev_counter total)
req GET /v1/users/alice/token
expect_eq "$CODE" 200 "alice's token after the renewal"
expect_ne "$(jget access_token)" "$ALICE" "the caller gets the renewed token"
expect_match "$(jget expires_in)" '^9[0-9]{4}$' "the renewed token lives long"
req GET /v1/app/token
expect_ne "$(jget access_token)" "$APP" "the caller gets the renewed APP token"
expect_eq "$(dev_counter total)" "$total" "the callers made no SSM call"
req GET /metrics
expect_match "$BODY" 'bkoauth_agent_renewals_ahead_total\{result="renewed"\} 2' "metrics: two renewals ahead"

agent_stop
expect_eq "$AGENT_RC" 0 "exit status"

# ---- two agents sharing one store (two hosts, or an agent and a Django app): a token due for
# both is renewed once; the agent that did not renew it picks the new one up ----
write_conf "$work/pair.conf" "BKOAUTH_DATABASE_URL = 'sqlite:$work/pair.db'" "EXPIRES_SECONDS = 60" \
  "BKOAUTH_CACHE_SECONDS = 0"
dev_config 120
agent_start -c "$work/pair.conf" --refresh-ahead 0 || exit 1
req POST /v1/users/alice/login -d '{"cookies": {"bk_token": "cred-alice"}}'
PAIR_OLD=$(jget access_token)
expect_eq "$CODE" 200 "pair: alice's login"
agent_stop
dev_config 100000
refresh0=$(dev_counter refresh)
# the first renewal call takes 0.9 s: the other agent's pass finds the row being renewed and
# waits for it (the library waits up to 1 s for another caller's renewal of a valid token)
curl -s -X POST "$DEV_URL/__dev/fault?kind=slow&count=1&delay_ms=900" >/dev/null
PAIR_PIDS=() PAIR_NEW=()
trap 'kill "${PAIR_PIDS[@]}" 2>/dev/null; agent_cleanup' EXIT
for x in a b; do
  "$AGENT" --socket "$work/pair-$x.sock" -c "$work/pair.conf" --refresh-ahead 100 --refresh-spread 0 \
    --refresh-interval 1 2>>"$work/pair-$x.log" &
  PAIR_PIDS+=($!)
done
for _ in $(seq 1 100); do
  [ "$(dev_counter refresh)" -ge $((refresh0 + 1)) ] && break
  sleep 0.1
done
sleep 2.5 # both agents' next passes: nothing is due any more
expect_eq "$(dev_counter refresh)" $((refresh0 + 1)) "pair: alice's token renewed once for both agents"
renewed=0 picked=0
for x in a b; do
  SOCK="$work/pair-$x.sock" req GET /metrics
  r=$(grep -o '^bkoauth_agent_renewals_ahead_total{result="renewed"} [0-9]*' <<<"$BODY" | awk '{print $2}')
  p=$(grep -o '^bkoauth_agent_renewals_ahead_total{result="picked_up"} [0-9]*' <<<"$BODY" | awk '{print $2}')
  renewed=$((renewed + ${r:-0})) picked=$((picked + ${p:-0}))
  SOCK="$work/pair-$x.sock" req GET /v1/users/alice/token
  expect_ne "$(jget access_token)" "$PAIR_OLD" "pair: agent $x serves the renewed token"
  PAIR_NEW[${#PAIR_NEW[@]}]=$(jget access_token)
done
expect_eq "${PAIR_NEW[0]}" "${PAIR_NEW[1]}" "pair: both agents serve the same token"
expect_eq "$renewed" 1 "pair: one agent renewed the token"
expect_eq "$picked" 1 "pair: the other agent picked it up"
grep -q 'was renewed elsewhere; picked up' "$work"/pair-*.log && ok || fail "pair: no 'picked up' log line"
for pid in "${PAIR_PIDS[@]}"; do kill -TERM "$pid"; wait "$pid" || fail "pair: an agent's exit status"; done
PAIR_PIDS=()

# ---- an SSM outage: a valid saved token is served ----
agent_start -c "$work/agent.conf" --refresh-ahead 0 || exit 1
dev_config 30 # bob's token: 30 s, expiring soon for the library (EXPIRES_SECONDS 60) but valid
req POST /v1/users/bob/login -d '{"cookies": {"bk_token": "cred-bob"}}'
BOB=$(jget access_token)
expect_eq "$CODE" 200 "bob's login"
dev_config 100000
curl -s -X POST "$DEV_URL/__dev/fault?kind=drop&count=1000" >/dev/null
req GET /v1/users/bob/token
expect_eq "$CODE" 200 "SSM outage: bob's valid token is served"
expect_eq "$(jget access_token)" "$BOB" "SSM outage: the saved token"
req GET /v1/users/alice/token
expect_eq "$CODE" 200 "SSM outage: alice's long-lived token is served"
req POST /v1/users/carol/login -d '{"cookies": {"bk_token": "cred-alice"}}'
expect_eq "$CODE" 503 "SSM outage: a login without a saved token"
expect_match "$HEADERS" 'Retry-After: 5' "503 has Retry-After"
req GET /stats
expect_match "$(jget client.served_during_outage)" '^[1-9]' "stats: served_during_outage"
req GET /metrics
expect_match "$BODY" 'bkoauth_agent_served_stale_total [1-9]' "metrics: tokens served stale"
expect_match "$BODY" 'bkoauth_agent_ssm_calls_total\{call="refresh",result="failed"\} [1-9]' "metrics: failed SSM calls"
curl -s -X POST "$DEV_URL/__dev/fault?kind=drop&count=0" >/dev/null
# after the outage, refresh ahead renews bob's token (due since its login)
for _ in $(seq 1 80); do
  req GET /v1/users/bob/token
  [ "$(jget access_token)" != "$BOB" ] && break
  sleep 0.2
done
expect_ne "$(jget access_token)" "$BOB" "after the outage bob's token is renewed"
agent_stop
expect_eq "$AGENT_RC" 0 "exit status"

# ---- socket activation: the Unix socket from systemd (LISTEN_FDS / LISTEN_PID) ----
ASOCK="$work/activated.sock"
"$PY" - "$ASOCK" "$AGENT" -c "$work/agent.conf" --socket "$work/unused.sock" --refresh-ahead 0 \
  2>>"$work/agent.log" <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(16)
if s.fileno() != 3: os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ["LISTEN_FDS"] = "1"
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
EOF
AGENT_PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null --unix-socket "$ASOCK" http://agent/healthz && break; sleep 0.1; done
SOCK=$ASOCK req GET /v1/users/alice/token
expect_eq "$CODE" 200 "socket activation: served on systemd's socket"
[ ! -e "$work/unused.sock" ] && ok || fail "socket activation: --socket was made as well"
agent_stop
expect_eq "$AGENT_RC" 0 "socket activation: exit status"
[ -S "$ASOCK" ] && ok || fail "socket activation: systemd's socket file was removed"

finish
