# SPDX-License-Identifier: MIT
# django_takeover.sh - the take-over test's steps, sourced by test_django_takeover.sh (SQLite),
# test_django_takeover_pg.sh and test_django_takeover_mysql.sh with
#   . "$(dirname "$0")/django_takeover.sh" BUILD_DIR SOURCE_DIR
# then takeover_run KIND C_FIRST_URL C_FIRST_DJANGO DJANGO_FIRST_URL DJANGO_FIRST_DJANGO, where
# each pair names one empty database as libbkoauth (BKOAUTH_DATABASE_URL) and as the Django
# settings (tests/django/takeover_settings.py) name it, and the script defines dump DJANGO_DB (the
# token table's whole definition: columns, keys, indexes, as text).
#
# Django first: the bkoauth app's three migrations create the table and Django saves tokens;
#   libbkoauth reads and writes them with no DDL (the definition is unchanged) and no warning.
# libbkoauth first (the take-over): libbkoauth creates the table and saves tokens; its table is
#   the one Django's migrations made; the documented command records it; Django reads the rows
#   through the ORM; migrate then has nothing to do, makemigrations finds no change, the table is
#   unchanged; libbkoauth reads Django's rows and writes on. `bkoauth check` says which Django
#   migrations are recorded, before and after.
set -uo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
py=/usr/bin/python3
tool="$build/tests/store_tool"
CLI="$build/tools/bkoauth"
for f in "$tool" "$CLI"; do
  [ -x "$f" ] || { echo "FAIL: not built: $f" >&2; exit 1; }
