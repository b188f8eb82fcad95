# SPDX-License-Identifier: MIT
# An index on env_name and on user_id (the columns every lookup uses).
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("bkoauth", "0002_auto_refresh_token_scope"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accesstoken",
            name="env_name",
            field=models.CharField(max_length=255, verbose_name="环境名称", db_index=True),
        ),
        migrations.AlterField(
            model_name="accesstoken",
            name="user_id",
            field=models.CharField(max_length=64, null=True, verbose_name="user_id", blank=True, db_index=True),
        ),
    ]
