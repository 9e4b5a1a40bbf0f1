"""Job kinds of the training-data app: build a snapshot, export it, import labels."""
import re

from jobs.registry import JobArgumentError, job_kind

from dataset.formats import EXPORTERS, IMPORTERS, NAME_CHOICES
from dataset.splits import DEFAULT_RATIOS

from .models import Snapshot
from .snapshots import build_snapshot

NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
EXPORT_FORMATS = tuple(EXPORTERS)  # every format comes from the registry of dataset.formats, nowhere else
IMPORT_FORMATS = tuple(IMPORTERS)


def _snapshot_arguments(arguments: dict) -> dict:
    name = arguments.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise JobArgumentError("name must be 1-100 letters, digits, '-' or '_'")
    if Snapshot.objects.filter(name=name).exists():
        raise JobArgumentError(f"a snapshot named {name!r} exists already; snapshots never change, pick a new name")
    ratios = arguments.get("ratios", list(DEFAULT_RATIOS))
    if (not isinstance(ratios, list) or len(ratios) != 3 or not all(isinstance(r, (int, float)) and not isinstance(r, bool) and r >= 0 for r in ratios)
            or abs(sum(ratios) - 1) > 1e-6):
        raise JobArgumentError("ratios must be three non-negative numbers (train, val, test) that sum to 1")
    seed = arguments.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise JobArgumentError("seed must be a whole number")
    return {"name": name, "ratios": [float(r) for r in ratios], "seed": seed,
            "include_submitted": bool(arguments.get("include_submitted", False))}


@job_kind("snapshot", title="Build a snapshot", validate=_snapshot_arguments)
def snapshot_job(ctx, name: str, ratios: list, seed: int, include_submitted: bool) -> dict:
    warnings = []

    def warn(message: str) -> None:
        warnings.append(message)
        ctx.log(f"warning: {message}")

    snapshot = build_snapshot(name, ratios=ratios, seed=seed, include_submitted=include_submitted, user=ctx.job.created_by,
                              job=ctx.job, progress=ctx.progress, warn=warn)
    return {"snapshot": snapshot.name, "content_hash": snapshot.content_hash, "counts": snapshot.counts, "leaks": len(snapshot.leaks),
            "warnings": warnings}


def _export_arguments(arguments: dict) -> dict:
    name, fmt, out = arguments.get("snapshot"), arguments.get("format"), arguments.get("out")
    if not Snapshot.objects.filter(name=name, status=Snapshot.Status.READY).exists():
        raise JobArgumentError(f"there is no ready snapshot named {name!r}")
    if fmt not in EXPORT_FORMATS:
        raise JobArgumentError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    if out is not None and not isinstance(out, str):
        raise JobArgumentError("out must be a folder path")
    names = arguments.get("names", NAME_CHOICES[0])
    if names not in NAME_CHOICES:
        raise JobArgumentError(f"names must be {' or '.join(NAME_CHOICES)} (the participants' file names, or image ids)")
    return {"snapshot": name, "format": fmt, **({"out": out} if out else {}),
            **({"names": names} if names != NAME_CHOICES[0] else {})}


@job_kind("export_snapshot", title="Export a snapshot", validate=_export_arguments, writes=("out",))
def export_snapshot_job(ctx, snapshot: str, format: str, out: str | None = None, names: str = NAME_CHOICES[0]) -> dict:
    from .transfer import export_snapshot

    def succeed(result: dict) -> None:
        """In the transaction that checked no participant of the snapshot was erased meanwhile: the job is
        recorded as succeeded with it, so an erasure after it finds the export (curation/erasure_steps.py)."""
        for warning in result.get("warnings", []):
            ctx.log(f"warning: {warning}")
        done = f"{format} export of {snapshot}: {result['size'] / 1e6:.1f} MB"
        ctx.progress(1.0, done)
        ctx.succeed(result, done)

    ctx.progress(0.05, f"exporting {snapshot} as {format}")
    return export_snapshot(Snapshot.objects.get(name=snapshot), format, out=out, job=ctx.job, names=names,
                           record_result=succeed)


def _import_arguments(arguments: dict) -> dict:
    fmt, path = arguments.get("format"), arguments.get("path")
    if fmt not in IMPORT_FORMATS:
        raise JobArgumentError(f"format must be one of {', '.join(IMPORT_FORMATS)}")
    if not isinstance(path, str) or not path:
        raise JobArgumentError("path must name a file, folder or zip on the server")
    status = arguments.get("status", "accepted")
    if status not in ("draft", "submitted", "accepted"):
        raise JobArgumentError("status must be draft, submitted or accepted")
    label_map = arguments.get("label_map")
    if label_map is not None and not (isinstance(label_map, dict) and all(
            isinstance(k, str) and (v is None or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10)) for k, v in label_map.items())):
        raise JobArgumentError("label_map must map label names to finger classes 1..10 or null (finger unknown)")
    clean = {"format": fmt, "path": path, "status": status, "replace": bool(arguments.get("replace", False)),
             "skip_invalid": bool(arguments.get("skip_invalid", False))}
    for key in ("participants_csv", "images_dir", "participant"):
        if arguments.get(key):
            clean[key] = str(arguments[key])
    if label_map:
        clean["label_map"] = label_map
    return clean


@job_kind("import_labels", title="Import labels", validate=_import_arguments,
          reads=("path", "images_dir", "participants_csv"))
def import_labels_job(ctx, format: str, path: str, status: str, replace: bool, participants_csv: str | None = None,
                      images_dir: str | None = None, participant: str | None = None, label_map: dict | None = None,
                      skip_invalid: bool = False) -> dict:
    from .transfer import import_labels

    report = import_labels(format, path, participants_csv=participants_csv, images_dir=images_dir, default_participant=participant,
                           label_map=label_map, status=status, replace=replace, skip_invalid=skip_invalid,
                           user=ctx.job.created_by, progress=ctx.progress)
    for warning in report.warnings:
        ctx.log(f"warning: {warning}")
    for problem in report.problems:
        if problem["outcome"] == "skipped":
            ctx.log(f"skipped in {problem['file']}: {problem['problem']}")
    for failure in report.failed_files:
        ctx.log(f"nothing imported from {failure['file']}: {failure['reason']}")
    return report.as_dict()
