#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian packages, end to end, without installing anything into the system:
#  1. builds them with scripts/package.sh (which also runs lintian and fails on any error or
#     unjustified warning), with DEB_BUILD_OPTIONS=nocheck: the unit tests run in the suite;
#  2. checks what each package holds (exactly), its Depends against what its binaries need
#     (each NEEDED library, each pkg-config module bkoauth.pc requires), the soname, and that
#     the symbols file, the library's exports and the header's BKOAUTH_API functions agree;
#  3. checks the packages install together on this system (apt-get --simulate);
#  4. unpacks them into a throwaway root (dpkg-deb -x) and there builds tests/outside/outside.c
#     against libbkoauth-dev with pkg-config (shared, and the static archive) and with CMake's
#     find_package, runs each against libbkoauth0 and the packaged bkoauth-devserver on both
#     protocols, runs the packaged bkoauth command, and reads the packaged man pages.
#   tests/package/test_packages.sh [OUTDIR]     default OUTDIR: build-test/deb
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$src/build-test/deb}
. "$src/scripts/lib/devserver.sh"

# grep without -q reads all its input, so no command before it in a pipe dies of SIGPIPE
contains() { grep "$@" >/dev/null; }
fail() { echo "test_packages: FAIL: $*" >&2; exit 1; }
checks=0
ok() { checks=$((checks + 1)); }

DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}" bash "$src/scripts/package.sh" "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d /tmp/bkoauth-package-test.XXXXXX)
trap 'devserver_stop; rm -rf "$work"' EXIT
root="$work/root"
cd "$work" # bkoauth reads ./bkoauth.conf when present: none here

