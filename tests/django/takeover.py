# SPDX-License-Identifier: MIT
"""Django side of the take-over test (tests/scripts/django_takeover.sh): the bkoauth app of
bkoauth_app/ (its three migrations) on the database BKOAUTH_TEST_DJANGO_DB names, in one process
so that Django starts once.

usage: takeover.py migrate-write       Django's migrations create the table, then Django saves the
                                       APP token and alice's (as a Django app deployed first does)
       takeover.py verify              after a take-over: prints what a Django app sees, one
                                       "name: value" line each (rows read through the ORM, whether
                                       migrate and makemigrations find anything to do), then saves
                                       carol's token
Times are Unix seconds; USE_TZ = True.
"""
import io
import os
import sys
from contextlib import redirect_stdout
from datetime import datetime, timezone

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "takeover_settings")
import django  # noqa: E402

django.setup()
from django.core.management import call_command  # noqa: E402

from bkoauth_app.models import AccessToken  # noqa: E402


def at(unix):
    return datetime.fromtimestamp(unix, tz=timezone.utc)


def save(env, user, access, refresh, expires):
    AccessToken.objects.create(env_name=env, user_id=user, access_token=access, refresh_token=refresh,
                               expires=at(expires))


def status(*args, **kwargs):
    """The exit status and output of a management command, as manage.py would end."""
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            call_command(*args, stdout=out, **kwargs)
        return 0, out.getvalue()
    except SystemExit as e:
        return e.code, out.getvalue()


cmd = sys.argv[1]
if cmd == "migrate-write":
    call_command("migrate", verbosity=0)
    save("test", None, "django-app-token", None, 1900000000)
    save("test", "alice", "django-alice-token", "django-alice-refresh", 1900003600)
elif cmd == "verify":
    rows = sorted("%s|%s|%s|%s|%d" % (t.env_name, t.user_id if t.user_id is not None else "-", t.access_token,
                                       t.refresh_token or "", int(t.expires.timestamp()))
                  for t in AccessToken.objects.all())
    print("rows: " + " ".join(rows))
    rc, _ = status("migrate", check_unapplied=True, verbosity=0)
    print("migrate --check: %s" % rc)
    rc, out = status("migrate", plan=True)
    print("migrate --plan: %s" % " ".join(out.split()))
    rc, out = status("makemigrations", "bkoauth", check=True, dry_run=True)
    print("makemigrations --check: %s %s" % (rc, " ".join(out.split())))
    save("test", "carol", "django-carol-token", "", 2000000000)
else:
    sys.exit("unknown command " + cmd)
