"""The API keys of rest_framework.authtoken (no longer installed) were stored in plaintext and never expired:
drop them and forget that app's migrations. Scripts get a new, expiring token from POST /api/auth/token/."""
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_api_tokens_and_failed_login_counters")]

    operations = [
        migrations.RunSQL(
            ["DROP TABLE IF EXISTS authtoken_token", "DELETE FROM django_migrations WHERE app = 'authtoken'"],
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
