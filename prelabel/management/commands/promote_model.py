from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from prelabel.promotion import PromotionError, promote
from training.models import ModelVersion


class Command(BaseCommand):
    help = ("Make a model version the active one through the promotion gate: its val mIoU on the current "
            "snapshot's val split must be at least the active model's, unless --override-reason is given.")

    def add_arguments(self, parser):
        parser.add_argument("model", help="model version name or id")
        parser.add_argument("--user", required=True, help="the admin who decides (recorded)")
        parser.add_argument("--override-reason", default="", help="promote even if the gate refuses, for this reason (recorded)")

    def handle(self, *args, **options):
        ref = options["model"]
        version = ModelVersion.objects.filter(**({"pk": int(ref)} if ref.isdigit() else {"name": ref})).first()
        if version is None:
            raise CommandError(f"there is no model version {ref!r}")
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"there is no user {options['user']!r}")
        try:
            decision = promote(version, user, override_reason=options["override_reason"])
        except PromotionError as exc:
            raise CommandError(str(exc)) from exc
        if not decision.promoted:
            raise CommandError(f"refused: {decision.reason} (decision {decision.pk}; --override-reason to promote anyway)")
        self.stdout.write(self.style.SUCCESS(f"{version.name} is the active model: {decision.reason}"))
