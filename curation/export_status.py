"""The state of each export format of a snapshot, as the dataset page shows it: one control per format.

``none`` (never exported), ``exporting`` (a job is queued or running: its progress), ``ready`` (a zip to
download: size and date), ``withdrawn`` (the zip was deleted because a participant in it erased their data:
when and why), ``failed`` (the last export job failed or was cancelled: its error). Plain functions over
the Export rows and the ``export_snapshot`` jobs (only those without ``out``: folder exports are not kept
for download).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dataset.formats import EXPORTERS
from jobs.models import Job

from .job_kinds import EXPORT_FORMATS
from .models import Export, Snapshot

# from the registry of dataset.formats: a new exporter gets its control on the dataset page by itself
FORMAT_LABELS = {name: exporter.title for name, exporter in EXPORTERS.items()}
FORMAT_HINTS = {name: exporter.description for name, exporter in EXPORTERS.items()}


@dataclass
class ExportState:
    snapshot: str
    format: str
    state: str                          # none | exporting | ready | withdrawn | failed
    label: str = ""
    hint: str = ""
    job_id: int | None = None
    progress: float = 0.0               # exporting: 0..1
    message: str = ""                   # exporting: the job's message; failed: its error
    size: int = 0                       # ready: bytes
    created_at: datetime | None = None  # ready: when the zip was made
    withdrawn_at: datetime | None = None
    withdrawn_reason: str = ""
    last_failure: str = ""              # ready / withdrawn: a later export attempt failed with this

    @property
    def percent(self) -> int:
        return round(self.progress * 100)

    @property
    def download_url(self) -> str:
        return f"/api/snapshots/{self.snapshot}/download/{self.format}/"


def _latest_jobs(names: list[str]) -> dict[tuple[str, str], Job]:
    jobs = (Job.objects.filter(kind="export_snapshot", arguments__snapshot__in=names)
            .exclude(arguments__has_key="out").order_by("-created_at", "-id")
            .only("id", "status", "progress", "message", "error", "arguments", "created_at"))
    latest: dict[tuple[str, str], Job] = {}
    for job in jobs.iterator():
        latest.setdefault((job.arguments.get("snapshot"), job.arguments.get("format")), job)
    return latest


def export_states(snapshots: list[Snapshot]) -> dict[str, list[ExportState]]:
    """``{snapshot name: [ExportState per format, in EXPORT_FORMATS order]}`` for ready snapshots."""
    names = [s.name for s in snapshots if s.status == Snapshot.Status.READY]
    exports: dict[tuple[str, str], Export] = {}
    for export in Export.objects.filter(snapshot__name__in=names).select_related("snapshot").order_by("-created_at", "-id"):
        exports.setdefault((export.snapshot.name, export.format), export)
    jobs = _latest_jobs(names)
    states = {}
    for name in names:
        states[name] = [_state(name, fmt, exports.get((name, fmt)), jobs.get((name, fmt))) for fmt in EXPORT_FORMATS]
    return states


def _state(name: str, fmt: str, export: Export | None, job: Job | None) -> ExportState:
    state = ExportState(snapshot=name, format=fmt, state="none", label=FORMAT_LABELS.get(fmt, fmt), hint=FORMAT_HINTS.get(fmt, ""))
    if job is not None and job.is_active:
        state.state, state.job_id, state.progress, state.message = "exporting", job.pk, job.progress, job.message
        return state
    failed_later = (job is not None and job.status in (Job.Status.FAILED, Job.Status.CANCELLED)
                    and (export is None or job.created_at >= export.created_at))
    failure = (job.error or f"the export job was {job.status}") if failed_later else ""
    if export is not None and export.file:
        state.state, state.size, state.created_at, state.last_failure = "ready", export.size, export.created_at, failure
    elif export is not None and export.withdrawn_at:
        state.state, state.withdrawn_at, state.withdrawn_reason = "withdrawn", export.withdrawn_at, export.withdrawn_reason
        state.last_failure = failure
    elif failure:
        state.state, state.job_id, state.message = "failed", job.pk, failure
    return state
