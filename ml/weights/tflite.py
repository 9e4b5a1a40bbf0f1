"""TensorFlow Lite ImageNet MobileNetV2 1.0 models (float or quantized) as state dicts of our
:class:`ml.models.mobilenetv2.MobileNetV2Classifier`. Plain PyTorch + NumPy; never imports Django and
needs only the pure-Python ``tflite`` flatbuffer schema package, not TensorFlow."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ml.models.mobilenetv2 import BN_EPS, STAGE_SETTINGS, MobileNetV2Classifier
from ml.weights.sources import WeightsError

__all__ = ["canonical_convs", "tflite_state_dict", "tflite_state_dict_cached"]

# ----------------------------------------------------------------------------------------------------
# Canonical layer list (names of MobileNetV2Classifier at width 1.0, in execution order)
# ----------------------------------------------------------------------------------------------------


def canonical_convs() -> list[tuple[str, str, int, bool]]:
    """(our prefix, "conv" | "dw", stride, has_activation) for every conv of the width-1.0 classifier,
    in execution order, ending with the classifier ("fc", as a 1x1 conv in TensorFlow)."""
    layers = [("features.stages.0", "conv", 2, True)]
    for k, (t, _, n, s) in enumerate(STAGE_SETTINGS, start=1):
        for i in range(n):
            p = f"features.stages.{k}.{i}"
            if t != 1:
                layers.append((f"{p}.expand", "conv", 1, True))
            layers.append((f"{p}.dw", "dw", s if i == 0 else 1, True))
            layers.append((f"{p}.project", "conv", 1, False))
    layers.append(("head", "conv", 1, True))
    layers.append(("fc", "conv", 1, False))
    return layers


# ----------------------------------------------------------------------------------------------------
# TensorFlow Lite flatbuffers
# ----------------------------------------------------------------------------------------------------


def _import_tflite():
    try:
        import tflite  # the flatbuffer schema package (pure Python), not TensorFlow
    except ImportError as e:
        raise WeightsError(
            "reading .tflite weights needs the 'tflite' and 'flatbuffers' packages "
            "(pip install tflite flatbuffers); TensorFlow itself is not needed"
        ) from e
    return tflite


def _tflite_tensor(tfl, model, graph, index: int, data: bytes, origin: str) -> np.ndarray:
    """A constant tensor of the flatbuffer as float32, dequantized as (q - zero_point) * scale, per
    tensor or per channel along the tensor's quantized dimension."""
    t = graph.Tensors(index)
    name = t.Name().decode(errors="replace")
    dtypes = {
        tfl.TensorType.FLOAT32: np.float32,
        tfl.TensorType.FLOAT16: np.float16,
        tfl.TensorType.INT8: np.int8,
        tfl.TensorType.UINT8: np.uint8,
        tfl.TensorType.INT32: np.int32,
    }
    if t.Type() not in dtypes:
        raise WeightsError(f"{origin}: tensor {name!r} has unsupported type {t.Type()}")
    dtype = np.dtype(dtypes[t.Type()])
    shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
    buf = model.Buffers(t.Buffer())
    if buf.DataLength():
        raw = buf.DataAsNumpy().tobytes()
    elif hasattr(buf, "Offset") and buf.Offset() > 1:  # large models keep buffers after the flatbuffer
        raw = data[buf.Offset(): buf.Offset() + buf.Size()]
    else:
        raise WeightsError(f"{origin}: tensor {name!r} has no constant data (computed at run time?)")
    arr = np.frombuffer(raw, dtype=dtype)
    if arr.size != int(np.prod(shape)):
        raise WeightsError(f"{origin}: tensor {name!r} holds {arr.size} values for shape {shape}")
    arr = arr.reshape(shape)
    if dtype.kind == "f":
        return arr.astype(np.float32)
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0:
        raise WeightsError(f"{origin}: integer tensor {name!r} carries no quantization scale")
    scale = q.ScaleAsNumpy().astype(np.float64)
    zero = q.ZeroPointAsNumpy().astype(np.float64) if q.ZeroPointLength() else np.zeros(1)
    if scale.size > 1:
        axis = q.QuantizedDimension()
        if scale.size != shape[axis]:
            raise WeightsError(
                f"{origin}: tensor {name!r} has {scale.size} scales for dimension {axis} of {shape}"
            )
        bshape = [1] * len(shape)
        bshape[axis] = scale.size
        scale = scale.reshape(bshape)
        zero = zero.reshape(bshape) if zero.size == scale.size else zero
    return ((arr.astype(np.float64) - zero) * scale).astype(np.float32)


