"""The ``export_model`` job (queue "export"): a model version -> an ONNX, Core ML or TF.js artifact with
its parity report (training/exports/core.py, ml/export/). Registered through training/job_kinds.py.

The worker that consumes the "export" queue runs in the main environment like every other; the TF.js
step starts ``.venv-export/bin/python -m ml.export.tfjs`` as a subprocess, so that machine needs
``make export-env`` (docs/export.md)."""
from jobs.registry import JobArgumentError, job_kind

from ml.export.registry import EXPORT_FORMATS


def _export_arguments(arguments: dict) -> dict:
    from ..models import ModelVersion

    name, fmt = arguments.get("model"), arguments.get("format")
    if not ModelVersion.objects.filter(name=name).exists():
        raise JobArgumentError(f"there is no model version named {name!r}")
    if fmt not in EXPORT_FORMATS:
        raise JobArgumentError(f"format must be one of {', '.join(EXPORT_FORMATS)}")
    clean = {"model": name, "format": fmt}
    precision, size, quantize = arguments.get("precision"), arguments.get("size"), arguments.get("quantize")
    if precision is not None:
        if fmt != "coreml" or precision not in ("fp16", "fp32"):
            raise JobArgumentError("precision is fp16 or fp32, for the coreml format only")
        clean["precision"] = precision
    if size is not None:
        from ml.export.spec import ExportError, parse_size

        if fmt != "coreml":
            raise JobArgumentError("size (a fixed input size) is for the coreml format only: onnx and tfjs take any "
                                   "multiple of 32")
        try:
            h, w = parse_size(size)
        except ExportError as exc:
            raise JobArgumentError(str(exc)) from exc
        clean["size"] = f"{h}x{w}"
    if quantize is not None:
        if fmt != "tfjs" or quantize not in ("float16", "uint8"):
            raise JobArgumentError("quantize is float16 or uint8, for the tfjs format only")
        clean["quantize"] = quantize
    browser = arguments.get("browser")
    if browser is not None:
        if not isinstance(browser, bool):
            raise JobArgumentError("browser must be true or false")
        clean["browser"] = browser
    return clean


@job_kind("export_model", queue="export", title="Export a model", validate=_export_arguments)
def export_model_job(ctx, model: str, format: str, precision=None, size=None, quantize=None, browser=None) -> dict:
    from ..models import ModelVersion
    from .core import artifact_folder, export_version

    version = ModelVersion.objects.get(name=model)
    ctx.progress(0.01, f"exporting {model} as {format}")
    artifact = export_version(version, format, precision=precision, size=size, quantize=quantize, browser=browser,
                              job=ctx.job, user=ctx.job.created_by, progress=ctx.progress, log=ctx.log)
    report = artifact.parity
    return {"artifact": artifact.pk, "model_version": model, "format": format, "variant": artifact.variant,
            "passed": artifact.passed, "max_abs_diff": report.get("max_abs_diff"), "goal": report.get("goal"),
            "outputs": report.get("outputs"), "size_bytes": artifact.size_bytes, "folder": str(artifact_folder(artifact)),
            "download": f"/api/model-artifacts/{artifact.pk}/download/"}
