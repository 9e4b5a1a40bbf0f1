"""Moving labels in and out: snapshot exports and label imports, over the ``dataset.formats`` registry.

Exports stream one record at a time into a folder or a zip on disk, so memory stays flat as the
snapshot grows. Imports bring images in through the intake pipeline when they are not there yet, and
are all or nothing per annotation file (``skip_invalid`` imports the rest and reports what was left out).
"""
from __future__ import annotations

import csv
import glob
import io
import shutil
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from dataset.formats import (
    ExportNames, ExportRecord, FolderTarget, NotThisFormat, ZipTarget, get_exporter, get_importer, safe_extract,
)
from dataset.geometry import validate_geometry
from labeling.annotations import AnnotationError, InvalidGeometry, import_annotation, split_draft
from labeling.intake import RejectedFile, ingest_upload, store_upload
from labeling.models import Image, Participant

from .models import Export, Snapshot

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"}


class TransferError(ValueError):
    """An export or import that cannot go ahead; the message says why."""


def export_records(snapshot: Snapshot, names: str = "original"):
    """The snapshot's images as export records, one at a time (a server-side cursor on PostgreSQL), named after
    the file the participant sent (a video's frame: its name and frame index) or, with ``names="id"``, by image
    id; made unique within the export (``dataset.formats.ExportNames``)."""
    namer = ExportNames(names)
    items = snapshot.items.select_related("participant", "image", "image__upload").order_by("split", "id")
    for item in items.iterator(chunk_size=500):
        if item.image is None:
            continue  # erased since the snapshot was built: its pixels are gone
        suffix = Path(item.image.file.name).suffix.lower() or ".jpg"
        upload = item.image.upload
        original = upload.original_name if upload is not None else ""
        frame = item.image.frame_index  # set for the frames of a video only
        yield ExportRecord(image_id=item.image_id, file_name=namer.name(item.image_id, suffix, original, frame),
                           source_path=item.image.file.path, width=item.width, height=item.height,
                           participant=item.participant.code, split=item.split, geometry=item.geometry,
                           sha256=item.image_sha256, original_name=original, frame_index=frame)


def export_meta(snapshot: Snapshot) -> dict:
    return {"snapshot": snapshot.name, "content_hash": snapshot.content_hash, "created_at": snapshot.created_at.isoformat(),
            "exported_at": timezone.now().isoformat(), "holds_erased_data": snapshot.holds_erased_data}


_ERASED_DURING_EXPORT = "a participant in snapshot {name} erased their data while it was being exported; export it again"


def _erased_items(snapshot: Snapshot, lock: bool = False) -> int:
    """How many images erasure has removed from the snapshot (labeling/erasure.py, curation/erasure_steps.py);
    locked, an erasure of one of its participants waits until this transaction ends."""
    rows = Snapshot.objects.select_for_update() if lock else Snapshot.objects
    return rows.filter(pk=snapshot.pk).values_list("erased_items", flat=True).get()