def tflite_state_dict(path: str | os.PathLike, bn_eps: float = BN_EPS) -> dict[str, Tensor]:
    """Convert a TensorFlow Lite ImageNet MobileNetV2 1.0 (float or quantized) into a state dict of our
    :class:`MobileNetV2Classifier` (1001 classes, index 0 = background).

    The convolutions are taken in execution order and checked one by one against the architecture
    (kind, kernel shape, stride, "SAME" padding, ReLU6 or linear activation). Kernels go from TFLite's
    OHWI (depthwise: 1HWC) to PyTorch's OIHW (depthwise: C1HW). Batch norm is folded into the TFLite
    conv weights and biases; each BN layer is set to pass that bias through exactly in eval mode:
    ``weight = 1, bias = b, running_mean = 0, running_var = 1 - bn_eps``.
    """
    path = Path(path)
    tfl = _import_tflite()
    try:
        data = path.read_bytes()
    except OSError as e:
        raise WeightsError(f"{path}: cannot be read ({e})") from e
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise WeightsError(f"{path}: not a TensorFlow Lite flatbuffer (no TFL3 identifier)")
    try:
        return _convert_tflite(tfl, data, str(path), bn_eps)
    except WeightsError:
        raise
    except Exception as e:  # noqa: BLE001 - a truncated or malformed flatbuffer fails anywhere
        raise WeightsError(f"{path}: malformed TensorFlow Lite model ({type(e).__name__}: {e})") from e


def _convert_tflite(tfl, data: bytes, origin: str, bn_eps: float) -> dict[str, Tensor]:
    model = tfl.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise WeightsError(f"{origin}: the TensorFlow Lite model has no subgraph")
    graph = model.Subgraphs(0)
    conv_codes = {tfl.BuiltinOperator.CONV_2D: "conv", tfl.BuiltinOperator.DEPTHWISE_CONV_2D: "dw"}
    ops = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin not in conv_codes:
            continue
        kind = conv_codes[builtin]
        table = op.BuiltinOptions()
        opts = tfl.Conv2DOptions() if kind == "conv" else tfl.DepthwiseConv2DOptions()
        opts.Init(table.Bytes, table.Pos)
        ops.append((i, kind, opts, [int(j) for j in op.InputsAsNumpy()]))

    layers = canonical_convs()
    if len(ops) != len(layers):
        raise WeightsError(
            f"{origin}: {len(ops)} convolutions, but MobileNetV2 1.0 has {len(layers)}; not this model"
        )
    ref = MobileNetV2Classifier(1.0, num_classes=1001).state_dict()
    relu6 = tfl.ActivationFunctionType.RELU6
    none = tfl.ActivationFunctionType.NONE
    out: dict[str, Tensor] = {}
    for (op_index, kind, opts, inputs), (prefix, want_kind, stride, act) in zip(ops, layers):
        where = f"{origin}: operator {op_index} (our {prefix})"
        if kind != want_kind:
            raise WeightsError(f"{where}: is a {kind} convolution, expected {want_kind}")
        if (opts.StrideH(), opts.StrideW()) != (stride, stride):
            raise WeightsError(f"{where}: stride {opts.StrideH()}x{opts.StrideW()}, expected {stride}")
        if opts.Padding() != tfl.Padding.SAME:
            raise WeightsError(f"{where}: padding is not SAME")
        if opts.FusedActivationFunction() != (relu6 if act else none):
            raise WeightsError(f"{where}: fused activation {opts.FusedActivationFunction()} is unexpected")
        if kind == "dw" and opts.DepthMultiplier() not in (0, 1):
            raise WeightsError(f"{where}: depth multiplier {opts.DepthMultiplier()}")
        w = _tflite_tensor(tfl, model, graph, inputs[1], data, origin)
        if kind == "dw":  # 1 x H x W x C -> C x 1 x H x W
            w = w[0].transpose(2, 0, 1)[:, None]
        else:  # O x H x W x I -> O x I x H x W
            w = w.transpose(0, 3, 1, 2)
        if len(inputs) > 2 and inputs[2] >= 0:
            b = _tflite_tensor(tfl, model, graph, inputs[2], data, origin)
        else:
            b = np.zeros(w.shape[0], np.float32)
        if prefix == "fc":
            w = w.reshape(w.shape[0], -1)
            names = {"fc.weight": w, "fc.bias": b}
        else:
            c = w.shape[0]
            names = {
                f"{prefix}.conv.weight": w,
                f"{prefix}.bn.weight": np.ones(c, np.float32),
                f"{prefix}.bn.bias": b,
                f"{prefix}.bn.running_mean": np.zeros(c, np.float32),
                f"{prefix}.bn.running_var": np.full(c, 1.0 - bn_eps, np.float32),
            }
        for key, value in names.items():
            if tuple(value.shape) != tuple(ref[key].shape):
                raise WeightsError(
                    f"{where}: {key} has shape {tuple(value.shape)}, expected {tuple(ref[key].shape)}"
                )
            out[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return out


@functools.lru_cache(maxsize=4)
def tflite_state_dict_cached(path: str, mtime_ns: int, size: int, bn_eps: float) -> dict[str, Tensor]:
    return tflite_state_dict(path, bn_eps)

