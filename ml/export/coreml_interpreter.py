"""Executes a saved Core ML ML program op by op with PyTorch kernels (Core ML cannot run on Linux).

    interp = CoreMLInterpreter("model.mlpackage")
    outputs = interp.run({"image": pixels_0_255_float32_nchw})      # {"fg_prob": ..., ...}

The package is read back from disk (``coremltools.models.MLModel(..., skip_model_load=True)``), its MIL
program rebuilt with coremltools' milproto loader (weights from the package's ``weight.bin``), and every
operation of the main function executed in order with the PyTorch kernel of the same semantics (the
table ``KERNELS``; the semantics follow coremltools' op definitions, ``coremltools.converters.mil.mil.
ops.defs``). Each result is rounded to the dtype the program declares for it: an FP16 program keeps fp16
activations and weights throughout, computed in float32 and rounded to fp16 after every op (fp16
storage, fp32 accumulation). An op type without a kernel is an error, never skipped.

What this proves: the saved program (its graph, weights, image preprocessing, precision) computes what
PyTorch computes. What it cannot prove: the numerics of Apple's kernels on a device (GPU / Neural Engine
accumulation order and precision). Apple's runtime is not run.
"""
from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


class UnsupportedOp(NotImplementedError):
    pass


def _quiet_coremltools():
    """coremltools logs one line per missing native runtime proxy on Linux; those are expected here."""
    for name in ("coremltools", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)


def import_coremltools():
    """coremltools, imported quietly (the converter of ml.export.coreml and this interpreter both read it)."""
    _quiet_coremltools()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
    return ct


_TORCH_DTYPES = {
    np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
    np.dtype(np.int8): torch.int8, np.dtype(np.uint8): torch.uint8, np.dtype(np.int16): torch.int16,
    np.dtype(np.int32): torch.int32, np.dtype(np.int64): torch.int64, np.dtype(np.bool_): torch.bool,
}
_CAST_NAMES = {"fp16": torch.float16, "fp32": torch.float32, "fp64": torch.float64, "int32": torch.int32,
               "int64": torch.int64, "int16": torch.int16, "int8": torch.int8, "uint8": torch.uint8, "bool": torch.bool}


class Op:
    """What a kernel sees of one operation: tensors (``x(name)``) and constant parameters (``p(name)``)."""

    def __init__(self, op, env: dict[str, Tensor]):
        self.op, self.env = op, env

    @property
    def type(self) -> str:
        return self.op.op_type

    def has(self, name: str) -> bool:
        return name in self.op.inputs and self.op.inputs[name] is not None

    def x(self, name: str) -> Tensor:
        var = self.op.inputs[name]
        if isinstance(var, (list, tuple)):
            raise TypeError(f"{self.type}.{name} is a list; use xs()")
        return self._tensor(var)

    def xs(self, name: str) -> list[Tensor]:
        return [self._tensor(v) for v in self.op.inputs[name]]

    def _tensor(self, var) -> Tensor:
        if var.name in self.env:
            return self.env[var.name]
        if var.val is not None:
            return _to_tensor(var.val)
        raise KeyError(f"{self.type}: input {var.name} has no value yet")

    def p(self, name: str, default: Any = None) -> Any:
        if not self.has(name):
            return default
        var = self.op.inputs[name]
        val = var.val
        if val is None:
            if var.name in self.env:
                return self.env[var.name].numpy()
            raise ValueError(f"{self.type}.{name} must be a constant here")
        return val


def _to_tensor(value: Any) -> Tensor:
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "US":
        raise TypeError(f"not a numeric constant: {value!r}")
    return torch.from_numpy(np.array(array, copy=True))


def _f32(t: Tensor) -> Tensor:
    return t.float() if t.is_floating_point() else t


# ----------------------------------------------------------------------------------------------------
# Kernels: each takes an Op and returns one tensor or a tuple of tensors (one per output)
# ----------------------------------------------------------------------------------------------------


