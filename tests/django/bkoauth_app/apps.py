# SPDX-License-Identifier: MIT
"""The bkoauth Django app as BlueKing apps install it: app label "bkoauth", so its migration records
in django_migrations are app = 'bkoauth', as the real app's are."""
from django.apps import AppConfig


class BkoauthConfig(AppConfig):
    name = "bkoauth_app"
    label = "bkoauth"
    default_auto_field = "django.db.models.AutoField"
