"""Erasing a participant: every trace of their photos, in every app, through one function.

``erase_participant(participant)`` is the only way data is erased (the participant page, the admin action,
the API's ``erase`` and ``DELETE`` all call it). What it reaches is a small explicit registry of steps, in
the manner of ``jobs.registry``'s ``@job_kind``: each app that keeps something derived from a participant's
photos registers ``@erasure_step(name, order=...)`` in its ``<app>/erasure_steps.py`` (imported when Django
starts, see ``LabelingConfig.ready``), with

- ``plan(participant) -> {what: count}``: what would go (the confirmation pages list it), and
- ``erase(erasure) -> {what: count}``: make it go, inside the one database transaction; files are handed
  to ``erasure.remove_after_commit`` and removed only once that transaction has committed.

Steps run by ``order`` (smaller first): steps that must still see the participant's images, uploads and
snapshot rows run before the ones that delete them. This module itself registers the core steps: the
job records that name the participant's uploads, images or files, and finally the uploads, images,
thumbnails, annotations and revisions themselves. The pseudonymous code stays, marked erased, with what
was removed, so the erasure is on record; the upload link keeps identifying them (to say that their data
was deleted) and never accepts anything again.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Annotation, AnnotationRevision, Image, Participant, Upload

logger = logging.getLogger(__name__)


@dataclass
class Erasure:
    """One erasure in progress: the locked participant, who asked, and the files to remove after commit."""

    participant: Participant
    requested_by: str
    started_at: object = field(default_factory=timezone.now)
    _paths: list[Path] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why something was withdrawn, as shown to whoever meets the gap (e.g. a 410 on a download)."""
        return f"it held photos of a participant whose data was erased on {self.started_at:%Y-%m-%d} at their request"

    def remove_after_commit(self, path) -> None:
        """A file or folder (absolute, or relative to MEDIA_ROOT) to delete once the erasure has committed."""
        path = Path(path)
        self._paths.append(path if path.is_absolute() else Path(settings.MEDIA_ROOT) / path)

    def remove_files(self) -> None:
        for path in self._paths:
            try:
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    path.unlink()
            except OSError:  # never leave the request failing after the commit; the log names what is left
                logger.exception("erasure of participant %s: could not remove %s", self.participant.code, path)


@dataclass(frozen=True)
class ErasureStep:
    name: str
    order: int
    plan: Callable[[Participant], dict]
    erase: Callable[[Erasure], dict]
    labels: dict


ERASURE_STEPS: dict[str, ErasureStep] = {}


def erasure_step(name: str, *, order: int, labels: dict[str, str]):
    """Register a class or module-like object with ``plan(participant)`` and ``erase(erasure)``.

    ``labels`` names, in words, each count the step reports (``{"exports": "exported zip files"}``)."""

    def register(obj):
        step = ErasureStep(name=name, order=order, plan=obj.plan, erase=obj.erase, labels=dict(labels))
        known = ERASURE_STEPS.get(name)
        if known is not None and (known.plan, known.erase) != (step.plan, step.erase):
            raise RuntimeError(f"erasure step {name!r} is registered twice")
        ERASURE_STEPS[name] = step
        return obj

    return register


def ordered_steps() -> list[ErasureStep]:
    return sorted(ERASURE_STEPS.values(), key=lambda step: (step.order, step.name))


@dataclass(frozen=True)
class PlanLine:
    key: str
    label: str
    count: int


def erasure_plan(participant: Participant) -> list[PlanLine]:
    """What erasing the participant would remove, step by step; only what exists (count > 0)."""
    lines = []
    for step in ordered_steps():
        for key, count in step.plan(participant).items():
            if count:
                lines.append(PlanLine(key, step.labels.get(key, key.replace("_", " ")), int(count)))
    return lines


def describe_counts(counts: dict) -> list[PlanLine]:
    """``erase_participant``'s counts in words (what the "your data was deleted" page lists)."""
    labels = {key: label for step in ordered_steps() for key, label in step.labels.items()}
    return [PlanLine(key, labels.get(key, key.replace("_", " ")), count) for key, count in counts.items() if count]


def erase_participant(participant: Participant, *, requested_by: str = "") -> dict:
    """Erase everything derived from the participant's photos, in every app, atomically; their files
    go once the database transaction has committed. Returns ``{what: count}`` of what was removed.
    Erasing an erased participant again removes whatever was left (nothing, normally)."""
    if not ERASURE_STEPS:
        raise RuntimeError("no erasure steps are registered: the labeling app was not set up")
    with transaction.atomic():
        locked = Participant.objects.select_for_update().get(pk=participant.pk)
        erasure = Erasure(participant=locked, requested_by=requested_by or "unknown")
        counts: dict[str, int] = {}
        for step in ordered_steps():
            for key, value in step.erase(erasure).items():
                counts[key] = counts.get(key, 0) + int(value)
        erased_at = locked.erased_at or erasure.started_at
        history = list((locked.erasure_record or {}).get("history", []))
        history.append({"at": erasure.started_at.isoformat(), "requested_by": erasure.requested_by, "removed": counts})
        Participant.objects.filter(pk=locked.pk).update(
            erased_at=erased_at, consent_at=None, consent_version="", token_expires_at=None, notes="",
            erasure_record={"erased_at": erased_at.isoformat(), "history": history},
        )
        transaction.on_commit(erasure.remove_files)
    participant.refresh_from_db()
    return counts


