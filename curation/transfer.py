"""Moving labels in and out: snapshot exports and label imports, over the ``dataset.formats`` registry.

Exports stream one record at a time into a folder or a zip on disk, so memory stays flat as the
snapshot grows. Imports bring images in through the intake pipeline when they are not there yet, and
are all or nothing per annotation file.
"""
from __future__ import annotations

import csv
import glob
import shutil
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from dataset.formats import ExportRecord, FolderTarget, ZipTarget, get_exporter, get_importer, safe_extract
from dataset.geometry import validate_geometry
from labeling.annotations import AnnotationError, import_annotation
from labeling.intake import RejectedFile, ingest_upload, store_upload
from labeling.models import Image, Participant

from .models import Export, Snapshot

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


class TransferError(ValueError):
    """An export or import that cannot go ahead; the message says why."""


def export_records(snapshot: Snapshot):
    """The snapshot's images as export records, one at a time (a server-side cursor on PostgreSQL)."""
    items = snapshot.items.select_related("participant", "image").order_by("split", "id")
    for item in items.iterator(chunk_size=500):
        if item.image is None:
            continue  # erased since the snapshot was built: its pixels are gone
        suffix = Path(item.image.file.name).suffix or ".jpg"
        yield ExportRecord(image_id=item.image_id, file_name=f"{item.image_id:07d}{suffix}", source_path=item.image.file.path,
                           width=item.width, height=item.height, participant=item.participant.code, split=item.split,
                           geometry=item.geometry, sha256=item.image_sha256)


def export_meta(snapshot: Snapshot) -> dict:
    return {"snapshot": snapshot.name, "content_hash": snapshot.content_hash, "created_at": snapshot.created_at.isoformat(),
            "exported_at": timezone.now().isoformat(), "holds_erased_data": snapshot.holds_erased_data}


_ERASED_DURING_EXPORT = "a participant in snapshot {name} erased their data while it was being exported; export it again"


def _erased_items(snapshot: Snapshot, lock: bool = False) -> int:
    """How many images erasure has removed from the snapshot (labeling/erasure.py, curation/erasure_steps.py);
    locked, an erasure of one of its participants waits until this transaction ends."""
    rows = Snapshot.objects.select_for_update() if lock else Snapshot.objects
    return rows.filter(pk=snapshot.pk).values_list("erased_items", flat=True).get()


def export_snapshot(snapshot: Snapshot, fmt: str, out: str | None = None, job=None) -> dict:
    """Write the snapshot in ``fmt`` to the folder ``out``, or (without ``out``) to a zip kept for
    download as an Export row. Returns where it went and its size."""
    exporter = get_exporter(fmt)
    if snapshot.status != Snapshot.Status.READY:
        raise TransferError(f"snapshot {snapshot.name} is {snapshot.status}, not ready")
    erased_before = _erased_items(snapshot)
    if out:
        folder = Path(out)
        if folder.exists() and any(folder.iterdir()):
            raise TransferError(f"{folder} is not empty; export into a new or empty folder")
        folder.mkdir(parents=True, exist_ok=True)
        exporter.export(export_records(snapshot), FolderTarget(folder), export_meta(snapshot))
        if _erased_items(snapshot) != erased_before:
            shutil.rmtree(folder, ignore_errors=True)
            raise TransferError(_ERASED_DURING_EXPORT.format(name=snapshot.name))
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        return {"path": str(folder), "size": size, "format": fmt}
    exports_dir = Path(settings.MEDIA_ROOT) / "tmp"
    exports_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=exports_dir, suffix=".zip.part") as tmp:
        with ZipTarget(tmp) as target:
            exporter.export(export_records(snapshot), target, export_meta(snapshot))
        tmp.flush()
        size = Path(tmp.name).stat().st_size
        tmp.seek(0)
        with transaction.atomic():
            if _erased_items(snapshot, lock=True) != erased_before:  # its pixels may be in the zip: throw it away
                raise TransferError(_ERASED_DURING_EXPORT.format(name=snapshot.name))
            previous = list(Export.objects.filter(snapshot=snapshot, format=fmt))
            export = Export(snapshot=snapshot, format=fmt, size=size, job=job)
            export.file.save(f"{snapshot.name}-{fmt}.zip", File(tmp), save=False)
            for old in previous:
                old.file.delete(save=False)
                old.delete()
            export.save()
    return {"export_id": export.pk, "path": export.file.name, "size": size, "format": fmt}


@dataclass
class ImportReport:
    files: int = 0
    images_created: int = 0
    labelled: int = 0
    skipped_existing: int = 0
    participants_created: int = 0
    unknown_labels: dict = field(default_factory=dict)
    failed_files: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def read_participants_csv(path: str | None) -> dict[str, str]:
    """``file_name,participant`` rows -> {file name: participant code}."""
    if not path:
        return {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"file_name", "participant"} <= set(reader.fieldnames):
            raise TransferError(f"{path} needs the columns file_name and participant")
        return {row["file_name"].strip(): row["participant"].strip() for row in reader}


def _annotation_files(root: Path, fmt: str) -> list[Path]:
    if root.is_file():
        return [root]
    patterns = {"coco": ["*.json"], "labelme": ["*.json"], "cvat": ["*.xml"]}[fmt]
    return sorted(p for pattern in patterns for p in root.rglob(pattern))


