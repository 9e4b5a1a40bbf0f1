"""Demo users (admin, annotator, reviewer), a demo participant and, when DEMO_DATA is there, its photos
with their labels (a COCO file + participants.csv, as in ../shared/data/nails-cc0).

Safe to run again: existing users keep their passwords (kept in var/demo-credentials.json, shown again).
"""
import json
import os
import secrets
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from curation.demo_labels import DEMO_LABELS, DemoLabelsError, write_merged_coco
from curation.transfer import import_labels
from labeling.models import Participant

DEMO_USERS = [("admin", "admin"), ("annotator", "annotator"), ("reviewer", "reviewer")]
DEMO_PARTICIPANT = "DEMO01"


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
        loaded = self.load_photos(Path(options["demo_data"]))

        self.stdout.write("Demo accounts (username / password):")
        for username, _ in DEMO_USERS:
            self.stdout.write(f"  {username:<10} {credentials[username]}")
        self.stdout.write(f"Demo participant {participant.code}: upload link {participant.upload_path}")
        if loaded:
            self.stdout.write(f"Demo data: {loaded} labelled photos imported from {options['demo_data']}")

    def load_photos(self, folder: Path) -> int:
        """Import DEMO_DATA's COCO labels, bringing its photos in through intake. Running again adds nothing.

        The shared COCO file has polygons only; the project's own fingers and base/tip landmarks of those
        nails (curation/demo/nails-cc0-labels.json, see curation/demo_labels.py) are merged in when they fit
        the file. When they do not (another version of the data), the polygons come in alone, with a warning."""
        coco = folder / "annotations.coco.json"
        if not coco.is_file():
            return 0
        participants = folder / "participants.csv"
        with tempfile.TemporaryDirectory() as scratch:
            source = coco
            if DEMO_LABELS.is_file():
                try:
                    source = write_merged_coco(coco, scratch)
                except DemoLabelsError as error:
                    self.stderr.write(f"demo data: fingers and landmarks not added ({error})")
            report = import_labels("coco", str(source),
                                   participants_csv=str(participants) if participants.is_file() else None,
                                   default_participant=DEMO_PARTICIPANT, images_dir=str(folder / "images"))
        for failure in report.failed_files:
            self.stderr.write(f"demo data: nothing imported from {failure['file']}: {failure['reason']}")
        return report.labelled
