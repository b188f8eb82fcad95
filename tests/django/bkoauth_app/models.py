# SPDX-License-Identifier: MIT
"""The bkoauth AccessToken model in its final form (after migrations 0001-0003)."""
from django.db import models


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
        db_table = "bkoauth_access_token"
