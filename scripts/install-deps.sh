#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs the Debian packages of one set, and says which set it installs and why.
#   bash scripts/install-deps.sh [--list] [SET...]        default SET: test
#     demo     what scripts/demo.sh builds and runs: the library with its SQLite store, the
#              bkoauth command line and bkoauth-devserver. No database server, no test tools.
#              A plain `cmake -S . -B build` configures with this set alone: the PostgreSQL and
#              MySQL stores, the tests and the benchmarks are switched off when what they need
#              is absent (CMake says so and names the package).
#     test     everything the README's test command (scripts/test.sh, .ci/run) needs: the demo
#              set, both database stores and their throwaway servers, cmocka, Django, PyJWT,
#              libfaketime, the proxies, PgBouncer, Go for the agent's examples, and the
#              package set (the suite ends by building and checking the Debian packages).
#     bench    the benchmarks (bench/): the demo set, both database stores, their servers and
#              cmocka (the benchmarks share the tests' support code).
#     package  the Debian packages (scripts/package.sh): the packaging tools and the
#              Build-Depends of debian/control.
#     abi      the ABI comparison (scripts/abi-check.sh): the demo set, git and abidiff.
#     fuzz     the libFuzzer targets (fuzz/README.md): the demo set and clang.
#   --list     print the set's packages and whether each is installed; install nothing.
# Idempotent: packages already present are skipped; nothing is installed when all are present.
set -euo pipefail

# Each group: "why|packages". A set is a list of groups.
declare -A GROUP=(
  [build]="the build (a C compiler and the linker tools, CMake, pkg-config)|build-essential cmake pkg-config"
  [libs]="the libraries a build with the SQLite store needs (libcurl, Jansson, SQLite, OpenSSL's libcrypto)|libcurl4-openssl-dev libjansson-dev libsqlite3-dev libssl-dev"
  [devserver]="bkoauth-devserver, the local SSM service (libmicrohttpd)|libmicrohttpd-dev"
  [demo_tools]="the demo's own lines (masking, reading the JSON) and a look into bkoauth.db|python3 sqlite3"
  [pg]="the PostgreSQL store (libpq's headers: libpq itself is loaded on first use)|libpq-dev"
  [pg_server]="the throwaway PostgreSQL server the tests and benchmarks start (scripts/pg.sh)|postgresql"
  [mysql]="the MySQL / MariaDB store (the connector's headers: loaded on first use)|libmariadb-dev"
  [mysql_server]="the throwaway MariaDB server the tests start (scripts/mysql.sh)|mariadb-server mariadb-client"
  [cmocka]="the C unit and integration tests, and the support code the benchmarks share with them|libcmocka-dev"
  [django]="Django sharing the token table on SQLite, PostgreSQL and MariaDB; time zones|python3-django python3-psycopg2 python3-mysqldb tzdata"
  [jwt]="JWTs signed and checked with PyJWT and openssl; the devserver driven with curl|python3-jwt python3-cryptography openssl curl"
  [faketime]="the wall clock stepped under a running client|libfaketime faketime"
  [proxies]="TLS and HTTP proxies in front of the devserver; PgBouncer in front of PostgreSQL|tinyproxy-bin stunnel4 pgbouncer"
  [go]="the agent's Go example client (tests/scripts/test_agent_examples.sh)|golang-go"
  [man]="the man pages rendered by the tests|man-db"
  [package]="the Debian packages built and checked (scripts/package.sh, lintian)|dpkg-dev debhelper fakeroot lintian binutils"
  [abi]="the shared library at two commits compared (git worktree, abidiff)|git abigail-tools"
  [fuzz]="the fuzzers (clang's libFuzzer)|clang"
  [memtools]="what glibc's per-thread caches hold, read with gdb (bench/gdb_tcache.sh); the instruction counts of bench/paths_ir.sh|gdb libc6-dbg valgrind"
)
declare -A SET=(
  [demo]="build libs devserver demo_tools"
  [test]="build libs devserver demo_tools pg pg_server mysql mysql_server cmocka django jwt faketime proxies go man package"
  [bench]="build libs devserver pg pg_server mysql mysql_server cmocka memtools"
  [package]="build libs devserver pg mysql cmocka package"
  [abi]="build libs devserver abi"
  [fuzz]="build libs devserver fuzz"
)
declare -A ABOUT=(
  [demo]="what scripts/demo.sh builds and runs (the library with SQLite, the bkoauth command line, bkoauth-devserver); no database server, no test tools. The tests need more: bash scripts/install-deps.sh test"
  [test]="everything the test command needs (scripts/test.sh, .ci/run): the demo set included"
  [bench]="what the benchmarks (bench/) build and run"
  [package]="what scripts/package.sh needs to build the Debian packages (debian/control's Build-Depends included)"
  [abi]="what scripts/abi-check.sh needs to compare the shared library at two commits"
  [fuzz]="what the libFuzzer targets (fuzz/) need"
)

usage() {
  echo "usage: bash scripts/install-deps.sh [--list] [demo|test|bench|package|abi|fuzz ...]   (default: test)" >&2
  exit 2
}
list=0
sets=()
for a in "$@"; do
  case "$a" in
    --list) list=1 ;;
    -h | --help) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) [ -n "${SET[$a]:-}" ] || usage; sets+=("$a") ;;
  esac
done
[ ${#sets[@]} -gt 0 ] || sets=(test)

PACKAGES=()
declare -A seen_group=()
for s in "${sets[@]}"; do
  echo "install-deps: the $s set: ${ABOUT[$s]}." >&2
  for g in ${SET[$s]}; do
    [ -z "${seen_group[$g]:-}" ] || continue
    seen_group[$g]=1
    echo "  - ${GROUP[$g]%%|*}: ${GROUP[$g]#*|}" >&2
    read -r -a pkgs <<<"${GROUP[$g]#*|}"
    PACKAGES+=("${pkgs[@]}")
  done
done
names="${sets[*]}"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${PACKAGES[@]}"; do
  installed "$p" || missing+=("$p")
done

if [ "$list" = 1 ]; then
  for p in "${PACKAGES[@]}"; do
    if installed "$p"; then echo "$p installed"; else echo "$p missing"; fi
  done
  exit 0
fi

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages of the ${names// /, } set are installed" >&2
  exit 0
fi

echo "install-deps: installing ${missing[*]} (of the ${names// /, } set)" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
# the tests start their own throwaway MariaDB (scripts/mysql.sh): installing mariadb-server must
# not start (or enable) the system's service, so the package scripts are told not to (nor
# pgbouncer's: tests/scripts/test_pgbouncer_pg.sh starts its own)
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\ncase "$1" in mariadb|mysql|mariadb.service|mysql.service|pgbouncer|pgbouncer.service) exit 101;; esac\nexit 0\n' \
    | $SUDO tee "$policy" >/dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
stamp=/var/lib/apt/periodic/update-success-stamp
if [ ! -d /var/lib/apt/lists/partial ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ] \
   || ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