ma=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
arch=$(dpkg --print-architecture)
version=$(cd "$src" && dpkg-parsechangelog -S Version)
upstream=$(sed -n 's/^project(bkoauth VERSION \([0-9][0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
soname=libbkoauth.so.0
packages=(libbkoauth0 libbkoauth-dev bkoauth-tools bkoauth-devserver bkoauth-agent)
deb() { echo "$out/${1}_${version}_${arch}.deb"; }
# every function bkoauth.h exports, one a line, sorted
api=$(sed -n 's/^BKOAUTH_API .*[ *]\(bkoauth_[a-z0-9_]*\)(.*/\1/p' "$src/include/bkoauth.h" | sort)
[ "$(echo "$api" | wc -l)" -ge 20 ] || fail "found only $(echo "$api" | wc -l) BKOAUTH_API functions in bkoauth.h"

# ---- 1. the five packages, and no others (beside their -dbgsym) ------------------------------
for p in "${packages[@]}"; do
  [ -f "$(deb "$p")" ] || fail "package.sh did not make $(deb "$p")"
done
for f in "$out"/*.deb; do
  name=$(dpkg-deb -f "$f" Package)
  case " ${packages[*]} " in *" ${name%-dbgsym} "*) ;; *) fail "unexpected package $name ($f)" ;; esac
done
ok

# ---- 2. contents: exactly these files (directories aside) --------------------------------------
files_of() { # the regular files and symlinks of a .deb, without the leading ./, sorted
  dpkg-deb -c "$1" | awk '$1 !~ /^d/ {print $6}' | sed 's|^\./||' | sort
}
expect_files() { # package, expected paths (one a line)
  local p=$1 want got
  # beside its own files each package has its changelog, copyright and lintian overrides
  want=$( (printf '%s\n' "$2"; printf 'usr/share/doc/%s/changelog.Debian.gz\nusr/share/doc/%s/copyright\n' "$p" "$p"
           printf 'usr/share/lintian/overrides/%s\n' "$p") \
          | sed '/^$/d' | sort)
  got=$(files_of "$(deb "$p")")
  if [ "$want" != "$got" ]; then
    diff -u <(echo "$want") <(echo "$got") | sed 's/^/  /' >&2 || true
    fail "$p does not hold exactly the expected files (- expected, + in the package)"
  fi
  ok
}
expect_files libbkoauth0 "usr/lib/$ma/$soname
usr/lib/$ma/libbkoauth.so.$upstream"
expect_files libbkoauth-dev "usr/include/bkoauth.h
usr/lib/$ma/libbkoauth.so
usr/lib/$ma/libbkoauth.a
usr/lib/$ma/pkgconfig/bkoauth.pc
usr/lib/$ma/cmake/bkoauth/bkoauthConfig.cmake
usr/lib/$ma/cmake/bkoauth/bkoauthConfigVersion.cmake
usr/lib/$ma/cmake/bkoauth/bkoauthTargets.cmake
usr/lib/$ma/cmake/bkoauth/bkoauthTargets-none.cmake
usr/share/man/man3/bkoauth.3.gz
$(echo "$api" | sed 's|.*|usr/share/man/man3/&.3.gz|')"
expect_files bkoauth-tools "usr/bin/bkoauth
usr/share/man/man1/bkoauth.1.gz"
expect_files bkoauth-devserver "usr/bin/bkoauth-devserver
usr/share/man/man1/bkoauth-devserver.1.gz"
expect_files bkoauth-agent "usr/bin/bkoauth-agent
usr/share/man/man1/bkoauth-agent.1.gz
etc/bkoauth/agent.conf
etc/default/bkoauth-agent
lib/systemd/system/bkoauth-agent.service
lib/systemd/system/bkoauth-agent.socket
usr/lib/sysusers.d/bkoauth-agent.conf"
# the settings and the options are conffiles (an admin's change survives an upgrade)
conffiles=$(dpkg-deb --ctrl-tarfile "$(deb bkoauth-agent)" | tar -xOf - ./conffiles | sort)
[ "$conffiles" = "$(printf '/etc/bkoauth/agent.conf\n/etc/default/bkoauth-agent')" ] \
  || fail "bkoauth-agent's conffiles are not agent.conf and default/bkoauth-agent: $conffiles"
ok

for p in "${packages[@]}"; do dpkg-deb -x "$(deb "$p")" "$root"; done
libdir="$root/usr/lib/$ma"

# ---- 2. the runtime library: soname, exports, symbols file -------------------------------------
[ "$(objdump -p "$libdir/libbkoauth.so.$upstream" | awk '$1 == "SONAME" {print $2}')" = "$soname" ] \
  || fail "libbkoauth.so.$upstream in libbkoauth0 does not have the soname $soname"
[ "$(readlink "$libdir/$soname")" = "libbkoauth.so.$upstream" ] || fail "$soname is not a link to libbkoauth.so.$upstream"
[ "$(readlink "$libdir/libbkoauth.so")" = "$soname" ] || fail "libbkoauth-dev's libbkoauth.so is not a link to $soname"
exports=$(nm -D --defined-only "$libdir/$soname" | awk '{print $3}' | sort)
if [ "$exports" != "$api" ]; then
  diff -u <(echo "$api") <(echo "$exports") | sed 's/^/  /' >&2 || true
  fail "$soname exports other functions than bkoauth.h declares BKOAUTH_API (- header, + library)"
fi
dpkg-deb --ctrl-tarfile "$(deb libbkoauth0)" | tar -xOf - ./symbols >"$work/symbols"
head -1 "$work/symbols" | contains -x "$soname libbkoauth0 #MINVER#" || fail "the symbols file is not for $soname: $(head -1 "$work/symbols")"
listed=$(sed -n 's/^ \([^@]*\)@Base .*/\1/p' "$work/symbols" | sort)
[ "$listed" = "$exports" ] || fail "the packaged symbols file does not list exactly the library's exports"
unversioned=$(grep '^ ' "$work/symbols" | grep -v '@Base [0-9][0-9A-Za-z.+~-]*$' || true)
[ -z "$unversioned" ] || fail "symbols without a version in the symbols file: $unversioned"
dpkg-deb --ctrl-tarfile "$(deb libbkoauth0)" | tar -xOf - ./shlibs | contains -x "libbkoauth 0 libbkoauth0 (>= $upstream)" \
  || fail "libbkoauth0's shlibs is not 'libbkoauth 0 libbkoauth0 (>= $upstream)'"
ok

# ---- 2. Depends --------------------------------------------------------------------------------
depends_of() { # package -> its Depends, one package name a line (alternatives split, versions dropped)
  dpkg-deb -f "$(deb "$1")" Depends | tr ',|' '\n\n' | sed 's/(.*)//; s/:any//; s/^ *//; s/ *$//' | sed '/^$/d'
}
owner_of() { # a file of the system -> the package that holds it (without :arch); tries the path
  # as given (normalised) and resolved, each also under /lib and /usr/lib (merged /usr: dpkg knows one of them)
  local p q o
  for p in "$(realpath -s "$1")" "$(readlink -f "$1")"; do
    for q in "$p" "${p#/usr}" "/usr$p"; do
      o=$(dpkg -S "$q" 2>/dev/null | awk -F: 'NR == 1 {print $1}') || true
      if [ -n "$o" ]; then echo "$o"; return 0; fi
    done
  done
}
needs_covered() { # package, binary in the root: each NEEDED library's package is in Depends
  local p=$1 bin=$2 lib path owner
  for lib in $(objdump -p "$bin" | awk '$1 == "NEEDED" {print $2}'); do
    [ "$lib" = "$soname" ] && { depends_of "$p" | contains -x libbkoauth0 || fail "$p needs $soname but does not depend on libbkoauth0"; continue; }
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found {print $NF; found = 1}')
    [ -n "$path" ] || fail "$bin needs $lib, which is not on this system"
    owner=$(owner_of "$path")
    [ -n "$owner" ] || fail "no package holds $path ($lib)"
    depends_of "$p" | contains -x "$owner" || fail "$p needs $lib (package $owner) but its Depends lack it: $(dpkg-deb -f "$(deb "$p")" Depends)"
  done
  ok
}
needs_covered libbkoauth0 "$libdir/$soname"
needs_covered bkoauth-tools "$root/usr/bin/bkoauth"
needs_covered bkoauth-devserver "$root/usr/bin/bkoauth-devserver"
needs_covered bkoauth-agent "$root/usr/bin/bkoauth-agent"
# each library a binary loads with dlopen() on first use (its .note.dlopen notes, which
# dpkg-shlibdeps does not read): its package in Depends when "required", in Recommends when
# "recommended" (debian/dlopen-deps)
field_of() { # package, field -> its packages, one a line (alternatives split, versions dropped)
  dpkg-deb -f "$(deb "$1")" "$2" | tr ',|' '\n\n' | sed 's/(.*)//; s/:any//; s/^ *//; s/ *$//' | sed '/^$/d'
}
dlopen_covered() { # package, binary, how many notes at least
  local p=$1 bin=$2 least=$3 n=0 priority lib path owner field
  while read -r priority lib; do
    case "$priority" in required) field=Depends ;; recommended) field=Recommends ;; *) field=Suggests ;; esac
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found {print $NF; found = 1}')
    [ -n "$path" ] || fail "$bin loads $lib on first use, which is not on this system"
    owner=$(owner_of "$path")
    [ -n "$owner" ] || fail "no package holds $path ($lib)"
    field_of "$p" "$field" | contains -x "$owner" \
      || fail "$p loads $lib ($priority, package $owner) on first use but its $field lack it: $(dpkg-deb -f "$(deb "$p")" "$field")"
    n=$((n + 1))
  done < <(readelf -p .note.dlopen "$bin" 2>/dev/null | grep -o '"priority":"[a-z]*","soname":\["[^"]*"' \
             | sed 's/"priority":"\([a-z]*\)","soname":\["\([^"]*\)"/\1 \2/')
  [ "$n" -ge "$least" ] || fail "$bin: $n .note.dlopen entries, not at least $least"
  ok
}
dlopen_covered libbkoauth0 "$libdir/$soname" 4
dlopen_covered bkoauth-tools "$root/usr/bin/bkoauth" 4
dlopen_covered bkoauth-agent "$root/usr/bin/bkoauth-agent" 4
# the sysusers snippet of its postinst runs systemd-sysusers
depends_of bkoauth-agent | contains -x systemd || fail "bkoauth-agent does not depend on systemd (systemd-sysusers): $(dpkg-deb -f "$(deb bkoauth-agent)" Depends)"
for p in bkoauth-tools bkoauth-devserver bkoauth-agent libbkoauth0; do
  depends_of "$p" | contains -- '-dev$' && fail "$p depends on a -dev package: $(dpkg-deb -f "$(deb "$p")" Depends)"