def _same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def k_conv(op: Op) -> Tensor:
    x, weight = _f32(op.x("x")), _f32(op.x("weight"))
    bias = _f32(op.x("bias")) if op.has("bias") else None
    spatial = weight.dim() - 2
    if spatial != 2:
        raise UnsupportedOp(f"conv with {spatial} spatial dims")
    strides = [int(s) for s in op.p("strides", [1, 1])]
    dilations = [int(d) for d in op.p("dilations", [1, 1])]
    groups = int(op.p("groups", 1))
    pad_type = str(op.p("pad_type", "valid"))
    if pad_type == "custom":
        top, bottom, left, right = (int(v) for v in op.p("pad", [0, 0, 0, 0]))
    elif pad_type in ("same", "same_lower"):
        kh, kw = weight.shape[-2:]
        top, bottom = _same_pads(x.shape[-2], kh, strides[0], dilations[0], pad_type == "same_lower")
        left, right = _same_pads(x.shape[-1], kw, strides[1], dilations[1], pad_type == "same_lower")
    elif pad_type == "valid":
        top = bottom = left = right = 0
    else:
        raise UnsupportedOp(f"conv pad_type {pad_type}")
    if top == bottom and left == right:
        return F.conv2d(x, weight, bias, stride=strides, padding=(top, left), dilation=dilations, groups=groups)
    x = F.pad(x, (left, right, top, bottom))
    return F.conv2d(x, weight, bias, stride=strides, padding=0, dilation=dilations, groups=groups)


def _binary(fn: Callable[[Tensor, Tensor], Tensor]) -> Callable[[Op], Tensor]:
    return lambda op: fn(_f32(op.x("x")), _f32(op.x("y")))


def k_clip(op: Op) -> Tensor:
    return torch.clamp(_f32(op.x("x")), float(op.p("alpha")), float(op.p("beta")))


def k_softmax(op: Op) -> Tensor:
    return torch.softmax(_f32(op.x("x")), dim=int(op.p("axis", -1)))


def k_cast(op: Op) -> Tensor:
    return op.x("x").to(_CAST_NAMES[str(op.p("dtype"))])


def _bilinear(x: Tensor, size: tuple[int, int], align_corners: bool) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=align_corners)


def k_upsample_bilinear(op: Op) -> Tensor:
    # iOS 15: H2 = floor(H1 * scale); align_corners=False samples at (i + 0.5) * H1 / H2 - 0.5 (half pixel)
    x = _f32(op.x("x"))
    sh, sw = float(op.p("scale_factor_height", 1.0)), float(op.p("scale_factor_width", 1.0))
    size = (int(math.floor(x.shape[-2] * sh)), int(math.floor(x.shape[-1] * sw)))
    align = bool(op.p("align_corners", True))
    if op.has("half_pixel_centers") and not align and not bool(op.p("half_pixel_centers")):
        raise UnsupportedOp("upsample_bilinear with align_corners=False and half_pixel_centers=False")
    return _bilinear(x, size, align)


def k_resize_bilinear(op: Op) -> Tensor:
    x = _f32(op.x("x"))
    size = (int(op.p("target_size_height", x.shape[-2])), int(op.p("target_size_width", x.shape[-1])))
    mode = str(op.p("sampling_mode", "DEFAULT"))
    if mode == "UNALIGN_CORNERS":
        return _bilinear(x, size, False)
    if mode in ("ALIGN_CORNERS", "STRICT_ALIGN_CORNERS"):
        return _bilinear(x, size, True)
    raise UnsupportedOp(f"resize_bilinear sampling_mode {mode}")


def k_upsample_nearest_neighbor(op: Op) -> Tensor:
    x = _f32(op.x("x"))
    sh, sw = float(op.p("scale_factor_height", 1.0)), float(op.p("scale_factor_width", 1.0))
    size = (int(math.floor(x.shape[-2] * sh)), int(math.floor(x.shape[-1] * sw)))
    return F.interpolate(x, size=size, mode="nearest")


