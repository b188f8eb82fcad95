#!/usr/bin/env bash
# The test command: installs what is missing, builds with warnings as errors, runs the whole
# suite, then runs it again under AddressSanitizer + UndefinedBehaviorSanitizer.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    one plain build and its tests only
# The threaded tests also run under ThreadSanitizer.
# Last, the Debian packages are built and tested (tests/package/test_packages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

quick=0
[ "${1:-}" = "--quick" ] && quick=1
jobs=$(nproc 2>/dev/null || echo 2)

run_suite() { # name, cmake args...
  local dir="build-test/$1"; shift
  echo "== configure and build: $dir ($*)"
  cmake -S . -B "$dir" -DBKOAUTH_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== test: $dir"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" ${CTEST_ARGS:-})
}

# A throwaway PostgreSQL cluster on loopback: the store suites run on SQLite and on it.
pgdir=$(mktemp -d /tmp/bkoauth-pg.XXXXXX)
trap 'bash scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
BKOAUTH_TEST_PG_URL=$(bash scripts/pg.sh start "$pgdir")
export BKOAUTH_TEST_PG_URL BKOAUTH_TEST_PG_DIR="$pgdir"
stores="-DBKOAUTH_TEST_STORES=sqlite;postgres"

run_suite plain -DCMAKE_BUILD_TYPE=RelWithDebInfo "$stores"
if [ "$quick" = 0 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite asan-ubsan -DCMAKE_BUILD_TYPE=Debug -DBKOAUTH_SANITIZE=address,undefined -DBKOAUTH_BUILD_BENCH=OFF "$stores"
fi
if [ "$quick" = 0 ]; then
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 CTEST_ARGS="-R concurrency|ssm_wire|store|jwt|parallel|faults" \
    run_suite tsan -DCMAKE_BUILD_TYPE=Debug -DBKOAUTH_SANITIZE=thread -DBKOAUTH_BUILD_BENCH=OFF \
      -DBKOAUTH_BUILD_EXAMPLES=OFF "$stores"
fi
if [ "$quick" = 0 ]; then
  echo "== Debian packages: build, lintian, contents, outside program (tests/package/test_packages.sh)"
  bash tests/package/test_packages.sh build-test/deb
fi
echo "== all tests passed"
