# SPDX-License-Identifier: MIT
"""Django side of the compatibility test: the bkoauth AccessToken model, exactly as the Python
bkoauth app defines it, on an SQLite, PostgreSQL or MySQL database (DB: a path, or a
postgresql:// or mysql:// URL).

usage: compat.py DB USE_TZ(0|1) create
       compat.py DB USE_TZ put ENV USER|- ACCESS REFRESH EXPIRES_UNIX
       compat.py DB USE_TZ get ENV USER|-            -> "ACCESS|REFRESH|EXPIRES_UNIX|CREATED_UNIX"
       compat.py DB USE_TZ update ENV USER|- ACCESS EXPIRES_UNIX
       compat.py DB USE_TZ show ENV USER|-           -> "ID|EXPIRES|CREATED_AT" as Django's datetimes
                                                         (isoformat: aware with +00:00, or naive)
EXPIRES_UNIX may have a fraction (Django then writes microseconds).
"""
import sys
import time
from datetime import datetime, timezone

import django
from django.conf import settings

db, use_tz, cmd, args = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4:]
if db.startswith("postgresql://"):
    from urllib.parse import urlparse

    u = urlparse(db)
    database = {"ENGINE": "django.db.backends.postgresql", "NAME": u.path.lstrip("/"), "USER": u.username or "",
                "PASSWORD": u.password or "", "HOST": u.hostname or "", "PORT": str(u.port or "")}
elif db.startswith("mysql://"):
    from urllib.parse import unquote, urlparse

    u = urlparse(db)
    database = {"ENGINE": "django.db.backends.mysql", "NAME": unquote(u.path.lstrip("/")),
                "USER": unquote(u.username or ""), "PASSWORD": unquote(u.password or ""),
                "HOST": u.hostname or "", "PORT": str(u.port or ""), "OPTIONS": {"charset": "utf8mb4"}}
else:
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": db}
settings.configure(
    USE_TZ=use_tz,
    TIME_ZONE="Asia/Shanghai",
    INSTALLED_APPS=[],
    DATABASES={"default": database},
)
django.setup()

from django.db import connection, models  # noqa: E402


class AccessToken(models.Model):
    access_token = models.CharField(u"access_token", max_length=255, unique=True)
    expires = models.DateTimeField(u"access_token过期时间")
    refresh_token = models.CharField(u"refresh_token", max_length=255, null=True, blank=True)
    scope = models.TextField(u"权限范围", null=True, blank=True)
    env_name = models.CharField(u"环境名称", max_length=255, db_index=True)
    user_id = models.CharField(u"user_id", max_length=64, null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(u"创建时间", auto_now_add=True)
    extra = models.TextField(u"额外信息", null=True, blank=True)

    class Meta:
        app_label = "bkoauth"
        db_table = "bkoauth_access_token"


def to_dt(unix):
    if use_tz:
        return datetime.fromtimestamp(float(unix), tz=timezone.utc)
    return datetime.fromtimestamp(float(unix))  # naive local time, as Django keeps it


def to_unix(dt):
    if use_tz:
        return int(dt.timestamp())
    return int(time.mktime(dt.timetuple()))


def user(u):
    return None if u == "-" else u


def row(env, u):
    return AccessToken.objects.get(env_name=env, user_id=user(u))


if cmd == "create":
    with connection.schema_editor() as editor:
        editor.create_model(AccessToken)
elif cmd == "put":
    env, u, access, refresh, expires = args
    AccessToken.objects.create(env_name=env, user_id=user(u), access_token=access, refresh_token=refresh,
                               expires=to_dt(expires))
elif cmd == "get":
    t = row(*args)
    print("|".join([t.access_token, t.refresh_token or "", str(to_unix(t.expires)), str(to_unix(t.created_at))]))
elif cmd == "update":
    env, u, access, expires = args
    t = row(env, u)
    t.access_token = access
    t.expires = to_dt(expires)
    t.save()
elif cmd == "show":
    t = row(*args)
    print("|".join([str(t.id), t.expires.isoformat(sep=" "), t.created_at.isoformat(sep=" ")]))
else:
    sys.exit("unknown command " + cmd)