def k_slice_by_index(op: Op) -> Tensor:
    x = op.x("x")
    rank = x.dim()
    begin = [int(v) for v in op.p("begin")]
    end = [int(v) for v in op.p("end")]
    stride = [int(v) for v in op.p("stride", [1] * rank)]
    begin_mask = [bool(v) for v in op.p("begin_mask", [False] * rank)]
    end_mask = [bool(v) for v in op.p("end_mask", [False] * rank)]
    squeeze = [bool(v) for v in op.p("squeeze_mask", [False] * rank)]
    index = []
    for d in range(rank):
        if squeeze[d]:
            index.append(begin[d])
            continue
        index.append(slice(None if begin_mask[d] else begin[d], None if end_mask[d] else end[d], stride[d]))
    if any(s < 0 for s in stride):
        raise UnsupportedOp("slice_by_index with a negative stride")
    return x[tuple(index)]


def k_slice_by_size(op: Op) -> Tensor:
    x = op.x("x")
    begin = [int(v) for v in op.p("begin")]
    size = [int(v) for v in op.p("size")]
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))
    return x[index]


def k_concat(op: Op) -> Tensor:
    if bool(op.p("interleave", False)):
        raise UnsupportedOp("concat with interleave")
    values = [_f32(v) for v in op.xs("values")]
    return torch.cat(values, dim=int(op.p("axis")))


