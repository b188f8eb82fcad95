#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The PostgreSQL store through PgBouncer (Debian's pgbouncer, started here on a free loopback port
# in front of the test cluster of scripts/pg.sh) in session, transaction and statement pool mode,
# with fewer server connections than the clients open. In each mode the integration suites run
# with their clients' URLs pointing at PgBouncer (tests/support/teststore.c,
# BKOAUTH_TEST_PG_POOLER):
#   - test_operations: the four operations (one protocol: the store is what differs here);
#   - test_concurrency: the herds (4 processes x 16 threads on one expiring user / APP / login
#     token: exactly one SSM call, 64/64 served), a renewal killed half-way;
#   - test_parallel: 16 logins at once against a service answering in 1 s, lookups meanwhile;
#   - test_store: rows, renewals across threads and processes, a killed holder, the first calls
#     after PostgreSQL restarts behind PgBouncer and after PgBouncer restarts
#     (BKOAUTH_TEST_POOLER_CTL).
# After each suite the server is asked directly: no advisory lock held (pg_locks), no renewal
# lease left in any database the suite made (bkoauth_renewal_lease).
#   test_pgbouncer_pg.sh BUILD_DIR SOURCE_DIR    (BKOAUTH_TEST_PG_URL, BKOAUTH_TEST_PG_DIR: scripts/test.sh)
set -euo pipefail
build=${1:?usage: test_pgbouncer_pg.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: test_pgbouncer_pg.sh BUILD_DIR SOURCE_DIR}

if [ -z "${BKOAUTH_TEST_PG_URL:-}" ] || [ -z "${BKOAUTH_TEST_PG_DIR:-}" ]; then
  echo "SKIP: no test PostgreSQL cluster (BKOAUTH_TEST_PG_URL, BKOAUTH_TEST_PG_DIR: run scripts/test.sh)"
  exit 77
fi
if ! grep -q '^BKOAUTH_TEST_STORES:STRING=.*postgres' "$build/CMakeCache.txt"; then
  echo "SKIP: this build does not run the store suites on PostgreSQL (BKOAUTH_TEST_STORES)"
  exit 77
fi