# --- The core steps: job records, then the participant's own rows and files ------------------------------

REDACTED = "[erased]"
ID_KEYS = {"upload_id": "uploads", "upload_ids": "uploads", "image_id": "images", "image_ids": "images"}


class _Traces:
    """What names the participant in a job record: their upload and image ids, file names, hashes."""

    def __init__(self, participant: Participant):
        uploads = list(Upload.objects.filter(participant=participant).values_list("pk", "original_name", "sha256", "file"))
        images = list(Image.objects.filter(participant=participant).values_list("pk", "sha256", "file", "thumbnail"))
        self.ids = {"uploads": {u[0] for u in uploads}, "images": {i[0] for i in images}}
        names = {u[1] for u in uploads if u[1]}  # as sent: matched as whole names only ("a.jpg" is not in "data.jpg")
        exact = {s for u in uploads for s in u[2:] if s} | {s for i in images for s in i[1:] if s}
        exact |= {f"{kind}/{participant.pk}/" for kind in ("uploads", "images", "thumbnails")}
        # Longest first, so that a path is redacted whole before a name inside it.
        alternatives = [(s, re.escape(s)) for s in exact] + [(s, rf"(?<![\w.-]){re.escape(s)}(?![\w.-])") for s in names]
        alternatives.sort(key=lambda pair: len(pair[0]), reverse=True)
        self.pattern = re.compile("|".join(regex for _, regex in alternatives))

    def text(self, value: str) -> str:
        return self.pattern.sub(REDACTED, value) if value else value

    def json(self, value):
        if isinstance(value, dict):
            clean = {}
            for key, item in value.items():
                kind = ID_KEYS.get(key)
                if kind and isinstance(item, int) and not isinstance(item, bool) and item in self.ids[kind]:
                    clean[key] = None
                elif kind and isinstance(item, list):
                    clean[key] = [self.json(x) for x in item if not (isinstance(x, int) and x in self.ids[kind])]
                else:
                    clean[key] = self.json(item)
            return clean
        if isinstance(value, list):
            return [self.json(item) for item in value]
        if isinstance(value, str):
            return self.text(value)
        return value


def _jobs_naming(participant: Participant):
    from jobs.models import Job

    traces = _Traces(participant)
    found = []
    for job in Job.objects.only("pk", "status", "arguments", "result", "message", "log", "error").iterator(chunk_size=500):
        changes = {"arguments": traces.json(job.arguments), "result": traces.json(job.result), "message": traces.text(job.message),
                   "log": traces.text(job.log), "error": traces.text(job.error)}
        changed = {key: value for key, value in changes.items()
                   if json.dumps(value, sort_keys=True) != json.dumps(getattr(job, key), sort_keys=True)}
        if changed:
            found.append((job, changed))
    return traces, found


@erasure_step("jobs", order=80, labels={"job_records": "job records that name your files (their names are blanked out)"})
class JobRecords:
    """Job rows whose arguments, result, message, log or error name the participant's uploads, images or
    files: those are blanked out (ids removed, names replaced by "[erased]"); a queued or running one is
    cancelled first (its work would be on data that is about to go)."""

    @staticmethod
    def plan(participant):
        return {"job_records": len(_jobs_naming(participant)[1])}

    @staticmethod
    def erase(erasure):
        from jobs.models import Job
        from jobs.runner import cancel_job

        _, found = _jobs_naming(erasure.participant)
        for job, changed in found:
            if job.is_active:
                cancel_job(job)
            Job.objects.filter(pk=job.pk).update(**changed)
        return {"job_records": len(found)}


def participant_media_folders(participant: Participant) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [root / kind / str(participant.pk) for kind in ("uploads", "images", "thumbnails")]


@erasure_step("media", order=100, labels={
    "uploads": "photos and videos you sent", "images": "pictures made from them", "annotations": "sets of nail outlines",
    "annotation_revisions": "earlier versions of those outlines"})
class ParticipantMedia:
    """The uploads as sent, the normalized images and thumbnails, annotations and every revision."""

    @staticmethod
    def plan(participant):
        return {"uploads": Upload.objects.filter(participant=participant).count(),
                "images": Image.objects.filter(participant=participant).count(),
                "annotations": Annotation.objects.filter(image__participant=participant).count(),
                "annotation_revisions": AnnotationRevision.objects.filter(annotation__image__participant=participant).count()}

    @staticmethod
    def erase(erasure):
        participant = erasure.participant
        counts = ParticipantMedia.plan(participant)
        Image.objects.filter(participant=participant).delete()  # annotations and revisions cascade
        Upload.objects.filter(participant=participant).delete()
        # Every upload, image and thumbnail file lives below these folders (upload_file_path, image_file_path,
        # thumbnail_file_path name them by participant id), so the folders are all there is to remove.
        for folder in participant_media_folders(participant):
            erasure.remove_after_commit(folder)
        return counts
