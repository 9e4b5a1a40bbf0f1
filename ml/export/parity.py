"""Parity reports: the maximum absolute difference of every output of an artifact against PyTorch.

A report (stored in ``nailset-export.json`` and with the ModelArtifact)::

    {"format": "onnx", "goal": 1e-4, "passed": true, "max_abs_diff": 3.1e-6,
     "outputs": {"fg_prob": ..., "class_prob": ..., "field": ...},       # worst over images and runs
     "runs": {"onnxruntime-cpu": {"runtime": "...", "max_abs_diff": ..., "outputs": {...},
                                  "latency_ms": {"352x480": 12.3}, "per_image": [...]}, ...},
     "images": [{"name": "....jpg", "synthetic": false, "size": [352, 480]}], "reference": "PyTorch ..."}

``max_abs_diff`` is over every element of every output of every image of every run measured; ``passed``
means it is below ``goal`` (ONNX 1e-4, TF.js 1e-3, Core ML FP32 1e-4, FP16 1e-2; TF.js with float16 / uint8
quantised weights 1e-2 / 1e-1, our goals: quantised weights differ from the trained ones by construction).
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT_NAMES = ("fg_prob", "class_prob", "field")
GOALS = {"onnx": 1e-4, "tfjs": 1e-3, "coreml-fp32": 1e-4, "coreml-fp16": 1e-2,
         # quantised TF.js weights cannot meet float32's 1e-3 (the weights themselves differ): our goals for them
         "tfjs-float16": 1e-2, "tfjs-uint8": 1e-1}
#: Folder (beside a TF.js artifact) with the parity inputs and PyTorch outputs that the browser checks against.
REFERENCE_DIR = "parity-reference"


def goal_for(fmt: str, variant: str | None = None) -> float:
    """The parity goal of a format: Core ML by precision (fp16 default), TF.js by weight quantisation."""
    if fmt == "coreml":
        return GOALS[f"coreml-{variant or 'fp16'}"]
    if fmt == "tfjs" and variant:
        return GOALS[f"tfjs-{variant}"]
    return GOALS[fmt]


def max_abs_diffs(outputs: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Per output name: max |output - reference| (shapes must agree exactly; NaN anywhere counts as inf)."""
    diffs = {}
    for name in OUTPUT_NAMES:
        out = np.asarray(outputs[name], dtype=np.float64)
        ref = np.asarray(reference[name], dtype=np.float64)
        if out.shape != ref.shape:
            raise ValueError(f"output {name}: shape {out.shape} differs from PyTorch's {ref.shape}")
        d = np.abs(out - ref)
        diffs[name] = float("inf") if not np.all(np.isfinite(d)) else float(d.max(initial=0.0))
    return diffs


def run_result(runtime: str, outputs: Sequence[Mapping[str, np.ndarray]], references: Sequence[Mapping[str, np.ndarray]],
               photos: Sequence[Any], latency_ms: Mapping[str, float] | None = None, **extra: Any) -> dict[str, Any]:
    """One runtime's result over all parity images (outputs in the reference's layout, NCHW)."""
    per_image = []
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    for photo, out, ref in zip(photos, outputs, references, strict=True):
        diffs = max_abs_diffs(out, ref)
        per_image.append({"image": photo.name, "size": list(ref["fg_prob"].shape[-2:]), "max_abs_diff": diffs})
        worst = {k: max(worst[k], diffs[k]) for k in OUTPUT_NAMES}
    return {"runtime": runtime, "max_abs_diff": max(worst.values()), "outputs": worst, "per_image": per_image,
            "latency_ms": dict(latency_ms or {}), **extra}