def export_snapshot(snapshot: Snapshot, fmt: str, out: str | None = None, job=None, names: str = "original",
                    record_result: Callable[[dict], Any] | None = None) -> dict:
    """Write the snapshot in ``fmt`` to the folder ``out``, or (without ``out``) to a zip kept for
    download as an Export row; images named as ``export_records`` says. Returns where it went, its size
    and the exporter's warnings.

    An erasure of one of its participants while it is written makes the export throw its output away and
    raise TransferError. The last check holds the snapshot's row lock (an erasure takes it too), and what
    keeps the export findable by a later erasure commits in that same transaction: the Export row of a zip;
    for a folder (outside the managed store), ``record_result(result)``, which the export job uses to record
    itself as succeeded (``jobs.runner.JobContext.succeed``), so an erasure either comes first and is seen
    here, or comes after and finds the finished job and deletes the folder (curation/erasure_steps.py). A
    folder export that fails half-way removes what it wrote."""
    exporter = get_exporter(fmt)
    ExportNames(names)  # a bad choice fails before anything is written
    if snapshot.status != Snapshot.Status.READY:
        raise TransferError(f"snapshot {snapshot.name} is {snapshot.status}, not ready")
    erased_before = _erased_items(snapshot)

    def check_not_erased() -> None:  # inside the transaction that keeps the export
        if _erased_items(snapshot, lock=True) != erased_before:  # its pixels may be in the output: throw it away
            raise TransferError(_ERASED_DURING_EXPORT.format(name=snapshot.name))

    if out:
        folder = Path(out)
        if folder.exists() and any(folder.iterdir()):
            raise TransferError(f"{folder} is not empty; export into a new or empty folder")
        existed = folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        try:
            summary = exporter.export(export_records(snapshot, names), FolderTarget(folder), export_meta(snapshot))
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
            result = {"path": str(folder), "size": size, "format": fmt, "names": names,
                      "warnings": summary.get("warnings", [])}
            with transaction.atomic():
                check_not_erased()
                if record_result is not None:
                    record_result(result)
        except BaseException:  # nothing half-written stays; an empty folder the user gave stays, empty
            if existed:
                for child in folder.iterdir():
                    shutil.rmtree(child, ignore_errors=True) if child.is_dir() else child.unlink(missing_ok=True)
            else:
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return result
    exports_dir = Path(settings.MEDIA_ROOT) / "tmp"
    exports_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=exports_dir, suffix=".zip.part") as tmp:
        with ZipTarget(tmp) as target:
            summary = exporter.export(export_records(snapshot, names), target, export_meta(snapshot))
        tmp.flush()
        size = Path(tmp.name).stat().st_size
        tmp.seek(0)
        with transaction.atomic():
            check_not_erased()
            previous = list(Export.objects.filter(snapshot=snapshot, format=fmt))
            export = Export(snapshot=snapshot, format=fmt, size=size, job=job)
            export.file.save(f"{snapshot.name}-{fmt}.zip", File(tmp), save=False)
            for old in previous:
                old.file.delete(save=False)
                old.delete()
            export.save()
            result = {"export_id": export.pk, "path": export.file.name, "size": size, "format": fmt, "names": names,
                      "warnings": summary.get("warnings", [])}
            if record_result is not None:
                record_result(result)
    return result


@dataclass
class ImportReport:
    """What an import did. ``failed_files``: annotation files of which nothing was imported, each with its
    reason (all its problems). ``problems``: every shape, reference or image left out, one per entry, with
    its file and whether the file was refused for it or (``--skip-invalid``) it alone was skipped.
    ``warnings``: what was imported but changed (a polygon repaired, a box taken as a polygon) or passed over."""
    files: int = 0
    images_created: int = 0
    labelled: int = 0
    skipped_existing: int = 0
    participants_created: int = 0
    unknown_labels: dict = field(default_factory=dict)
    failed_files: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    skip_invalid: bool = False

    def as_dict(self) -> dict:
        return self.__dict__.copy()

    def refuse(self, file: str, problems: list[str]) -> None:
        self.failed_files.append({"file": file, "reason": _reason(problems)})
        self.problems += [{"file": file, "problem": problem, "outcome": "refused"} for problem in problems[:MAX_PROBLEMS]]

    def skipped(self, file: str, problems: list[str]) -> None:
        self.problems += [{"file": file, "problem": problem, "outcome": "skipped"} for problem in problems[:MAX_PROBLEMS]]


MAX_PROBLEMS = 200  # per annotation file, in the report (the reason says how many there were)


def _reason(problems: list[str], shown: int = 20) -> str:
    if len(problems) == 1:
        return problems[0]
    more = f"; and {len(problems) - shown} more" if len(problems) > shown else ""
    return f"{len(problems)} problems: " + "; ".join(problems[:shown]) + more


class _FileRefused(Exception):
    def __init__(self, problems: list[str]):
        super().__init__(_reason(problems))
        self.problems = problems


class _OutsideTheImport(TransferError):
    """An image path in a label file that leads outside every import folder: the whole file is refused,
    ``--skip-invalid`` or not."""


