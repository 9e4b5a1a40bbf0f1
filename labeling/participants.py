"""Participants: consent, creation from CSV, erasure. Plain functions."""
from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Participant, new_upload_token

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ParticipantImportError(ValueError):
    """A participants CSV that cannot be imported; nothing was created."""


def record_consent(participant: Participant, version: str) -> Participant:
    if version != settings.NAILSET_CONSENT_VERSION:
        raise ValueError(f"this consent text is version {version!r}, the current one is {settings.NAILSET_CONSENT_VERSION!r}; reload the page")
    Participant.objects.filter(pk=participant.pk).update(consent_at=timezone.now(), consent_version=version)
    participant.refresh_from_db()
    return participant


def import_participants_csv(text: str) -> list[Participant]:
    """Create participants from CSV text with a ``code`` column (optional ``notes``). All or nothing:
    a bad or duplicate code anywhere creates none of them."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "code" not in [name.strip() for name in reader.fieldnames]:
        raise ParticipantImportError("the CSV needs a header row with a 'code' column")
    rows, errors, seen = [], [], set()
    for line, row in enumerate(reader, start=2):
        row = {(key or "").strip(): (value or "").strip() for key, value in row.items()}
        code = row.get("code", "")
        if not CODE_PATTERN.match(code):
            errors.append(f"line {line}: code {code!r} must be 1-64 letters, digits, '-' or '_'")
        elif code in seen:
            errors.append(f"line {line}: code {code!r} appears twice")
        seen.add(code)
        rows.append(Participant(code=code, notes=row.get("notes", "")))
    existing = set(Participant.objects.filter(code__in=seen).values_list("code", flat=True))
    errors += [f"code {code!r} already exists" for code in sorted(existing)]
    if errors:
        raise ParticipantImportError("; ".join(errors))
    if not rows:
        raise ParticipantImportError("the CSV has no rows")
    with transaction.atomic():
        return Participant.objects.bulk_create(rows)


def participant_media_folders(participant: Participant) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [root / kind / str(participant.pk) for kind in ("uploads", "images", "thumbnails")]


def erase_participant(participant: Participant) -> dict:
    """Remove every upload, image, annotation and revision of the participant, from the database and
    from storage. The pseudonymous code stays, marked erased, so the erasure itself is on record and the
    upload link stops working."""
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        counts = {"uploads": locked.uploads.count(), "images": locked.images.count()}
        locked.images.all().delete()  # annotations and revisions cascade
        locked.uploads.all().delete()
        Participant.objects.filter(pk=locked.pk).update(
            erased_at=timezone.now(), consent_at=None, consent_version="", upload_token=new_upload_token(), token_expires_at=None,
        )
        folders = participant_media_folders(locked)
        transaction.on_commit(lambda: [shutil.rmtree(folder, ignore_errors=True) for folder in folders])
    participant.refresh_from_db()
    return counts
