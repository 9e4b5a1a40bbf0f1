"""What erasing a participant removes from the training data (see labeling/erasure.py): their rows in
snapshots (frozen labels and image hashes), and every export that holds their photos or labels: the zip
files kept for download (deleted; the row stays, withdrawn with the reason, so a download answers 410
and the snapshot can be exported again without them) and the folders written by ``export_snapshot --out``
jobs (deleted when the folder still holds that export)."""
from __future__ import annotations

from pathlib import Path

from django.db.models import F

from jobs.models import Job
from labeling.erasure import erasure_step

from .models import Export, Snapshot, SnapshotItem

METADATA_FILES = ("manifest.json", "data.yaml", "annotations/instances_train.json", "annotations/instances_val.json",
                  "annotations/instances_test.json")


def snapshots_with(participant) -> list[Snapshot]:
    return list(Snapshot.objects.filter(pk__in=SnapshotItem.objects.filter(participant=participant).values("snapshot_id")))


def folder_holds_export(folder: Path, snapshot: Snapshot) -> bool:
    """True when ``folder`` still holds an export of ``snapshot`` (its metadata names the snapshot's hash),
    and not something written there since."""
    if not snapshot.content_hash or not folder.is_dir():
        return False
    for name in METADATA_FILES:
        path = folder / name
        if path.is_file():
            with path.open("rb") as fh:
                if snapshot.content_hash.encode() in fh.read(1 << 16):
                    return True
    return False


def export_folder_jobs(snapshots: list[Snapshot]) -> list[tuple[Job, Path]]:
    """Finished ``export_snapshot`` jobs that wrote one of these snapshots to a folder still holding it."""
    by_name = {snapshot.name: snapshot for snapshot in snapshots}
    if not by_name:
        return []
    found = []
    jobs = Job.objects.filter(kind="export_snapshot", status=Job.Status.SUCCEEDED, arguments__snapshot__in=list(by_name))
    for job in jobs:
        path = (job.result or {}).get("path") if isinstance(job.result, dict) else None
        if not (job.arguments or {}).get("out") or not path or (job.result or {}).get("withdrawn_at"):
            continue
        folder = Path(path)
        if folder_holds_export(folder, by_name[job.arguments["snapshot"]]):
            found.append((job, folder))
    return found


@erasure_step("exports", order=20, labels={"exports": "dataset export files that contain your pictures",
                                           "export_folders": "dataset export folders that contain your pictures"})
class SnapshotExports:
    @staticmethod
    def plan(participant):
        snapshots = snapshots_with(participant)
        return {"exports": Export.objects.filter(snapshot__in=snapshots).exclude(file="").count(),
                "export_folders": len(export_folder_jobs(snapshots))}

    @staticmethod
    def erase(erasure):
        # Locked first: an export being saved now either commits before (and is withdrawn here) or sees the
        # erasure and throws its file away (curation.transfer.export_snapshot).
        snapshots = list(Snapshot.objects.select_for_update().filter(pk__in=[s.pk for s in snapshots_with(erasure.participant)]))
        exports = list(Export.objects.select_for_update().filter(snapshot__in=snapshots).exclude(file=""))
        for export in exports:
            erasure.remove_after_commit(export.file.name)
        Export.objects.filter(pk__in=[e.pk for e in exports]).update(file="", withdrawn_at=erasure.started_at,
                                                                     withdrawn_reason=erasure.reason)
        folders = export_folder_jobs(snapshots)
        for job, folder in folders:
            erasure.remove_after_commit(folder)
            Job.objects.filter(pk=job.pk).update(result={**job.result, "withdrawn_at": erasure.started_at.isoformat(),
                                                         "withdrawn_reason": f"{folder} was deleted: {erasure.reason}"})
        return {"exports": len(exports), "export_folders": len(folders)}


@erasure_step("snapshots", order=30, labels={"snapshot_items": "pictures with their outlines in dataset snapshots"})
class SnapshotItems:
    """The participant's rows leave every snapshot (frozen labels, image hash, size); the snapshot counts
    how many went (``erased_items``) and says it holds erased data. Its content hash and counts stay as
    they were built (they name no one)."""

    @staticmethod
    def plan(participant):
        return {"snapshot_items": SnapshotItem.objects.filter(participant=participant).count()}

    @staticmethod
    def erase(erasure):
        participant = erasure.participant
        removed = 0
        for snapshot in Snapshot.objects.select_for_update().filter(pk__in=[s.pk for s in snapshots_with(participant)]):
            count, _ = SnapshotItem.objects.filter(snapshot=snapshot, participant=participant).delete()
            leaks = [leak for leak in snapshot.leaks if participant.code not in (leak.get("participant_a"), leak.get("participant_b"))]
            Snapshot.objects.filter(pk=snapshot.pk).update(erased_items=F("erased_items") + count, leaks=leaks)
            removed += count
        return {"snapshot_items": removed}