done
"$py" -c 'import django' 2>/dev/null || { echo "FAIL: $py has no Django (scripts/install-deps.sh)" >&2; exit 1; }
# the source tree stays as it is (no __pycache__ beside the app)
export PYTHONPATH="$src/tests/django" DJANGO_SETTINGS_MODULE=takeover_settings BKOAUTH_TEST_DJANGO_USE_TZ=1 PYTHONDONTWRITEBYTECODE=1
export TZ=UTC
work=$(mktemp -d /tmp/bkoauth-takeover.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The command README.md and the Chinese guide give for a table libbkoauth created
DOCUMENTED="migrate bkoauth --fake"
fail=0
check() { # what, got, want
  if [ "$2" != "$3" ]; then echo "FAIL: $1: got '$2', want '$3'" >&2; fail=1; else echo "ok: $1"; fi
}
ALL3="0001_initial, 0002_auto_refresh_token_scope, 0003_auto_env_name_user_id_index"

for doc in README.md docs/zh-CN/README.md; do
  if grep -Eq "^ *python manage.py $DOCUMENTED( |\$)" "$src/$doc"; then echo "ok: $doc gives '$DOCUMENTED'"; else
    echo "FAIL: $doc does not give 'python manage.py $DOCUMENTED'" >&2; fail=1
  fi
done

django() { # DJANGO_DB ARGS...: the Django side (tests/django/takeover.py)
  BKOAUTH_TEST_DJANGO_DB=$1 "$py" "$src/tests/django/takeover.py" "${@:2}"
}
manage() { # DJANGO_DB ARGS...: as `python manage.py ARGS` would run
  BKOAUTH_TEST_DJANGO_DB=$1 "$py" -m django "${@:2}"
}
# The C side, warnings on stderr into $work/c.err (which must stay empty)
c_tool() { "$tool" "$1" UTC "${@:2}" 2>>"$work/c.err"; }
c_check() { # URL: `bkoauth check`'s Django line (the SSM service is not there: its line is ignored)
  env -i PATH="$PATH" OAUTH_API_URL=http://127.0.0.1:9/ APP_CODE=takeover SECRET_KEY=takeover-secret \
    BKOAUTH_DATABASE_URL="$1" "$CLI" check 2>>"$work/c.err" | grep '^Django migrations: '
}
c_check_json() { # URL: the Django check's object of `bkoauth --json check`
  env -i PATH="$PATH" OAUTH_API_URL=http://127.0.0.1:9/ APP_CODE=takeover SECRET_KEY=takeover-secret \
    BKOAUTH_DATABASE_URL="$1" "$CLI" --json check 2>>"$work/c.err" |
    "$py" -c 'import json, sys; print([(c["ok"], c["message"]) for c in json.load(sys.stdin)["checks"] if c["check"] == "Django migrations"])'
}
no_warning() { # what
  check "$1: libbkoauth wrote no warning" "$(cat "$work/c.err")" ""
  : >"$work/c.err"
}

takeover_run() { # KIND C_URL C_DJANGO D_URL D_DJANGO
  local kind=$1 c_url=$2 c_dj=$3 d_url=$4 d_dj=$5 out
  : >"$work/c.err"
  # ---- Django first: Django's migrations create the table; libbkoauth uses it as it is ----
  django "$d_dj" migrate-write
  local django_shape; django_shape=$(dump "$d_dj")
  check "$kind: Django's table has its indexes on env_name and user_id" \
    "$(grep -o -e 'env_name_736cbdc5' -e 'user_id_a4b1d1f5' <<<"$django_shape" | sort -u | tr '\n' ' ')" \
    "env_name_736cbdc5 user_id_a4b1d1f5 "
  check "$kind: libbkoauth reads Django's APP token" "$(c_tool "$d_url" get test - | cut -d'|' -f1-3)" \
    "django-app-token||1900000000"
  check "$kind: libbkoauth reads Django's user token" "$(c_tool "$d_url" get test alice | cut -d'|' -f1-3)" \
    "django-alice-token|django-alice-refresh|1900003600"
  c_tool "$d_url" put test alice c-alice-token c-alice-refresh 1900007200 0
  c_tool "$d_url" put test bob c-bob-token "" 1900010800 1800000000
  check "$kind: libbkoauth updates Django's row and adds one" \
    "$(c_tool "$d_url" get test alice | cut -d'|' -f1-3) $(c_tool "$d_url" get test bob | cut -d'|' -f1-3)" \
    "c-alice-token|c-alice-refresh|1900007200 c-bob-token||1900010800"
  check "$kind: bkoauth check names Django's records" "$(c_check "$d_url")" \
    "Django migrations: ok: recorded for the table bkoauth_access_token (app bkoauth): $ALL3"
  check "$kind: libbkoauth made no DDL on Django's table" "$(dump "$d_dj")" "$django_shape"
  no_warning "$kind: Django first"

  # ---- libbkoauth first: it creates the table; Django takes it over ----
  c_tool "$c_url" put test - c-app-token "" 2000000000 1800000000
  c_tool "$c_url" put test alice c-alice-1 c-alice-refresh-1 2000003600 1800000000
  check "$kind: bkoauth check says no Django records and the command" "$(c_check "$c_url")" \
    "Django migrations: ok: no Django migration records for the table bkoauth_access_token: a Django app sharing it must run \`python manage.py migrate bkoauth --fake\` once (not plain migrate, which stops with \"table already exists\")"
  local c_shape; c_shape=$(dump "$c_dj")
  check "$kind: libbkoauth's table is the one Django's three migrations make" "$c_shape" "$django_shape"
  out=$(manage "$c_dj" $DOCUMENTED 2>&1)
  check "$kind: the documented command succeeds, recording 0001-0003" "$?|$(grep -c 'FAKED' <<<"$out")" "0|3"
  [ "$fail" = 0 ] || echo "$out" >&2
  django "$c_dj" verify >"$work/verify"
  check "$kind: Django reads libbkoauth's rows" "$(sed -n 's/^rows: //p' "$work/verify")" \
    "test|-|c-app-token||2000000000 test|alice|c-alice-1|c-alice-refresh-1|2000003600"
  check "$kind: migrate afterwards has nothing to do (--check)" "$(sed -n 's/^migrate --check: //p' "$work/verify")" 0
  check "$kind: migrate --plan is empty" "$(sed -n 's/^migrate --plan: //p' "$work/verify")" \
    "Planned operations: No planned migration operations."
  check "$kind: makemigrations --check finds nothing" "$(sed -n 's/^makemigrations --check: //p' "$work/verify")" \
    "0 No changes detected in app 'bkoauth'"
  check "$kind: the table is unchanged by the take-over" "$(dump "$c_dj")" "$c_shape"
  check "$kind: libbkoauth reads Django's row after the take-over" \
    "$(c_tool "$c_url" get test carol | cut -d'|' -f1-3)" "django-carol-token||2000000000"
  c_tool "$c_url" put test alice c-alice-2 c-alice-refresh-2 2000007200 0
  check "$kind: libbkoauth writes on after the take-over" "$(c_tool "$c_url" get test alice | cut -d'|' -f1-3)" \
    "c-alice-2|c-alice-refresh-2|2000007200"
  check "$kind: bkoauth check names the records after the take-over" "$(c_check "$c_url")" \
    "Django migrations: ok: recorded for the table bkoauth_access_token (app bkoauth): $ALL3"
  check "$kind: bkoauth --json check has the same line" "$(c_check_json "$c_url")" \
    "[(True, 'recorded for the table bkoauth_access_token (app bkoauth): $ALL3')]"
  no_warning "$kind: libbkoauth first"
}