def combine(fmt: str, goal: float, runs: Mapping[str, Mapping[str, Any]], photos: Sequence[Any],
            references: Sequence[Mapping[str, np.ndarray]], **extra: Any) -> dict[str, Any]:
    """The report of one artifact from its runs (each a :func:`run_result` or an external run of the same
    form, e.g. the browser's)."""
    measured = {k: v for k, v in runs.items() if v.get("max_abs_diff") is not None}
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    for run in measured.values():
        for k in OUTPUT_NAMES:
            worst[k] = max(worst[k], float(run["outputs"][k]))
    max_diff = max(worst.values()) if measured else None
    return {
        "format": fmt,
        "goal": goal,
        "passed": bool(measured) and not _errors(runs) and max_diff < goal,
        "max_abs_diff": max_diff,
        "outputs": worst,
        "runs": dict(runs),
        "images": [{"name": p.name, "synthetic": bool(getattr(p, "synthetic", False)),
                    "size": list(r["fg_prob"].shape[-2:])} for p, r in zip(photos, references)],
        "reference": "PyTorch (the model as trained, eval mode, float32, CPU)",
        **extra,
    }


def add_run(report: dict[str, Any], name: str, run: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``report`` with one more run (e.g. a browser's) and its totals recomputed."""
    runs = {**report.get("runs", {}), name: dict(run)}
    measured = [r for r in runs.values() if r.get("max_abs_diff") is not None]
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    for r in measured:
        for k in OUTPUT_NAMES:
            worst[k] = max(worst[k], float(r["outputs"][k]))
    max_diff = max(worst.values()) if measured else None
    return {**report, "runs": runs, "outputs": worst, "max_abs_diff": max_diff,
            "passed": bool(measured) and not _errors(runs) and max_diff < report["goal"]}


def _errors(runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Runs that failed to run at all (an error instead of numbers): a report with one does not pass."""
    return [k for k, r in runs.items() if r.get("error")]


# ----------------------------------------------------------------------------------------------------
# Reference files for runtimes outside this process (TF.js in a browser)
# ----------------------------------------------------------------------------------------------------


def write_reference(folder: Path, inputs: Sequence[np.ndarray], references: Sequence[Mapping[str, np.ndarray]],
                    photos: Sequence[Any]) -> Path:
    """``folder/reference.json`` + ``folder/reference.bin``: each parity input and PyTorch's outputs as
    little-endian float32 in NHWC (TF.js's layout), with offsets (in floats) and shapes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items, offset = [], 0
    with open(folder / "reference.bin", "wb") as fh:
        def put(array: np.ndarray) -> dict[str, Any]:
            nonlocal offset
            nhwc = np.ascontiguousarray(np.transpose(array, (0, 2, 3, 1)), dtype="<f4")
            fh.write(nhwc.tobytes())
            entry = {"offset": offset, "length": int(nhwc.size), "shape": list(nhwc.shape)}
            offset += int(nhwc.size)
            return entry

        for photo, x, ref in zip(photos, inputs, references, strict=True):
            items.append({"image": photo.name, "synthetic": bool(getattr(photo, "synthetic", False)),
                          "input": put(x), "outputs": {k: put(ref[k]) for k in OUTPUT_NAMES}})
    (folder / "reference.json").write_text(json.dumps({"dtype": "float32", "layout": "NHWC", "items": items}, indent=1))
    return folder


def read_reference(folder: Path) -> tuple[list[np.ndarray], list[dict[str, np.ndarray]], list[dict]]:
    """Inverse of :func:`write_reference` (NCHW arrays)."""
    folder = Path(folder)
    index = json.loads((folder / "reference.json").read_text())
    data = np.fromfile(folder / "reference.bin", dtype="<f4")

    def get(entry):
        a = data[entry["offset"]:entry["offset"] + entry["length"]].reshape(entry["shape"])
        return np.ascontiguousarray(np.transpose(a, (0, 3, 1, 2)))

    inputs = [get(item["input"]) for item in index["items"]]
    refs = [{k: get(v) for k, v in item["outputs"].items()} for item in index["items"]]
    return inputs, refs, index["items"]


def median_ms(func: Callable[[], Any], repeats: int = 5, warmup: int = 1) -> float:
    """The median wall time of ``func`` in milliseconds over ``repeats`` runs after ``warmup`` ones: the
    latency a parity run reports."""
    for _ in range(warmup):
        func()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append((time.perf_counter() - t0) * 1000)
    return round(float(np.median(times)), 2)
