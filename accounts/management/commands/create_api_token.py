from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import ApiToken


class Command(BaseCommand):
    help = "Issue an API token for a user and print it (only its digest is stored: this is the one chance to copy it)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--days", type=float, default=None,
                            help=f"lifetime in days (default NAILSET_API_TOKEN_DAYS, now {settings.NAILSET_API_TOKEN_DAYS})")
        parser.add_argument("--name", default="", help="what the token is for, shown in the admin")

    def handle(self, *args, username, days, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        if days is not None and not days > 0:
            raise CommandError(f"--days must be a positive number, not {days}")
        if len(name) > ApiToken._meta.get_field("name").max_length:
            raise CommandError("--name is longer than 100 characters")
        token, key = ApiToken.issue(user, name=name, days=days)
        self.stdout.write(key)
        self.stderr.write(f"API token {token.key_prefix}… for {username}, expires {token.expires_at:%Y-%m-%d %H:%M} UTC. "
                          "Send it as 'Authorization: Token <key>'.")