pg_port=$(cat "$BKOAUTH_TEST_PG_DIR/port")
psql_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/psql
tmp=$(mktemp -d /tmp/bkoauth-pgbouncer.XXXXXX)
chmod 755 "$tmp" # PgBouncer runs as postgres when this runs as root
bouncer="$tmp/pgbouncer"
cleanup() {
  bash "$src/scripts/pgbouncer.sh" stop "$bouncer" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

server() { # SQL on the server itself, not through PgBouncer
  "$psql_bin" -h 127.0.0.1 -p "$pg_port" -U postgres -X -A -t -q -v ON_ERROR_STOP=1 "$@"
}

databases() {
  server -d postgres -c "SELECT datname FROM pg_database WHERE datname LIKE 'bkoauth\_%' ORDER BY 1"
}

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# No advisory lock on the server, no lease row in the databases made since $1 (a list); then
# those databases are dropped.
check_nothing_held() {
  local mode=$1 suite=$2 before=$3 db n
  n=$(server -d postgres -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
  [ "$n" = 0 ] || fail "$mode/$suite: $n advisory locks held on the server afterwards"
  for db in $(databases); do
    grep -qx "$db" <<<"$before" && continue
    n=$(server -d "$db" -c "SELECT count(*) FROM bkoauth_renewal_lease" 2>/dev/null || echo none)
    if [ "$n" = none ]; then
      fail "$mode/$suite: database $db has no table bkoauth_renewal_lease"
    elif [ "$n" != 0 ]; then
      fail "$mode/$suite: $n renewal leases left in $db: $(server -d "$db" -c "SELECT lock_key || ' ' || holder FROM bkoauth_renewal_lease" | tr '\n' ';')"
    fi
    server -d postgres -c "DROP DATABASE \"$db\" WITH (FORCE)"
  done
}

run_suite() { # mode, test program, extra environment (NAME=VALUE ...)
  local mode=$1 prog=$2 before start
  shift 2
  before=$(databases)
  start=$(date +%s)
  if ! env BKOAUTH_TEST_STORE=postgres BKOAUTH_TEST_PG_POOLER="127.0.0.1:$port" BKOAUTH_TEST_KEEP_DBS=1 \
      "$@" "$build/tests/$prog" >"$tmp/out" 2>&1; then
    cat "$tmp/out" >&2
    fail "$mode/$prog failed through PgBouncer"
  fi
  echo "  $prog: $(grep -c '^\[       OK \]' "$tmp/out") passed, $(grep -c '^\[  SKIPPED \]' "$tmp/out") skipped, $(( $(date +%s) - start )) s"
  check_nothing_held "$mode" "$prog" "$before"
}

for mode in session transaction statement; do
  # session mode gives each client connection a server connection until it closes: the pool
  # must hold what the processes keep open, and min_pool_size keeps server connections warm (a
  # cold pool opens them one at a time, some 50 ms each: the first herd on a new database took
  # over the 1 s that callers holding a valid token wait); see README, "Behind PgBouncer". The
  # other modes run with fewer server connections than the clients open.
  pool=5 min_pool=0
  [ "$mode" = session ] && pool=80 min_pool=24
  port=$(bash "$src/scripts/pgbouncer.sh" start "$bouncer" "$pg_port" "$mode" "$pool" "$min_pool")
  echo "== PgBouncer $mode mode, default_pool_size $pool, min_pool_size $min_pool, on 127.0.0.1:$port"
  run_suite "$mode" test_operations BKOAUTH_TEST_SKIP=test_database_restart BKOAUTH_TEST_ONE_PROTOCOL=1
  run_suite "$mode" test_concurrency
  # a service answering in 1 s; 2 s in session mode, where each new client connection waits for
  # PgBouncer to open a server connection of its own, one at a time (16 logins of 4 new
  # processes took longer than 1 s to reach the service)
  slow=1000
  [ "$mode" = session ] && slow=2000
  run_suite "$mode" test_parallel BKOAUTH_TEST_SLOW_MS=$slow
  if [ "$min_pool" != 0 ]; then
    # PgBouncer keeping min_pool_size connects to the server while it restarts, fails, and then
    # refuses every client for server_login_retry (15 s): the restarts run without it
    bash "$src/scripts/pgbouncer.sh" stop "$bouncer"
    port=$(bash "$src/scripts/pgbouncer.sh" start "$bouncer" "$pg_port" "$mode" "$pool" 0)
    echo "  (restarted without min_pool_size, on 127.0.0.1:$port)"
  fi
  run_suite "$mode" test_store BKOAUTH_TEST_POOLER_CTL="bash '$src/scripts/pgbouncer.sh' restart '$bouncer'"
  if grep -q "unsupported startup parameter\|prepared statement\|transaction blocks not allowed" "$bouncer/pgbouncer.log"; then
    fail "$mode: PgBouncer refused what the client sent: $(grep -m3 "unsupported startup parameter\|prepared statement\|transaction blocks not allowed" "$bouncer/pgbouncer.log")"
  fi
  bash "$src/scripts/pgbouncer.sh" stop "$bouncer"
done

# Session mode with a pool smaller than the clients hold: PgBouncer queues a statement without a
# word until its query_wait_timeout (120 s). The client bounds the wait (BKOAUTH_TIMEOUT_MS + 5 s)
# and fails with a StoreError that names the pool mode and the fix. The one server connection is
# held by another client for the whole case.
port=$(bash "$src/scripts/pgbouncer.sh" start "$bouncer" "$pg_port" session 1 0)
echo "== PgBouncer session mode, default_pool_size 1, its server connection held by another client"
db=$(sed -E 's|.*/([^/?]+)(\?.*)?$|\1|' <<<"$BKOAUTH_TEST_PG_URL")
"$psql_bin" -h 127.0.0.1 -p "$port" -U postgres -d "$db" -X -q -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 1 100); do # until the holder's statement runs on the server
  n=$(server -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'")
  [ "$n" = 1 ] && break
  sleep 0.1
done
start=$(date +%s)
set +e
BKOAUTH_TIMEOUT_MS=1000 OAUTH_API_URL=http://127.0.0.1:9 APP_CODE=demo SECRET_KEY=not-used \
  "$build/tools/bkoauth" -D "postgresql://postgres@127.0.0.1:$port/$db" token alice >"$tmp/out" 2>&1
rc=$?
set -e
took=$(( $(date +%s) - start ))
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
echo "  bkoauth token alice: exit $rc after $took s: $(head -c 300 "$tmp/out")"
grep -q "StoreError" "$tmp/out" || fail "undersized session pool: no StoreError: $(cat "$tmp/out")"
grep -q "pool_mode = session" "$tmp/out" || fail "undersized session pool: the message does not name the pool mode"
grep -q "default_pool_size" "$tmp/out" || fail "undersized session pool: the message does not name the fix"
[ "$took" -lt 60 ] || fail "undersized session pool: the call waited $took s (PgBouncer's queue), not the client's bound"
bash "$src/scripts/pgbouncer.sh" stop "$bouncer"

if [ "$failures" -ne 0 ]; then
  echo "$failures failures" >&2
  exit 1
fi
echo "PASS: session, transaction and statement pool modes"