def read_participants_csv(path: str | None) -> dict[str, str]:
    """``file_name,participant`` rows -> {file name: participant code}."""
    if not path:
        return {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"file_name", "participant"} <= set(reader.fieldnames):
            raise TransferError(f"{path} needs the columns file_name and participant")
        return {row["file_name"].strip(): row["participant"].strip() for row in reader}


def _annotation_files(root: Path, importer) -> list[Path]:
    if root.is_file():
        return [root]
    patterns = getattr(importer, "patterns", None) or (f"*.{importer.ext}",)
    return sorted({p for pattern in patterns for p in root.rglob(pattern) if p.is_file()})


def _inside(path: Path, roots: list[Path]) -> bool:
    """Whether ``path``, resolved (``..``, symbolic links), lies in one of the (resolved) ``roots``."""
    resolved = path.resolve()
    return any(resolved.is_relative_to(root) for root in roots)


def _find_image(named: str, annotation_file: Path, search_dirs: list[Path]) -> Path | None:
    """The image file an annotation file names (COCO file_name, LabelMe imagePath, CVAT name), in this order:
    the path as written from the annotation file's folder (LabelMe's convention), from each search folder and
    its images/ (CVAT's export layout, names with sub-folders included); then its base name in each search
    folder and its images/; then the only file of that name anywhere below. ``search_dirs``: the ``--images``
    folder first, then the import folder (or extracted zip). Raises _OutsideTheImport when the name, or the
    file it leads to, is outside every search folder (``..``, absolute paths and links), TransferError when
    several files below carry the base name."""
    named = named.replace("\\", "/")
    roots = [folder.resolve() for folder in search_dirs]
    as_written = [path for path in (base / named for base in dict.fromkeys([annotation_file.parent, *search_dirs]))
                  if _inside(path, roots)]
    if not as_written:
        raise _OutsideTheImport(f"image {named} is outside the import folder")
    base_name = Path(named).name
    if base_name in ("", ".", ".."):
        return None
    in_images = [path for path in (folder / "images" / named for folder in search_dirs) if _inside(path, roots)]
    candidates = [*as_written, *in_images, *(folder / sub / base_name for folder in search_dirs for sub in ("", "images"))]
    for candidate in candidates:
        if candidate.is_file():
            if not _inside(candidate, roots):
                raise _OutsideTheImport(f"image {named} is a link to a file outside the import folder")
            return candidate
    for folder in search_dirs:
        matches = [match for match in sorted(folder.rglob(glob.escape(base_name))) if match.is_file()]
        for match in matches:
            if not _inside(match, roots):
                raise _OutsideTheImport(f"image {named} is a link to a file outside the import folder")
        if len(matches) > 1:
            listed = ", ".join(str(m.relative_to(folder)) for m in matches[:3])
            raise TransferError(f"image {named}: {len(matches)} files of that name below {folder.name or folder} "
                                f"({listed}); write the path in the labels or give --images")
        if matches:
            return matches[0]
    return None