def k_pad(op: Op) -> Tensor:
    x = _f32(op.x("x"))
    pad = [int(v) for v in op.p("pad")]  # (before, after) per padded dim, outermost first
    mode = str(op.p("mode", "constant"))
    torch_pad = []
    for i in range(len(pad) // 2 - 1, -1, -1):
        torch_pad += [pad[2 * i], pad[2 * i + 1]]
    if mode == "constant":
        return F.pad(x, torch_pad, value=float(op.p("constant_val", 0.0)))
    if mode in ("reflect", "replicate"):
        return F.pad(x, torch_pad, mode=mode)
    raise UnsupportedOp(f"pad mode {mode}")


def k_batch_norm(op: Op) -> Tensor:
    x = _f32(op.x("x"))
    gamma = _f32(op.x("gamma")) if op.has("gamma") else None
    beta = _f32(op.x("beta")) if op.has("beta") else None
    return F.batch_norm(x, _f32(op.x("mean")), _f32(op.x("variance")), gamma, beta, training=False,
                        eps=float(op.p("epsilon", 1e-5)))


def k_reshape(op: Op) -> Tensor:
    return op.x("x").reshape([int(v) for v in op.p("shape")])


def k_transpose(op: Op) -> Tensor:
    return op.x("x").permute([int(v) for v in op.p("perm")])


KERNELS: dict[str, Callable[[Op], Tensor | tuple[Tensor, ...]]] = {
    "conv": k_conv,
    "add": _binary(torch.add),
    "sub": _binary(torch.sub),
    "mul": _binary(torch.mul),
    "real_div": _binary(torch.div),
    "maximum": _binary(torch.maximum),
    "minimum": _binary(torch.minimum),
    "clip": k_clip,
    "relu": lambda op: F.relu(_f32(op.x("x"))),
    "relu6": lambda op: F.relu6(_f32(op.x("x"))),
    "sigmoid": lambda op: torch.sigmoid(_f32(op.x("x"))),
    "tanh": lambda op: torch.tanh(_f32(op.x("x"))),
    "softmax": k_softmax,
    "cast": k_cast,
    "identity": lambda op: op.x("x"),
    "upsample_bilinear": k_upsample_bilinear,
    "resize_bilinear": k_resize_bilinear,
    "upsample_nearest_neighbor": k_upsample_nearest_neighbor,
    "slice_by_index": k_slice_by_index,
    "slice_by_size": k_slice_by_size,
    "concat": k_concat,
    "pad": k_pad,
    "batch_norm": k_batch_norm,
    "reshape": k_reshape,
    "transpose": k_transpose,
}


# ----------------------------------------------------------------------------------------------------
# The interpreter
# ----------------------------------------------------------------------------------------------------


def _var_dtype(var) -> torch.dtype | None:
    from coremltools.converters.mil.mil import types

    builtin = var.dtype
    if types.is_tensor(var.sym_type):
        builtin = var.sym_type.get_primitive()
    try:
        return _TORCH_DTYPES[np.dtype(types.nptype_from_builtin(builtin))]
    except (KeyError, TypeError):
        return None


class CoreMLInterpreter:
    """A saved ML program (``.mlpackage``), executable op by op; see the module docstring."""

    def __init__(self, package: str | Path, function: str = "main"):
        from coremltools.converters.mil.frontend.milproto.load import load as load_milproto

        ct = import_coremltools()
        package = Path(package)
        if not package.is_dir():
            raise FileNotFoundError(f"no .mlpackage at {package}")
        mlmodel = ct.models.MLModel(str(package), skip_model_load=True)
        self.spec = mlmodel.get_spec()
        if self.spec.WhichOneof("Type") != "mlProgram":
            raise ValueError(f"{package} is not an ML program ({self.spec.WhichOneof('Type')})")
        program = load_milproto(self.spec, self.spec.specificationVersion, file_weights_dir=mlmodel.weights_dir)
        self.function = program.functions[function]
        self.operations = list(self.function.operations)
        self.input_names = list(self.function.inputs)
        self.output_names = [v.name for v in self.function.outputs]
        missing = sorted({op.op_type for op in self.operations if op.op_type != "const"} - set(KERNELS))
        if missing:
            raise UnsupportedOp(f"the interpreter has no kernel for: {', '.join(missing)}")
        self._consts: dict[str, Tensor] = {}
        for op in self.operations:
            if op.op_type == "const":
                try:
                    self._consts[op.outputs[0].name] = _to_tensor(op.outputs[0].val)
                except TypeError:
                    pass  # string/bool parameters are read from the op's inputs directly

    def op_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(op.op_type for op in self.operations if op.op_type != "const").items()))

    def input_types(self) -> dict[str, str]:
        return {f.name: f.type.WhichOneof("Type") for f in self.spec.description.input}

    @torch.no_grad()
    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        env: dict[str, Tensor] = dict(self._consts)
        for name, var in self.function.inputs.items():
            if name not in inputs:
                raise KeyError(f"missing input {name!r}")
            value = torch.from_numpy(np.ascontiguousarray(inputs[name]))
            dtype = _var_dtype(var)
            if tuple(value.shape) != tuple(int(d) for d in var.shape):
                raise ValueError(f"input {name}: shape {tuple(value.shape)}, the program expects {tuple(var.shape)}")
            env[name] = value.to(dtype) if dtype is not None else value
        for op in self.operations:
            if op.op_type == "const":
                continue
            result = KERNELS[op.op_type](Op(op, env))
            results = result if isinstance(result, tuple) else (result,)
            if len(results) != len(op.outputs):
                raise RuntimeError(f"{op.op_type} {op.name}: {len(results)} results for {len(op.outputs)} outputs")
            for var, value in zip(op.outputs, results):
                dtype = _var_dtype(var)
                if dtype is not None and value.dtype != dtype:
                    value = value.to(dtype)
                if var.shape is not None and all(isinstance(d, (int, np.integer)) for d in var.shape) \
                        and tuple(value.shape) != tuple(int(d) for d in var.shape):
                    raise RuntimeError(f"{op.op_type} {op.name}: shape {tuple(value.shape)}, "
                                       f"the program declares {tuple(var.shape)}")
                env[var.name] = value
        return {name: env[name].float().numpy() for name in self.output_names}
