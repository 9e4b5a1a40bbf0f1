"""Participants: consent, creation from CSV. Plain functions. Erasure lives in ``erasure.py``."""
from __future__ import annotations

import csv
import io
import re

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Participant

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
