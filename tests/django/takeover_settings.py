# SPDX-License-Identifier: MIT
"""Django settings of the take-over test (tests/scripts/test_django_takeover*.sh): the bkoauth app
(bkoauth_app/, its three migrations) on the database BKOAUTH_TEST_DJANGO_DB names: a path (SQLite),
or a postgresql:// or mysql:// URL. Used as `python3 -m django CMD --settings=takeover_settings`,
as manage.py would be."""
import os
from urllib.parse import unquote, urlparse

SECRET_KEY = "bkoauth-takeover-test"
USE_TZ = os.environ.get("BKOAUTH_TEST_DJANGO_USE_TZ", "1") == "1"
TIME_ZONE = "Asia/Shanghai"
INSTALLED_APPS = ["bkoauth_app"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

_db = os.environ["BKOAUTH_TEST_DJANGO_DB"]
_u = urlparse(_db)
if _u.scheme in ("postgresql", "mysql"):
    DATABASES = {"default": {
        "ENGINE": "django.db.backends." + _u.scheme, "NAME": unquote(_u.path.lstrip("/")),
        "USER": unquote(_u.username or ""), "PASSWORD": unquote(_u.password or ""),
        "HOST": _u.hostname or "", "PORT": str(_u.port or "")}}
    if _u.scheme == "mysql":
        DATABASES["default"]["OPTIONS"] = {"charset": "utf8mb4"}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _db}}
