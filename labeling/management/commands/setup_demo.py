"""Demo users (admin, annotator, reviewer), a demo participant and, when DEMO_DATA is there, its photos.

Safe to run again: existing users keep their passwords (kept in var/demo-credentials.json, shown again).
"""
import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from labeling.intake import RejectedFile, ingest_upload, store_upload
from labeling.models import Participant, Upload

DEMO_USERS = [("admin", "admin"), ("annotator", "annotator"), ("reviewer", "reviewer")]
DEMO_PARTICIPANT = "DEMO01"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


class Command(BaseCommand):
    help = "Create the demo users and participant (idempotent) and load demo photos from DEMO_DATA."

    def add_arguments(self, parser):
        default = os.environ.get("DEMO_DATA") or str(settings.BASE_DIR.parent / "shared" / "data" / "nails-cc0")
        parser.add_argument("--demo-data", default=default, help="folder with an images/ folder of demo photos")

    def handle(self, *args, **options):
        credentials_path = settings.VAR_DIR / "demo-credentials.json"
        credentials = json.loads(credentials_path.read_text()) if credentials_path.exists() else {}
        User = get_user_model()
        for username, group in DEMO_USERS:
            user, created = User.objects.get_or_create(username=username)
            if created or username not in credentials:
                credentials[username] = secrets.token_urlsafe(9)
                user.set_password(credentials[username])
            if username == "admin":
                user.is_staff = user.is_superuser = True
            user.save()
            user.groups.add(Group.objects.get(name=group))
        credentials_path.write_text(json.dumps(credentials, indent=2))
        credentials_path.chmod(0o600)

        participant, _ = Participant.objects.get_or_create(code=DEMO_PARTICIPANT, defaults={"notes": "demo participant"})
        loaded = self.load_photos(participant, Path(options["demo_data"]))

        self.stdout.write("Demo accounts (username / password):")
        for username, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {credentials[username]}")
        self.stdout.write(f"Demo participant {participant.code}: upload link {participant.upload_path}"
                          f" ({participant.images.count()} images{f', {loaded} loaded now' if loaded else ''})")

    def load_photos(self, participant, folder: Path) -> int:
        images_dir = folder / "images"
        if not images_dir.is_dir():
            return 0
        loaded = 0
        for path in sorted(images_dir.iterdir()):
            if path.suffix.lower() not in PHOTO_SUFFIXES:
                continue
            with path.open("rb") as fh:
                try:
                    stored = store_upload(participant, fh, path.name)
                    if stored.created or stored.upload.status != Upload.Status.READY:
                        ingest_upload(stored.upload)
                        loaded += 1
                except RejectedFile as exc:
                    self.stderr.write(f"skipped {path.name}: {exc}")
        return loaded