done
dpkg-deb -f "$(deb libbkoauth-dev)" Depends | contains "libbkoauth0 (= $version)" || fail "libbkoauth-dev does not depend on libbkoauth0 (= $version)"
# each module of Requires.private: pkg-config reads them even for a shared link, and libbkoauth.a
# needs their libraries; libbkoauth-dev must bring the package holding each .pc file
export PKG_CONFIG_PATH="$libdir/pkgconfig"
modules=$(pkg-config --print-requires-private bkoauth | awk '{print $1}')
[ -n "$modules" ] || fail "bkoauth.pc has no Requires.private"
for m in $modules; do
  pc="$(pkg-config --variable=pcfiledir "$m")/$m.pc"
  owner=$(owner_of "$pc")
  [ -n "$owner" ] || fail "no package holds $pc (module $m of bkoauth.pc)"
  depends_of libbkoauth-dev | contains -x "$owner" \
    || fail "bkoauth.pc requires $m ($owner) but libbkoauth-dev does not depend on $owner"
done
# each -lNAME of Libs.private (what libbkoauth.a needs beyond those modules): its package, unless
# it is the C library's own (libc6-dev is build-essential)
for l in $(sed -n 's/^Libs\.private://p' "$libdir/pkgconfig/bkoauth.pc"); do
  case "$l" in -l*) ;; *) continue ;; esac
  path=$(cc -print-file-name="lib${l#-l}.so")
  [ "${path#/}" != "$path" ] || path=$(cc -print-file-name="lib${l#-l}.a")
  [ "${path#/}" != "$path" ] || fail "bkoauth.pc's Libs.private names $l, which the compiler cannot find"
  owner=$(owner_of "$path")
  [ -n "$owner" ] || fail "no package holds $path ($l of bkoauth.pc)"
  [ "$owner" = libc6-dev ] || depends_of libbkoauth-dev | contains -x "$owner" \
    || fail "bkoauth.pc's Libs.private needs $l ($owner) but libbkoauth-dev does not depend on $owner"
