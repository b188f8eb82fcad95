# SPDX-License-Identifier: MIT
# refresh_token becomes optional and no longer unique; scope optional.
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("bkoauth", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="accesstoken",
            name="refresh_token",
            field=models.CharField(max_length=255, null=True, verbose_name="refresh_token", blank=True),
        ),
        migrations.AlterField(
            model_name="accesstoken",
            name="scope",
            field=models.TextField(null=True, verbose_name="权限范围", blank=True),
        ),
    ]
