#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The test command: installs what is missing, builds with warnings as errors, runs the whole
# suite, then runs it again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    one plain build and its tests only
# The threaded tests also run under ThreadSanitizer. The store suites run on SQLite, on a
# throwaway PostgreSQL (scripts/pg.sh) and on a throwaway MariaDB (scripts/mysql.sh).
# Last, the Debian packages are built and tested (tests/package/test_packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test

quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc 2>/dev/null || echo 2)

run_suite() { # name, cmake args...
  local dir="build-test/$1"; shift
  echo "== configure and build: $dir ($*)"
  # every part required: a missing package fails the configure instead of leaving tests out
  cmake -S . -B "$dir" -DBKOAUTH_WERROR=ON -DBKOAUTH_BUILD_TESTS=ON -DBKOAUTH_WITH_POSTGRESQL=ON \
    -DBKOAUTH_WITH_MYSQL=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== test: $dir"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" ${CTEST_ARGS:-})
}

# A throwaway PostgreSQL cluster and a throwaway MariaDB server on loopback: the store suites
# run on SQLite and on each of them.
pgdir=$(mktemp -d /tmp/bkoauth-pg.XXXXXX)
mydir=$(mktemp -d /tmp/bkoauth-mysql.XXXXXX)
trap 'bash scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir";
      bash scripts/mysql.sh stop "$mydir" >/dev/null 2>&1 || true; rm -rf "$mydir"' EXIT
BKOAUTH_TEST_PG_URL=$(bash scripts/pg.sh start "$pgdir")
export BKOAUTH_TEST_PG_URL BKOAUTH_TEST_PG_DIR="$pgdir"
BKOAUTH_TEST_MYSQL_URL=$(bash scripts/mysql.sh start "$mydir")
export BKOAUTH_TEST_MYSQL_URL BKOAUTH_TEST_MYSQL_DIR="$mydir"
stores="-DBKOAUTH_TEST_STORES=sqlite;postgres;mysql"

run_suite plain -DCMAKE_BUILD_TYPE=RelWithDebInfo "$stores"
if [ "$quick" = 0 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite asan-ubsan -DCMAKE_BUILD_TYPE=Debug -DBKOAUTH_SANITIZE=address,undefined -DBKOAUTH_BUILD_BENCH=OFF "$stores"
fi
# MySQL runs in the plain and sanitizer builds above; ThreadSanitizer runs the threaded suites on
# SQLite and PostgreSQL only (the MariaDB client library is not built for it, and the time is
# better spent there)
stores="-DBKOAUTH_TEST_STORES=sqlite;postgres"
if [ "$quick" = 0 ]; then
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 CTEST_ARGS="-R concurrency|ssm_wire|store|jwt|parallel|faults|cache|pool|clock" \
    run_suite tsan -DCMAKE_BUILD_TYPE=Debug -DBKOAUTH_SANITIZE=thread -DBKOAUTH_BUILD_BENCH=OFF \
      -DBKOAUTH_BUILD_EXAMPLES=OFF "$stores"
fi
if [ "$quick" = 0 ]; then
  echo "== Debian packages: build, lintian, contents, outside program (tests/package/test_packages.sh)"
  bash tests/package/test_packages.sh build-test/deb
fi
echo "== all tests passed"