done
# the CMake package file runs find_dependency(PkgConfig): pkg-config must come with it
depends_of libbkoauth-dev | contains -x "pkgconf\|pkg-config" || fail "libbkoauth-dev does not depend on pkgconf"
ok

# ---- 3. they install together here (simulated: nothing is installed) ---------------------------
pkgs=()
for p in "${packages[@]}"; do pkgs+=("$(deb "$p")"); done
apt-get -s -o Debug::NoLocking=1 install "${pkgs[@]}" >"$work/apt.log" 2>&1 \
  || { cat "$work/apt.log" >&2; fail "apt-get --simulate install of the five packages failed"; }
for p in "${packages[@]}"; do
  grep -q -e "^Conf $p " -e "^$p is already the newest version" "$work/apt.log" || fail "apt would not install $p: $(cat "$work/apt.log")"
done
ok

# ---- 4. an outside program against the unpacked libbkoauth-dev ---------------------------------
# bkoauth.pc is relocatable (its prefix comes from its own place), so PKG_CONFIG_PATH alone
# points pkg-config at the unpacked root; PKG_CONFIG_SYSROOT_DIR would also move the system's
# own modules (libpq's -I/usr/include/postgresql) into the root, where they are not.
[ "$(pkg-config --variable=includedir bkoauth | xargs realpath)" = "$root/usr/include" ] \
  || fail "pkg-config finds bkoauth.h in $(pkg-config --variable=includedir bkoauth), not in the unpacked root"
