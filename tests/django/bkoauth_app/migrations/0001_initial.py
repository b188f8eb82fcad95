# SPDX-License-Identifier: MIT
# The bkoauth app's first migration: the model as first released (refresh_token unique and
# required, scope required, no index on env_name or user_id).
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="AccessToken",
            fields=[
                ("id", models.AutoField(verbose_name="ID", serialize=False, auto_created=True, primary_key=True)),
                ("access_token", models.CharField(unique=True, max_length=255, verbose_name="access_token")),
                ("expires", models.DateTimeField(verbose_name="access_token过期时间")),
                ("refresh_token", models.CharField(unique=True, max_length=255, verbose_name="refresh_token")),
                ("scope", models.TextField(verbose_name="权限范围")),
                ("env_name", models.CharField(max_length=255, verbose_name="环境名称")),
                ("user_id", models.CharField(max_length=64, null=True, verbose_name="user_id", blank=True)),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="创建时间")),
                ("extra", models.TextField(null=True, verbose_name="额外信息", blank=True)),
            ],
            options={
                "db_table": "bkoauth_access_token",
            },
        ),
    ]