def import_labels(fmt: str, path: str, *, participants_csv: str | None = None, images_dir: str | None = None,
                  default_participant: str | None = None, label_map: dict | None = None, status: str = "accepted",
                  replace: bool = False, skip_invalid: bool = False, user=None,
                  progress=lambda fraction, message=None: None) -> ImportReport:
    """Import a COCO / LabelMe / CVAT export: images through intake, labels as a new annotation version.

    Each annotation file is all or nothing: a malformed shape, a dangling reference (an annotation of no
    listed image, an image file that is not there), an unknown label, an image intake refuses or labels that
    break a geometry rule refuse the whole file with the list of problems, and nothing of it is kept. With
    ``skip_invalid`` the rest of such a file comes in and each thing left out is reported ("skipped"); a
    file of which nothing could come in is still refused. An image path leading outside the import folder
    (or zip, or ``images_dir``) refuses the file, unless the file embeds that picture (LabelMe imageData). Polygons that touched or crossed themselves and
    were repaired (``dataset.formats.repair.repair_ring``: at least 90 % of the area kept) come in, each
    repair a warning.
    """
    importer = get_importer(fmt)
    source = Path(path)
    if not source.exists():
        raise TransferError(f"{source} does not exist")
    participants_by_file = read_participants_csv(participants_csv)
    report = ImportReport(skip_invalid=skip_invalid)
    with ExitStack() as stack:
        if source.suffix.lower() == ".zip":
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=_tmp_dir())))
            safe_extract(source, folder)
            source = folder
        search_dirs = [Path(images_dir)] if images_dir else []
        search_dirs.append(source if source.is_dir() else source.parent)
        files = _annotation_files(source, importer)
        if not files:
            raise TransferError(f"no {fmt} annotation files found in {path}")
        roots = [folder.resolve() for folder in search_dirs]
        passed_over = 0
        for number, annotation_file in enumerate(files, start=1):
            shown = str(annotation_file.relative_to(source)) if source.is_dir() else annotation_file.name
            try:
                if source.is_dir() and not _inside(annotation_file, roots):
                    raise TransferError("it is a link to a file outside the import folder")
                try:
                    dataset = importer.parse(annotation_file, label_map=label_map)
                except NotThisFormat as exc:
                    if not source.is_dir():
                        raise
                    passed_over += 1
                    report.warnings.append(f"{shown}: not {fmt} annotations ({exc}); passed over")
                    continue
                for label, count in dataset.unknown_labels.items():
                    report.unknown_labels[label] = report.unknown_labels.get(label, 0) + count
                said = set(dataset.problems)
                report.warnings += [f"{shown}: {w}" for w in dataset.warnings if w not in said]
                problems = list(dataset.problems)
                entries = []
                for entry in dataset.images:  # every image path it names stays inside, or nothing of it is read
                    located = _locate(entry, annotation_file, search_dirs, participants_by_file, default_participant,
                                      importer.embeds_images)
                    if isinstance(located, str):
                        problems.append(located)
                    else:
                        entries.append(located)
                if problems and not skip_invalid:
                    raise _FileRefused(problems)
                counts, more_problems, notes = _import_file(entries, status, replace, user, skip_invalid,
                                                            f"imported from {fmt} {annotation_file.name}")
                report.warnings += [f"{shown}: {note}" for note in notes]
                problems += more_problems
                if problems and not counts["labelled"] + counts["skipped_existing"]:
                    raise _FileRefused(problems)  # skipping what is invalid left nothing: nothing of it was kept
                if problems:
                    report.skipped(shown, problems)
                for key, value in counts.items():
                    setattr(report, key, getattr(report, key) + value)
            except _FileRefused as exc:
                report.refuse(shown, exc.problems)
            except (TransferError, RejectedFile, AnnotationError, ValueError) as exc:
                report.refuse(shown, [str(exc)])
            finally:
                progress(number / len(files), f"{number} of {len(files)} annotation files")
        if passed_over == len(files):
            raise TransferError(f"no {fmt} annotation files found in {path}: " + "; ".join(report.warnings[:5]))
        report.files = len(files) - passed_over
    return report


def _tmp_dir() -> str:
    folder = Path(settings.MEDIA_ROOT) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder)


@dataclass
class _Located:
    entry: object           # the ImportedImage
    code: str               # its participant
    image_path: Path | None
    image_data: bytes | None