def _inside(path: Path, roots: list[Path]) -> bool:
    """Whether ``path``, resolved (``..``, symbolic links), lies in one of the (resolved) ``roots``."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(root) for root in roots)


def _find_image(named: str, annotation_file: Path, search_dirs: list[Path]) -> Path | None:
    """The image file an annotation file names (COCO file_name, LabelMe imagePath, CVAT name): the path as
    written, from the annotation file's folder or a search folder, else its base name there, in images/, or
    anywhere below. Raises TransferError when the name, or the file it leads to, is outside every search
    folder (the import folder or extracted zip, and the images folder): ``..``, absolute paths and links."""
    named = named.replace("\\", "/")
    roots = [folder.resolve() for folder in search_dirs]
    as_written = [base / named for base in dict.fromkeys([annotation_file.parent, *search_dirs])]
    as_written = [path for path in as_written if _inside(path, roots)]
    if not as_written:
        raise TransferError(f"image {named} is outside the import folder")
    base_name = Path(named).name
    if base_name in ("", ".", ".."):
        return None
    candidates = [*as_written, *(folder / sub / base_name for folder in search_dirs for sub in ("", "images"))]
    candidates += [match for folder in search_dirs for match in sorted(folder.rglob(glob.escape(base_name)))]
    for candidate in candidates:
        if candidate.is_file():
            if not _inside(candidate, roots):
                raise TransferError(f"image {named} is a link to a file outside the import folder")
            return candidate
    return None


def import_labels(fmt: str, path: str, *, participants_csv: str | None = None, images_dir: str | None = None,
                  default_participant: str | None = None, label_map: dict | None = None, status: str = "accepted",
                  replace: bool = False, user=None, progress=lambda fraction, message=None: None) -> ImportReport:
    """Import a COCO / LabelMe / CVAT export: images through intake, labels as a new annotation version.

    Each annotation file is all or nothing: when one of its images cannot be brought in or one of its
    label sets breaks a geometry rule, nothing of that file is kept and the file is reported.
    """
    importer = get_importer(fmt)
    source = Path(path)
    if not source.exists():
        raise TransferError(f"{source} does not exist")
    participants_by_file = read_participants_csv(participants_csv)
    report = ImportReport()
    with ExitStack() as stack:
        if source.suffix.lower() == ".zip":
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=_tmp_dir())))
            safe_extract(source, folder)
            source = folder
        search_dirs = [Path(images_dir)] if images_dir else []
        search_dirs.append(source if source.is_dir() else source.parent)
        files = _annotation_files(source, fmt)
        if not files:
            raise TransferError(f"no {fmt} annotation files found in {path}")
        report.files = len(files)
        roots = [folder.resolve() for folder in search_dirs]
        for number, annotation_file in enumerate(files, start=1):
            try:
                if source.is_dir() and not _inside(annotation_file, roots):
                    raise TransferError("it is a link to a file outside the import folder")
                dataset = importer.parse(annotation_file, label_map=label_map) if label_map else importer.parse(annotation_file)
                for entry in dataset.images:  # every image path it names stays inside, or nothing of it is read
                    found = _find_image(entry.named_path or entry.file_name, annotation_file, search_dirs)
                    entry.image_path = str(found) if found else None
                for label, count in dataset.unknown_labels.items():
                    report.unknown_labels[label] = report.unknown_labels.get(label, 0) + count
                report.warnings += [f"{annotation_file.name}: {w}" for w in dataset.warnings]
                created_files: list[str] = []
                try:
                    with transaction.atomic():
                        _import_file(dataset, search_dirs, participants_by_file, default_participant, status, replace, user,
                                     f"imported from {fmt} {annotation_file.name}", report, created_files)
                except Exception:
                    for name in created_files:  # the rows were rolled back; their files go too
                        Image.file.field.storage.delete(name)
                    raise
            except (TransferError, RejectedFile, AnnotationError, ValueError) as exc:
                report.failed_files.append({"file": str(annotation_file.relative_to(source) if annotation_file.is_relative_to(source) else annotation_file),
                                            "reason": str(exc)})
            progress(number / len(files), f"{number} of {len(files)} annotation files")
    return report


def _tmp_dir() -> str:
    folder = Path(settings.MEDIA_ROOT) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


def _import_file(dataset, search_dirs, participants_by_file, default_participant, status, replace, user, note, report,
                 created_files: list[str]):
    counts = {"images_created": 0, "labelled": 0, "skipped_existing": 0, "participants_created": 0}
    for entry in dataset.images:
        code = participants_by_file.get(entry.file_name) or participants_by_file.get(Path(entry.file_name).name) or default_participant
        if not code:
            raise TransferError(f"{entry.file_name}: no participant (give --participants CSV or --participant)")
        participant, created = Participant.objects.get_or_create(code=code)
        counts["participants_created"] += created
        image_path = Path(entry.image_path) if entry.image_path else None  # checked by _find_image
        if image_path is None:
            raise TransferError(f"image {entry.file_name} was not found next to the labels")
        with image_path.open("rb") as stream:
            stored = store_upload(participant, stream, image_path.name)
        if stored.created:
            created_files.append(stored.upload.file.name)
        images = list(stored.upload.images.all()) if not stored.created else []
        if not images:
            images = ingest_upload(stored.upload)
            created_files.extend(name for image in images if image.upload_id == stored.upload.pk
                                 for name in (image.file.name, image.thumbnail.name))
            counts["images_created"] += len(images)
        image: Image = images[0]
        if entry.width and entry.height and (entry.width, entry.height) != (image.width, image.height):
            raise TransferError(f"{entry.file_name}: the labels are for {entry.width}x{entry.height} but the image is "
                                f"{image.width}x{image.height}")
        report_ = validate_geometry(entry.geometry, image.width, image.height)
        if not report_.ok:
            raise TransferError(f"{entry.file_name}: " + "; ".join(issue.message for issue in report_.errors))
        saved = import_annotation(image, entry.geometry, status=status, note=note, user=user, replace=replace)
        counts["labelled" if saved else "skipped_existing"] += 1
    for key, value in counts.items():
        setattr(report, key, getattr(report, key) + value)
