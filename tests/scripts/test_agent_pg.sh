#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bkoauth-agent on PostgreSQL: the test cluster restarts under a running agent; the next requests
# are served (the library replaces the broken connections), a StoreError while it is down is a
# 503 with Retry-After, and the agent stays up.
#   usage: test_agent_pg.sh BUILD_DIR SOURCE_DIR  (BKOAUTH_TEST_PG_URL, BKOAUTH_TEST_PG_DIR: scripts/test.sh)
if [ -z "${BKOAUTH_TEST_PG_URL:-}" ] || [ -z "${BKOAUTH_TEST_PG_DIR:-}" ]; then
  echo "SKIP: no test PostgreSQL cluster (BKOAUTH_TEST_PG_URL, BKOAUTH_TEST_PG_DIR: run scripts/test.sh)"
  exit 77
fi
. "$(dirname "$0")/agent_common.sh" test_agent_pg "$1" "$2"

devserver_start "$DEVSERVER" --user cred-alice=alice || exit 1
write_conf "$work/agent.conf" "BKOAUTH_CACHE_SECONDS = 0"
agent_start -c "$work/agent.conf" -D "$BKOAUTH_TEST_PG_URL" --refresh-ahead 0 || exit 1
# a user of its own: the table is shared with the other suites
U="agentpg$$"
curl -s -X POST "$DEV_URL/__dev/reset" >/dev/null
req POST "/v1/users/$U/login" -d '{"cookies": {"bk_token": "cred-alice"}}'
expect_eq "$CODE" 200 "login on PostgreSQL"
TOKEN=$(jget access_token)

bash "$src/scripts/pg.sh" down "$BKOAUTH_TEST_PG_DIR" >/dev/null 2>&1
req GET "/v1/users/$U/token"
expect_eq "$CODE" 503 "PostgreSQL down: 503"
expect_eq "$(jget error)" StoreError "PostgreSQL down: StoreError"
expect_match "$HEADERS" 'Retry-After: 5' "PostgreSQL down: Retry-After"
bash "$src/scripts/pg.sh" up "$BKOAUTH_TEST_PG_DIR" >/dev/null 2>&1

req GET "/v1/users/$U/token"
expect_eq "$CODE" 200 "the first request after the restart"
expect_eq "$(jget access_token)" "$TOKEN" "the saved token after the restart"
bash "$src/scripts/pg.sh" restart "$BKOAUTH_TEST_PG_DIR" >/dev/null 2>&1
req GET "/v1/users/$U/token"
expect_eq "$CODE" 200 "the first request after a quick restart"
req GET /metrics
expect_match "$BODY" 'bkoauth_agent_store_errors_total [1-9]' "metrics: store errors"
expect_match "$BODY" 'bkoauth_agent_store_reconnects_total [1-9]' "metrics: reconnects"
expect_eq "$(dev_counter user_token)" 1 "one SSM call in all"
agent_stop
expect_eq "$AGENT_RC" 0 "exit status"
finish
