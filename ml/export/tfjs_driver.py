"""The main environment's side of the TF.js export: ONNX -> the export environment's converter
(``python -m ml.export.tfjs`` in ``.venv-export``, a subprocess: the main environment never imports
TensorFlow) -> the graph model, checked in TensorFlow and, when Chromium is there, in the browser.

Design (docs/export.md): one job in the main environment's worker does the whole export; only the
conversion step crosses into the export environment, by subprocess, with files in and files out
(the ONNX graph, PyTorch's reference outputs as .npz; the graph model and a JSON report). So the export
job needs no worker of its own and no TensorFlow import ever reaches the web or the workers.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from .files import temp_dir
from .module import reference_outputs
from .onnx import export_onnx
from .parity import REFERENCE_DIR, combine, goal_for, write_reference
from .photos import default_long_side, prepare_input, sample_size
from .registry import ExportRequest, ExportResult, export_format
from .spec import OUTPUT_NAMES, PROJECT_ROOT, ExportError, Log, Progress

EXPORT_PYTHON_ENV = "NAILSET_EXPORT_PYTHON"
DEFAULT_EXPORT_PYTHON = PROJECT_ROOT / ".venv-export" / "bin" / "python"
CONVERSION_TIMEOUT_S = 1200
#: TensorFlow's start-up chatter on a machine without a GPU: not worth a job's log.
_NOISE = re.compile(r"cuda|cuDNN|cuFFT|cuBLAS|absl::|computation placer|cpu_feature_guard|oneDNN|rebuild TensorFlow|"
                    r"ydf\.readthedocs|TF-TRT|^\s*$")


def export_python() -> Path:
    """The export environment's interpreter: ``$NAILSET_EXPORT_PYTHON`` or ``.venv-export/bin/python``."""
    path = Path(os.environ.get(EXPORT_PYTHON_ENV) or DEFAULT_EXPORT_PYTHON)
    if not path.exists():
        raise ExportError(f"the export environment is missing ({path}): run `make export-env` "
                          f"(or set {EXPORT_PYTHON_ENV} to its python)")
    return path


def export_tfjs(model: nn.Module, out: Path, inputs: Sequence[np.ndarray], references: Sequence[Mapping[str, np.ndarray]],
                photos: Sequence[Any], *, quantize: str | None = None, browser: bool | None = None,
                backends: Sequence[str] = ("cpu", "webgl"), repeats: int = 1, sample_size: tuple[int, int] = (256, 320),
                progress: Progress, log: Log) -> tuple[dict[str, Any], dict[str, Any]]:
    if quantize not in (None, "float16", "uint8"):
        raise ExportError(f"quantize must be float16 or uint8, not {quantize!r}")
    python = export_python()
    work = temp_dir("nailset-tfjs-")
    try:
        progress(0.05, "exporting the ONNX graph to rebuild in TensorFlow")
        onnx_info = export_onnx(model, work / "model.onnx", sample_size=sample_size)
        arrays = {"count": np.int64(len(inputs))}
        for i, (x, ref) in enumerate(zip(inputs, references)):
            arrays[f"input_{i}"] = x
            arrays.update({f"{k}_{i}": ref[k] for k in OUTPUT_NAMES})
        np.savez(work / "reference.npz", **arrays)
        progress(0.15, "converting in the export environment (TensorFlow SavedModel -> TF.js graph model)")
        cmd = [str(python), "-m", "ml.export.tfjs", "--onnx", str(work / "model.onnx"), "--out", str(out),
               "--reference", str(work / "reference.npz"), "--work", str(work)]
        if quantize:
            cmd += ["--quantize", quantize]
        env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        try:
            proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                                  timeout=CONVERSION_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            raise ExportError(f"the TF.js conversion took longer than {CONVERSION_TIMEOUT_S} s") from exc
        for line in [ln for ln in proc.stderr.splitlines() if not _NOISE.search(ln)][-20:]:
            log(f"[export env] {line}")
        if proc.returncode != 0:
            raise ExportError(f"the TF.js conversion failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        report_file = out / "tfjs-conversion.json"
        conversion = json.loads(report_file.read_text())
        report_file.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    write_reference(out / REFERENCE_DIR, inputs, references, photos)
    runs: dict[str, Any] = {}
    tf_run = dict(conversion["tensorflow_parity"])
    for item, photo in zip(tf_run.get("per_image", []), photos):
        item["image"] = photo.name
    runs["tensorflow-savedmodel"] = tf_run
    browser_note = None
    if browser is None:
        from .browser import chromium_unavailable

        browser_note = chromium_unavailable()
        browser = browser_note is None
    if browser:
        from .browser import run_tfjs_parity

        progress(0.7, f"running the graph model in headless Chromium ({', '.join(backends)})")
        runs.update(run_tfjs_parity(out, conversion["input_node"], conversion["output_nodes"], backends=backends,
                                    photos=photos, repeats=repeats))
    else:
        browser_note = browser_note or "the browser check was turned off"
    tfjs_runs = [k for k in runs if k.startswith("chromium-")]
    if quantize and not tfjs_runs:
        browser_note += (f"; the {quantize} weight quantisation happens in the converter, so only a browser run "
                         "measures its effect")
    report = combine("tfjs", goal_for("tfjs", quantize), runs, photos, references, quantize=quantize,
                     tfjs_runtime_checked=bool(tfjs_runs),
                     note=("TF.js itself ran in headless Chromium (" + ", ".join(tfjs_runs) + ")") if tfjs_runs else
                     f"TF.js itself was not run by the export: {browser_note}. The TensorFlow graph that was converted was. "
                     "Open the artifact's TF.js page to measure it in a browser.")
    info = {
        "input_node": conversion["input_node"],
        "output_nodes": conversion["output_nodes"],
        "quantize": quantize,
        "converter": conversion["converter"],
        "graph_ops": conversion["graph_ops"],
        "model_json": conversion["model_json"],
        "onnx_intermediate": {"opset": onnx_info["opset"], "ops": onnx_info["ops"]},
        "tfjs_npm_version": tfjs_npm_version(),
        "tools": conversion["tools"],
        "conversion_seconds": conversion["seconds"],
    }
    return info, report


TFJS_VERSION_FILE = PROJECT_ROOT / ".tfjs" / "static" / "tfjs" / "VERSION"


def tfjs_npm_version() -> str | None:
    try:
        return TFJS_VERSION_FILE.read_text().strip()
    except OSError:
        return None


@export_format("tfjs")
def tfjs_artifact(request: ExportRequest) -> ExportResult:
    """A TF.js graph model (the ONNX graph rebuilt in TensorFlow by the export environment), proven in
    TensorFlow and, when Chromium is there, in the browser; parity at the evaluation size capped at 320."""
    model, out = request.model, request.out
    long_side = request.parity_long_side or default_long_side(request.meta, cap=320)
    inputs = [prepare_input(p, long_side) for p in request.photos]
    info, report = export_tfjs(model, out, inputs, reference_outputs(model, inputs), request.photos,
                               quantize=request.quantize, browser=request.browser, backends=request.backends,
                               repeats=request.browser_repeats, sample_size=sample_size(long_side),
                               progress=request.progress, log=request.log)
    metadata = request.metadata(info)
    files = sorted(p.name for p in out.iterdir() if p.name != REFERENCE_DIR)
    return ExportResult(metadata, report, files)