def _locate(entry, annotation_file, search_dirs, participants_by_file, default_participant,
            embeds_images: bool = False) -> _Located | str:
    """Where an image's pixels and participant come from, or the problem that keeps it out. Raises
    _OutsideTheImport (the file is refused) for a path leading outside the import folders, unless the label
    file embeds the picture (LabelMe imageData): then the path is only a name and nothing outside is read.
    ``embeds_images``: the format can embed pictures, so a picture missing says that the file has none."""
    named = entry.named_path or entry.file_name
    embedded = getattr(entry, "image_data", None)
    without_picture = f"{annotation_file.name} embeds no picture (imageData)"
    try:
        found = _find_image(named, annotation_file, search_dirs)
    except _OutsideTheImport as exc:
        if not embedded:
            if embeds_images:
                raise _OutsideTheImport(f"{exc}, and {without_picture}: import the folder that holds both, "
                                        "or give --images") from None
            raise
        found = None  # the picture in the labels is used; the path outside is not followed
    except TransferError as exc:
        return str(exc)
    entry.image_path = str(found) if found else None
    code = (participants_by_file.get(named) or participants_by_file.get(entry.file_name)
            or participants_by_file.get(Path(entry.file_name).name) or getattr(entry, "participant", None) or default_participant)
    if not code:
        return f"{entry.file_name}: no participant (give --participants CSV or --participant)"
    if found is None and not embedded:
        if embeds_images:
            return f"image {named} was not found next to the labels, and {without_picture}: give --images"
        return f"image {named} was not found next to the labels"
    return _Located(entry, code, found, None if found else embedded)


def _import_file(entries: list[_Located], status, replace, user, skip_invalid: bool, note: str):
    """Bring one annotation file's images and labels in, in one transaction. Returns ``(counts, problems,
    warnings)``; without ``skip_invalid`` a problem rolls everything back and raises _FileRefused."""
    counts = {"images_created": 0, "labelled": 0, "skipped_existing": 0, "participants_created": 0}
    problems, notes, created_files = [], [], []
    try:
        with transaction.atomic():
            for located in entries:
                image_files: list[str] = []
                try:
                    with transaction.atomic():  # a savepoint: an image that cannot come in leaves nothing
                        outcome = _import_image(located, status, replace, user, skip_invalid, note, image_files)
                except (TransferError, RejectedFile, AnnotationError, ValueError, OSError) as exc:
                    _delete_files(image_files)
                    problems.append(str(exc))
                    continue
                created_files += image_files
                for key, value in outcome["counts"].items():
                    counts[key] += value
                problems += outcome["problems"]
                notes += outcome["warnings"]
            if problems and not skip_invalid:
                raise _FileRefused(problems)
    except Exception:
        _delete_files(created_files)  # the rows were rolled back; their files go too
        raise
    return counts, problems, notes


def _delete_files(names: list[str]) -> None:
    for name in names:
        Image.file.field.storage.delete(name)


def _import_image(located: _Located, status, replace, user, skip_invalid: bool, note: str, created_files: list[str]) -> dict:
    entry = located.entry
    counts = {"images_created": 0, "labelled": 0, "skipped_existing": 0, "participants_created": 0}
    problems, warnings = [], []
    participant, created = Participant.objects.get_or_create(code=located.code)
    counts["participants_created"] += created
    name = getattr(entry, "original_name", None) or (located.image_path.name if located.image_path else Path(entry.file_name).name)
    if located.image_path is not None:
        with located.image_path.open("rb") as stream:
            stored = store_upload(participant, stream, name)
    else:
        warnings.append(f"{entry.file_name}: the picture embedded in the labels (imageData) was used")
        stored = store_upload(participant, io.BytesIO(located.image_data), name)
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
    geometry = entry.geometry
    checked = validate_geometry(geometry, image.width, image.height)
    if not checked.ok:
        if not skip_invalid:
            raise TransferError(f"{entry.file_name}: " + "; ".join(issue.message for issue in checked.errors))
        try:
            geometry, invalid = split_draft(geometry, checked)
        except InvalidGeometry as exc:
            raise TransferError(f"{entry.file_name}: {exc}") from None
        problems += [f"{entry.file_name}: left out " + "; ".join(error["message"] for error in shape["errors"])
                     for shape in invalid]
        checked = validate_geometry(geometry, image.width, image.height)
    warnings += [f"{entry.file_name}: {issue.message}" for issue in checked.warnings]
    saved = import_annotation(image, geometry, status=status, note=note, user=user, replace=replace)
    counts["labelled" if saved else "skipped_existing"] += 1
    return {"counts": counts, "problems": problems, "warnings": warnings}
