"""ONNX export (``torch.onnx``, TorchScript exporter) and its check with onnxruntime on the CPU.

Graph: input ``image`` float32 N x 3 x H x W, RGB in [0, 1]; outputs ``fg_prob`` N x 1 x H x W,
``class_prob`` N x 10 x H x W, ``field`` N x 2 x H x W. N, H and W are dynamic; H and W must be multiples
of 32 (the TF "SAME" padding of the stride-2 convs is merged into 4x4 kernels for even sizes, and every
stride-2 input is even for such sizes). Opset 17. The metadata block is embedded as the model's
``metadata_props`` (key ``nailset``, JSON) too.

Why the TorchScript exporter: the dynamo exporter (``dynamo=True``) needs onnxscript, which the platform
does not install; the TorchScript exporter of torch 2.13 exports this model completely (Conv, Clip, Add,
Resize, Slice, Sigmoid, Softmax and shape arithmetic for the resize sizes).
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

from .module import ExportModule, reference_outputs
from .parity import combine, goal_for, median_ms, run_result
from .photos import default_long_side, prepare_input, sample_size
from .registry import ExportRequest, ExportResult, export_format
from .spec import INPUT_NAME, OUTPUT_NAMES

OPSET = 17


def export_onnx(model: nn.Module, path: str | Path, sample_size: tuple[int, int] = (352, 480),
                dynamic: bool = True, opset: int = OPSET) -> dict[str, Any]:
    """Write ``model`` (as :class:`ExportModule`: BN folded, probabilities out) to ``path``; returns what
    the metadata says of the graph."""
    import onnx

    path = Path(path)
    module = ExportModule(model, fold=True)
    sample = torch.rand(1, 3, *sample_size, generator=torch.Generator().manual_seed(0))
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {INPUT_NAME: {0: "batch", 2: "height", 3: "width"}}
        dynamic_axes.update({name: {0: "batch", 2: "height", 3: "width"} for name in OUTPUT_NAMES})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(module, (sample,), str(path), input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                          dynamic_axes=dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    ops: dict[str, int] = {}
    for node in graph.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    return {"opset": opset, "dynamic_shapes": dynamic, "exporter": f"torch.onnx (TorchScript) {torch.__version__}",
            "onnx_version": onnx.__version__, "ops": dict(sorted(ops.items()))}


def embed_metadata(path: str | Path, metadata: Mapping[str, Any]) -> None:
    """Store the metadata block in the ONNX file's ``metadata_props`` (key ``nailset``) and doc string."""
    import onnx

    graph = onnx.load(str(path))
    del graph.metadata_props[:]
    entry = graph.metadata_props.add()
    entry.key, entry.value = "nailset", json.dumps(metadata, sort_keys=True)
    graph.producer_name = "nailset"
    graph.doc_string = metadata.get("description", "")
    onnx.save(graph, str(path))


class OnnxRunner:
    """onnxruntime on the CPU: ``runner(x)`` -> {name: array} for a 1 x 3 x H x W float32 input."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.version = ort.__version__

    def __call__(self, x: np.ndarray) -> dict[str, np.ndarray]:
        outs = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(x, dtype=np.float32)})
        return dict(zip(OUTPUT_NAMES, outs))


def onnx_parity(path: str | Path, inputs: Sequence[np.ndarray], references: Sequence[Mapping[str, np.ndarray]],
                photos: Sequence[Any], repeats: int = 5) -> dict[str, Any]:
    runner = OnnxRunner(path)
    outputs, latency = [], {}
    for x in inputs:
        outputs.append(runner(x))
        key = f"{x.shape[2]}x{x.shape[3]}"
        if key not in latency:
            latency[key] = median_ms(lambda: runner(x), repeats=repeats)
    run = run_result(f"onnxruntime {runner.version} (CPUExecutionProvider)",
                     outputs, references, photos, latency)
    return combine("onnx", goal_for("onnx"), {"onnxruntime-cpu": run}, photos, references)


@export_format("onnx")
def onnx_artifact(request: ExportRequest) -> ExportResult:
    """``model.onnx`` (dynamic N/H/W, the metadata block in its ``metadata_props``), proven with onnxruntime
    at the checkpoint's evaluation size."""
    model, out, progress = request.model, request.out, request.progress
    long_side = request.parity_long_side or default_long_side(request.meta)
    progress(0.1, "exporting ONNX")
    info = export_onnx(model, out / "model.onnx", sample_size=sample_size(long_side))
    metadata = request.metadata(info)
    embed_metadata(out / "model.onnx", metadata)
    progress(0.5, "checking parity with onnxruntime")
    inputs = [prepare_input(p, long_side) for p in request.photos]
    report = onnx_parity(out / "model.onnx", inputs, reference_outputs(model, inputs), request.photos)
    return ExportResult(metadata, report, ["model.onnx"])