cc -std=c11 -Wall -Wextra -Werror "$src/tests/outside/outside.c" -o "$work/outside-pc" $(pkg-config --cflags --libs bkoauth)
cc -std=c11 -M $(pkg-config --cflags bkoauth) "$src/tests/outside/outside.c" | tr ' \\' '\n\n' | grep '/bkoauth\.h$' \
  | xargs realpath | contains -x "$root/usr/include/bkoauth.h" || fail "outside.c was not compiled with the packaged bkoauth.h"
# the static archive as pkg-config --static gives it: -Wl,-Bstatic takes libbkoauth.a for
# -lbkoauth, its dependencies (Requires.private, Libs.private) stay shared
cc -std=c11 -Wall -Wextra -Werror "$src/tests/outside/outside.c" -o "$work/outside-static" \
   $(pkg-config --cflags bkoauth) -Wl,-Bstatic -lbkoauth -Wl,-Bdynamic \
   $(pkg-config --static --libs bkoauth | sed 's/\(^\| \)-lbkoauth\( \|$\)/ /')
cmake -S "$src/tests/outside" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$root/usr" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
for prog in "$work/outside-static" "$work/cmake-build/outside-static"; do
  objdump -p "$prog" | contains "NEEDED *$soname" && fail "$prog links $soname"
  # no library loaded on first use is linked: a static link needs none of them either
  objdump -p "$prog" | contains -E "NEEDED *(libcurl|libpq|libmariadb|libcrypto|libssl)\." && fail "$prog links $(objdump -p "$prog" | grep NEEDED)"
  # and the program carries the archive's .note.dlopen notes, for its own packaging
  [ "$(readelf -n "$prog" | grep -c 'FDO .*0x407c0c0a')" -ge 4 ] || fail "$prog lacks the .note.dlopen notes of libbkoauth.a"
done
for prog in "$work/outside-pc" "$work/cmake-build/outside"; do
  objdump -p "$prog" | contains "NEEDED *$soname" || fail "$prog does not link $soname"
  LD_LIBRARY_PATH="$libdir" ldd "$prog" | contains "$soname => $libdir/$soname" \
    || fail "$prog does not load $soname from the unpacked libbkoauth0"
done
ok

devserver_start "$root/usr/bin/bkoauth-devserver" --app-code pkg-app --app-secret pkg-secret --user "cred-paula=paula"
for backend in "" bk_token; do
  for prog in "$work/outside-pc" "$work/outside-static" "$work/cmake-build/outside" "$work/cmake-build/outside-static"; do
    db="$work/$(basename "$prog")-$(basename "$(dirname "$prog")")-${backend:-ieod}.db"
    env -i PATH="$PATH" LD_LIBRARY_PATH="$libdir" OAUTH_API_URL="$DEV_URL" APP_CODE=pkg-app \
      SECRET_KEY=pkg-secret OAUTH_COOKIES_PARAMS='{"bk_token": "bk_token"}' BKAUTH_BACKEND_TYPE="$backend" \
      BKOAUTH_DATABASE_URL="sqlite:$db" OUTSIDE_USER=paula OUTSIDE_COOKIE="bk_token=cred-paula" "$prog" \
      || fail "$prog failed against the packaged library and devserver (${backend:-ieod})"
    ok
  done
