#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A SQLite token database that cannot be written still serves its saved tokens, with the command
# line as an operator would run it: the file made immutable, then a full disk (a 256 KiB tmpfs).
# A grant that cannot be saved is still handed out (and the error names the user). Parts that
# need root (chattr, mount) are skipped, with a note, when not possible here.
#   usage: test_store_faults.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
CLI="$build/tools/bkoauth"
DEVSERVER="$build/tools/bkoauth-devserver"
. "$src/scripts/lib/devserver.sh"

work=$(mktemp -d /tmp/bkoauth-store-faults.XXXXXX)
mnt=""
cleanup() {
  devserver_stop
  chattr -i "$work"/*.db* 2>/dev/null
  [ -n "$mnt" ] && umount "$mnt" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
devserver_start "$DEVSERVER" --app-code faults-app --app-secret faults-secret-0123456789 \
  --user cred-alice-0123456789=alice || exit 1

failures=0
checks=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { checks=$((checks + 1)); }

# run DB ARGS...: the CLI on database DB; sets OUT, ERR, RC.
run() {
  local db="$1"; shift
  env -i PATH="$PATH" OAUTH_API_URL="$DEV_URL" APP_CODE=faults-app SECRET_KEY=faults-secret-0123456789 \
    BKAUTH_BACKEND_TYPE=bk_token "OAUTH_COOKIES_PARAMS={'bk_token': 'bk_token'}" \
    BKOAUTH_DATABASE_URL="sqlite:$db" "$CLI" "$@" >"$work/out" 2>"$work/err" </dev/null
  RC=$?
  OUT=$(cat "$work/out")
  ERR=$(cat "$work/err")
}
expect() { # what, want_rc
  if [ "$RC" = "$2" ]; then ok; else fail "$1: exit $RC, want $2; stderr: $ERR"; fi
}

# Saves alice's and the APP's token in DB; prints alice's access_token.
prepare() {
  run "$1" user-token alice --cookie bk_token=cred-alice-0123456789
  expect "login of alice on $1" 0
  ALICE=$OUT
  run "$1" app-token
  expect "APP token on $1" 0
  APP=$OUT
}

# The saved tokens are served from DB as it is now.
serves_saved() { # db, label
  run "$1" token alice
  expect "$2: token alice" 0
  [ "$OUT" = "$ALICE" ] && ok || fail "$2: token alice printed '$OUT', want the saved token"
  run "$1" app-token
  expect "$2: app-token" 0
  [ "$OUT" = "$APP" ] && ok || fail "$2: app-token printed '$OUT', want the saved token"
  run "$1" list
  expect "$2: list" 0
  case "$OUT" in *alice*) ok ;; *) fail "$2: list does not show alice: $OUT" ;; esac
  # a refresh gets a grant from the service: it is handed out although it cannot be saved
  run "$1" refresh alice
  expect "$2: refresh alice" 0
  [ -n "$OUT" ] && [ "$OUT" != "$ALICE" ] && ok || fail "$2: refresh printed '$OUT', want a new token"
  case "$ERR" in *"new token of alice"*"could not be saved"*) ok ;;
    *) fail "$2: refresh did not say that alice's new token could not be saved: $ERR" ;; esac
}

# ---- an immutable database file ----
db="$work/immutable.db"
prepare "$db"
if chattr +i "$db" 2>/dev/null; then
  serves_saved "$db" "immutable file"
  chattr -i "$db"
else
  echo "test_store_faults: chattr +i not possible here (not root, or the filesystem has no such flag): skipped"
fi

# ---- a full disk ----
if [ "$(id -u)" = 0 ] && mkdir -p "$work/full" && mount -t tmpfs -o size=256k tmpfs "$work/full" 2>/dev/null; then
  mnt="$work/full"
  db="$mnt/full.db"
  prepare "$db"
  dd if=/dev/zero of="$mnt/fill" bs=4k count=1000 2>/dev/null
  serves_saved "$db" "full disk"
  rm -f "$mnt/fill"
  # room again: the next renewal saves (the row is written)
  run "$db" delete alice
  expect "full disk, room again: delete" 0
  umount "$mnt" && mnt=""
else
  echo "test_store_faults: cannot mount a small tmpfs here (not root): full-disk part skipped"
fi

echo "test_store_faults: $checks checks, $failures failures"
[ "$failures" -eq 0 ]
