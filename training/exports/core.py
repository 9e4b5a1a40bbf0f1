"""Exports of model versions (the Django side of ``ml/export``): run an export, store the artifact with
the model version (a zip to download, the unpacked folder for browsers), record browser parity runs.

The export itself is ``ml.export.pipeline.export_model`` (plain PyTorch). Only its TF.js step leaves this
process: ``python -m ml.export.tfjs`` in the export environment (``.venv-export``, ``make export-env``), so
TensorFlow is never imported by the web or a worker. See docs/export.md.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

from django.conf import settings
from django.core.files import File
from django.db import transaction

from ..models import ModelArtifact, ModelVersion

#: Runs a browser may add to a TF.js artifact's parity report (POST .../browser-parity/).
BROWSER_RUN_KEYS = ("chromium-cpu", "chromium-webgl", "browser-cpu", "browser-webgl", "browser-wasm")
OUTPUT_NAMES = ("fg_prob", "class_prob", "field")


def exports_root(version: ModelVersion) -> Path:
    return Path(settings.MEDIA_ROOT) / "models" / version.name / "exports"


def artifact_folder(artifact: ModelArtifact) -> Path:
    return Path(settings.MEDIA_ROOT) / artifact.folder


def export_version(version: ModelVersion, fmt: str, *, precision: str | None = None, size: str | None = None,
                   quantize: str | None = None, browser: bool | None = None, job=None, user=None,
                   progress: Callable[[float, str], None] | None = None,
                   log: Callable[[str], None] | None = None) -> ModelArtifact:
    """Export ``version`` as ``fmt``, prove its parity, and store it as a new :class:`ModelArtifact`.
    A job that runs again (its worker died) gets the artifact it already made."""
    from ml.export.pipeline import export_model
    from ml.checkpoint import load_model

    if job is not None:
        existing = ModelArtifact.objects.filter(job=job).first()
        if existing is not None:
            return existing
    progress = progress or (lambda f, m: None)
    if fmt == "coreml":
        precision = precision or "fp16"
    model, meta = load_model(version.weights.path)
    root = exports_root(version)
    root.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=root, prefix=".partial-"))
    try:
        out = partial / "artifact"
        options = {k: v for k, v in {"precision": precision, "size": size, "quantize": quantize}.items() if v}
        document = export_model(model, fmt, out, meta=meta, model_version=version.name,
                                snapshot_content_hash=version.snapshot_content_hash, precision=precision, size=size,
                                quantize=quantize, browser=browser, on_progress=lambda f, m: progress(0.95 * f, m),
                                log=log)
        archive = partial / "artifact.zip"
        _zip(out, document["files"] + ["nailset-export.json"], archive)
        with transaction.atomic():
            artifact = ModelArtifact.objects.create(
                model_version=version, format=fmt, options=options, metadata=document["metadata"],
                parity=document["parity"], passed=bool(document["parity"].get("passed")),
                size_bytes=int(document["size_bytes"]), job=job, created_by=user)
            final = root / f"{artifact.pk}-{fmt}"
            shutil.rmtree(final, ignore_errors=True)
            out.rename(final)
            artifact.folder = str(final.relative_to(Path(settings.MEDIA_ROOT)))
            with open(archive, "rb") as fh:
                artifact.file.save(f"{artifact.pk}-{version.name}-{fmt}.zip", File(fh), save=False)
            artifact.save()
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    progress(1.0, f"{fmt} artifact {artifact.pk}: max abs diff {artifact.parity.get('max_abs_diff'):.2e}")
    return artifact


def _zip(folder: Path, names: list[str], archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in names:
            path = folder / name
            if path.is_dir():
                for f in sorted(path.rglob("*")):
                    if f.is_file():
                        zf.write(f, f.relative_to(folder).as_posix())
            else:
                zf.write(path, name)


def clean_browser_runs(runs: Any) -> dict[str, dict]:
    """Validate the runs a browser sends (the harness's result): known keys, numbers where numbers go."""
    if not isinstance(runs, dict) or not runs:
        raise ValueError("runs must be a non-empty object keyed by backend, e.g. chromium-webgl")
    clean = {}
    for key, run in runs.items():
        if key not in BROWSER_RUN_KEYS:
            raise ValueError(f"unknown run {key!r} (known: {', '.join(BROWSER_RUN_KEYS)})")
        if not isinstance(run, dict):
            raise ValueError(f"{key}: must be an object")
        entry = {"runtime": str(run.get("runtime", ""))[:300], "backend": str(run.get("backend", ""))[:20],
                 "source": "browser page"}
        if run.get("error"):
            entry.update(max_abs_diff=None, error=str(run["error"])[:500])
        else:
            outputs = run.get("outputs")
            if not isinstance(outputs, dict) or set(outputs) != set(OUTPUT_NAMES):
                raise ValueError(f"{key}: outputs must give {', '.join(OUTPUT_NAMES)}")
            try:
                entry["outputs"] = {k: float(outputs[k]) for k in OUTPUT_NAMES}
                entry["max_abs_diff"] = max(entry["outputs"].values())
                entry["latency_ms"] = {str(k)[:20]: float(v) for k, v in (run.get("latency_ms") or {}).items()}
            except (TypeError, ValueError):
                raise ValueError(f"{key}: outputs and latency_ms must be numbers") from None
            per_image = run.get("per_image")
            if isinstance(per_image, list):
                entry["per_image"] = per_image[:20]
        for extra in ("user_agent", "tfjs_version"):
            if run.get(extra):
                entry[extra] = str(run[extra])[:300]
        clean[key] = entry
    return clean


def record_browser_runs(artifact: ModelArtifact, runs: dict[str, dict]) -> ModelArtifact:
    """Add browser runs (already cleaned) to a TF.js artifact's parity report and recompute its verdict."""
    from ml.export.parity import add_run

    with transaction.atomic():
        artifact = ModelArtifact.objects.select_for_update().get(pk=artifact.pk)
        report = artifact.parity
        for key, run in runs.items():
            report = add_run(report, key, run)
        ran = [k for k, r in report["runs"].items()
               if k.startswith(("chromium-", "browser-")) and r.get("max_abs_diff") is not None]
        report["tfjs_runtime_checked"] = bool(ran)
        if ran:
            report["note"] = f"TF.js itself ran in a browser ({', '.join(ran)})"
        artifact.parity = report
        artifact.passed = bool(report["passed"])
        artifact.save(update_fields=["parity", "passed"])
    return artifact
