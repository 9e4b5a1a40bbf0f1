"""Core ML export: an ``.mlpackage`` holding an ML program (iOS 15+), converted with coremltools from the
traced :class:`~ml.export.module.ExportModule`.

Input ``image``: an RGB image of a fixed size (default: landscape 3:4 at the checkpoint's evaluation size;
``--size HxW``, multiples of 32). Core ML hands the program the pixels as 0..255 floats; the program
scales them by 1/255 (the image input's ``scale``) and then applies the model's own normalisation (mean,
std of the pretrained source), so callers pass camera frames as they are. Outputs ``fg_prob``,
``class_prob``, ``field`` (float32 multi-arrays, 1 x C x H x W). Precision FP16 (default, what the Neural
Engine runs) or FP32.

Core ML itself does not run on Linux (coremltools' ``predict`` needs macOS), so parity is proven by
:mod:`ml.export.coreml_interpreter`: the package is loaded back from disk, its MIL program read with
coremltools' milproto loader, and executed op by op with PyTorch kernels, every intermediate rounded to
the dtype the program declares (fp16 or fp32). Apple's runtime is never run here.

coremltools 9.0 warns that torch 2.13 is newer than the versions it was tested with; the TorchScript
frontend converts this model completely (conv, clip, add, sub, mul, upsample_bilinear, slice_by_index,
sigmoid, softmax, cast), and the interpreter's check covers exactly what was converted.
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import metadata as md
from .coreml_interpreter import CoreMLInterpreter, import_coremltools
from .module import ExportModule, reference_outputs
from .parity import combine, goal_for, run_result
from .photos import default_fixed_size, prepare_input
from .registry import ExportRequest, ExportResult, export_format
from .spec import INPUT_NAME, OUTPUT_NAMES, ExportError, check_size, parse_size

PRECISIONS = ("fp16", "fp32")
MINIMUM_TARGET = "iOS15"


def export_coreml(model: nn.Module, package: str | Path, size: tuple[int, int], precision: str = "fp16",
                  description: str = "", metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Convert ``model`` to ``package`` (an .mlpackage folder); returns what the metadata says of it."""
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be fp16 or fp32, not {precision!r}")
    h, w = check_size(*size)
    ct = import_coremltools()
    module = ExportModule(model, fold=True)
    sample = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, sample, check_trace=False)
        mlmodel = ct.convert(
            traced,
            inputs=[ct.ImageType(name=INPUT_NAME, shape=(1, 3, h, w), scale=1 / 255.0, bias=[0.0, 0.0, 0.0],
                                 color_layout=ct.colorlayout.RGB)],
            outputs=[ct.TensorType(name=name) for name in OUTPUT_NAMES],
            convert_to="mlprogram",
            minimum_deployment_target=getattr(ct.target, MINIMUM_TARGET),
            compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
            compute_units=ct.ComputeUnit.ALL,
        )
    mlmodel.short_description = description or "NailSet fingernail segmentation"
    mlmodel.author = "NailSet"
    mlmodel.license = "see the NailSet model version's page"
    if metadata and metadata.get("model_version"):
        mlmodel.version = str(metadata["model_version"])
    mlmodel.input_description[INPUT_NAME] = f"RGB image {h}x{w} (pixels 0..255; scaled and normalised inside)"
    mlmodel.output_description["fg_prob"] = "nail probability, 1 x 1 x H x W"
    mlmodel.output_description["class_prob"] = "finger-class probabilities, 1 x 10 x H x W (channel k-1 = class k)"
    mlmodel.output_description["field"] = "direction field base->tip (x right, y down), 1 x 2 x H x W"
    if metadata:
        user = mlmodel.user_defined_metadata
        user["nailset"] = json.dumps(metadata, sort_keys=True)
        for key in ("model_version", "snapshot_content_hash"):
            if metadata.get(key):
                user[f"nailset.{key}"] = str(metadata[key])
    package = Path(package)
    mlmodel.save(str(package))
    return {"input_size": [h, w], "precision": precision, "minimum_deployment_target": MINIMUM_TARGET,
            "model_type": "mlProgram", "compute_units": "ALL",
            "tools": {"coremltools": ct.__version__}, "converted_from": "TorchScript (torch.jit.trace)"}


def coreml_parity(package: str | Path, inputs: Sequence[np.ndarray], references: Sequence[Mapping[str, np.ndarray]],
                  photos: Sequence[Any], precision: str) -> dict[str, Any]:
    import time

    interpreter = CoreMLInterpreter(package)
    outputs, seconds = [], []
    for x in inputs:
        t0 = time.perf_counter()
        # Core ML feeds an image input to the program as 0..255 floats
        outputs.append(interpreter.run({INPUT_NAME: x * np.float32(255.0)}))
        seconds.append(time.perf_counter() - t0)
    run = run_result(
        "coreml_interpreter: the saved ML program executed op by op with PyTorch kernels "
        f"(compute precision {precision}); Apple's Core ML runtime was not run (no macOS/iOS here)",
        outputs, references, photos, latency_ms=None,
        interpreter_ms=round(1000 * float(np.median(seconds)), 1), program_ops=interpreter.op_counts(),
        apple_runtime_run=False)
    return combine("coreml", goal_for("coreml", precision), {"coreml-interpreter": run}, photos, references,
                   precision=precision, apple_runtime_run=False,
                   note="Apple's Core ML runtime was not run: coremltools cannot execute models on Linux. "
                        "Parity is that of the saved ML program, interpreted with PyTorch kernels.")


@export_format("coreml")
def coreml_artifact(request: ExportRequest) -> ExportResult:
    """``model.mlpackage`` at a fixed input size (``request.size``, default landscape 3:4 at the checkpoint's
    evaluation size) in ``request.precision`` (fp16 default), proven by interpreting the saved ML program."""
    model, meta, progress = request.model, request.meta, request.progress
    precision = request.precision or "fp16"
    fixed = parse_size(request.size) or default_fixed_size(meta)
    package = request.out / "model.mlpackage"
    progress(0.1, f"converting to Core ML ({precision}, {fixed[0]}x{fixed[1]})")
    info = export_coreml(model, package, size=fixed, precision=precision,
                         description=md.short_description(request.model_version, meta),
                         metadata=request.metadata({"input_size": list(fixed), "precision": precision}))
    metadata = request.metadata(info)
    progress(0.6, "checking parity: the ML program run op by op with PyTorch kernels")
    inputs = [prepare_input(p, fixed) for p in request.photos]
    report = coreml_parity(package, inputs, reference_outputs(model, inputs), request.photos, precision)
    return ExportResult(metadata, report, ["model.mlpackage"])