done

# ---- 4. the packaged command line --------------------------------------------------------------
cli() {
  env -i PATH="$PATH" OAUTH_API_URL="$DEV_URL" APP_CODE=pkg-app SECRET_KEY=pkg-secret \
    OAUTH_COOKIES_PARAMS='{"bk_token": "bk_token"}' "$root/usr/bin/bkoauth" -D "sqlite:$work/cli.db" "$@"
}
app=$(cli app-token) || fail "the packaged bkoauth app-token failed"
[ ${#app} -ge 16 ] || fail "bkoauth app-token printed '$app', not a token"
user=$(cli user-token paula --cookie 'bk_token=cred-paula') || fail "the packaged bkoauth user-token failed"
[ "$(cli token paula)" = "$user" ] || fail "bkoauth token paula did not give the saved token"
cli list | contains '^paula ' || fail "bkoauth list does not show paula"
set +e; cli token nobody >/dev/null 2>&1; rc=$?; set -e
[ "$rc" = 4 ] || fail "bkoauth token nobody exited $rc, not 4 (TokenNotExist)"
ok

# ---- 4. the packaged agent: its units, its users, and the agent as its socket unit starts it ----
unit="$root/lib/systemd/system"
grep -qx 'ListenStream=/run/bkoauth/agent.sock' "$unit/bkoauth-agent.socket" && grep -qx 'SocketMode=0660' "$unit/bkoauth-agent.socket" \
  && grep -qx 'SocketGroup=bkoauth-clients' "$unit/bkoauth-agent.socket" || fail "bkoauth-agent.socket: not /run/bkoauth/agent.sock, 0660, bkoauth-clients"
for line in Type=notify 'ExecReload=/bin/kill -HUP $MAINPID' User=bkoauth Group=bkoauth RuntimeDirectory=bkoauth \
            RuntimeDirectoryPreserve=yes 'ExecStart=/usr/bin/bkoauth-agent -c /etc/bkoauth/agent.conf $BKOAUTH_AGENT_OPTIONS'; do
  grep -qxF "$line" "$unit/bkoauth-agent.service" || fail "bkoauth-agent.service lacks the line $line"
done
# systemd reads both units without a complaint (the binary looked for in the unpacked root)
mkdir "$work/units"
cp "$unit/bkoauth-agent.socket" "$work/units/"
sed "s|/usr/bin/bkoauth-agent|$root/usr/bin/bkoauth-agent|" "$unit/bkoauth-agent.service" >"$work/units/bkoauth-agent.service"
verify=$(cd "$work/units" && systemd-analyze verify --man=no ./bkoauth-agent.socket ./bkoauth-agent.service 2>&1) \
  || fail "systemd-analyze verify refuses the units: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify complains about the units: $verify"
grep -q '^u bkoauth ' "$root/usr/lib/sysusers.d/bkoauth-agent.conf" && grep -q '^g bkoauth-clients ' "$root/usr/lib/sysusers.d/bkoauth-agent.conf" \
  || fail "the sysusers file does not make the user bkoauth and the group bkoauth-clients"
dpkg-deb --ctrl-tarfile "$(deb bkoauth-agent)" | tar -xOf - ./postinst >"$work/postinst"
grep -q 'systemd-sysusers.*bkoauth-agent.conf' "$work/postinst" && grep -q 'chown root:bkoauth "$conf"' "$work/postinst" \
  || fail "bkoauth-agent's postinst does not make the users and protect agent.conf"
# installed disabled (the agent needs its settings first): no unit is enabled at installation
# (dh_installsystemd --no-enable still writes "enable" under "if ... was-enabled": a unit the
# administrator had enabled stays so across an upgrade; any other "enable" is one too many)
awk 'BEGIN {guard = -10} /deb-systemd-helper --quiet was-enabled/ {guard = NR} /deb-systemd-helper enable/ && NR - guard > 2 {bad = 1} END {exit !bad}' \
  "$work/postinst" && fail "bkoauth-agent's postinst enables a unit: $(grep -n 'deb-systemd-helper' "$work/postinst")"
grep -q "^BKOAUTH_AGENT_OPTIONS=\"--allow-gid bkoauth-clients\"" "$root/etc/default/bkoauth-agent" \
  || fail "/etc/default/bkoauth-agent does not allow the group bkoauth-clients"
ok
# socket activation as bkoauth-agent.socket does it: the socket is made first, the agent is
# started on the first connection and handed the socket; the packaged command line asks it
cp "$root/etc/bkoauth/agent.conf" "$work/agent.conf"
sed -i "s|^BKOAUTH_DATABASE_URL = .*|BKOAUTH_DATABASE_URL = 'sqlite:$work/agent.db'|" "$work/agent.conf"
printf "OAUTH_API_URL = '%s'\nAPP_CODE = 'pkg-app'\nSECRET_KEY = 'pkg-secret'\nOAUTH_COOKIES_PARAMS = {'bk_token': 'bk_token'}\n" "$DEV_URL" >>"$work/agent.conf"
systemd-socket-activate -l "$work/agent.sock" "$root/usr/bin/bkoauth-agent" -c "$work/agent.conf" \
  >"$work/agent.log" 2>&1 &
activate_pid=$!
for i in $(seq 1 50); do [ -S "$work/agent.sock" ] && break; sleep 0.1; done
acli() { env -i PATH="$PATH" "$root/usr/bin/bkoauth" "$@"; }
agent_app=$(acli --agent "$work/agent.sock" app-token) || { cat "$work/agent.log" >&2; fail "the packaged bkoauth --agent app-token failed against the socket-activated packaged agent"; }
[ "$(acli -c "$work/agent.conf" app-token)" = "$agent_app" ] || fail "the agent's APP token is not the one saved in its store"
agent_user=$(acli --agent "$work/agent.sock" user-token paula --cookie 'bk_token=cred-paula') || fail "bkoauth --agent user-token failed"
[ "$(acli --agent "$work/agent.sock" token paula)" = "$agent_user" ] || fail "bkoauth --agent token paula is not the login's token"
grep -q 'socket activation' "$work/agent.log" || fail "the agent did not take its socket from systemd-socket-activate: $(cat "$work/agent.log")"
kill "$activate_pid" 2>/dev/null || true; wait "$activate_pid" 2>/dev/null || true
set +e; acli --agent "$work/agent.sock" token paula >/dev/null 2>"$work/err"; rc=$?; set -e
[ "$rc" = 1 ] && grep -q "no agent at $work/agent.sock" "$work/err" || fail "bkoauth --agent after the agent stopped: exit $rc, $(cat "$work/err")"
ok

# ---- 4. the packaged man pages -------------------------------------------------------------------
export MANPATH="$root/usr/share/man" MANWIDTH=80 LC_ALL=C.UTF-8
for page in "1 bkoauth" "1 bkoauth-devserver" "1 bkoauth-agent" "3 bkoauth"; do
  set -- $page
  man -w "$1" "$2" | contains "^$root/usr/share/man/man$1/$2.$1.gz$" || fail "man -w $1 $2 does not find the packaged page"
  warnings=$(MANROFFSEQ='' man --warnings -E UTF-8 -Tutf8 -Z "$1" "$2" 2>&1 >/dev/null || true)
  [ -z "$warnings" ] || fail "man $1 $2 renders with warnings: $warnings"
done
for fn in $api; do
  man 3 "$fn" 2>/dev/null | contains "$fn(" || fail "man 3 $fn does not show the synopsis of $fn"
done
ok
echo "test_packages: $checks checks passed: 5 packages in $out, installed into a throwaway root," \
     "outside program built against libbkoauth-dev (pkg-config shared and static, CMake) and run against libbkoauth0"
