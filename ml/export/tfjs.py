"""TensorFlow.js conversion; runs INSIDE the export environment (``.venv-export``: TensorFlow, tensorflowjs,
onnx; no PyTorch, no Django). The main environment calls it as a subprocess (``ml.export.tfjs_driver``)::

    .venv-export/bin/python -m ml.export.tfjs --onnx model.onnx --reference reference.npz --out DIR \
        [--quantize float16|uint8] [--work WORKDIR]

What it does:
1. Rebuilds the network from the ONNX graph (exported from PyTorch and already proven against it by
   onnxruntime) with TensorFlow ops in NHWC: conv kernels transposed to HWIO (depthwise: H W C 1),
   batch norm already folded into the convs (PyTorch's epsilon, by ``ml.models.inference.fold_batchnorm``), every
   padding that is not plain symmetric "SAME" made explicit (``tf.pad`` then a VALID conv; TensorFlow's
   "SAME" puts the odd pixel at the other side than PyTorch), bilinear resizes as ``ResizeBilinear``
   with half-pixel centres (= PyTorch's ``align_corners=False``), the shape arithmetic of the resize
   sizes kept dynamic (ONNX ``Shape`` of an NHWC tensor answers in NCHW order). Weights are copied from
   the ONNX initializers. Not the Keras "layers" format: tfjs's UpSampling2D has no half-pixel centres.
2. Saves a SavedModel whose ``serving_default`` signature takes ``image`` (N x H x W x 3, RGB in [0, 1])
   and returns ``fg_prob``, ``class_prob``, ``field`` (NHWC).
3. Checks the SavedModel against PyTorch's outputs (``--reference``: inputs and outputs in NCHW).
4. Converts it with ``tensorflowjs_converter --input_format=tf_saved_model --output_format=tfjs_graph_model``
   (optionally ``--quantize_float16`` / ``--quantize_uint8``) and reads the converted model.json to map
   the output names explicitly (the converter renames them, e.g. ``Identity_1:0``).
5. Writes ``DIR/tfjs-conversion.json``: output node names, the TensorFlow parity, versions, timings.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The cascade's dilated depthwise convs run as DepthwiseConv2dNative with dilations: TensorFlow's own CPU
# kernel rejects dilation > 1, its oneDNN kernel does not. oneDNN is on by default only on CPUs with
# AVX-512; without this, the SavedModel's parity run fails on the others (AMD EPYC without AVX-512 here).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

OUTPUT_NAMES = ("fg_prob", "class_prob", "field")
INPUT_NAME = "image"
REPORT_FILE = "tfjs-conversion.json"
NCHW_TO_NHWC = (0, 2, 3, 1)


class ConversionError(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------------
# ONNX -> TensorFlow (NHWC)
# ----------------------------------------------------------------------------------------------------


class Value:
    """A graph value: a TF tensor, or a NumPy constant; ``nhwc`` marks 4-D activations kept in NHWC."""

    __slots__ = ("tensor", "const", "nhwc")

    def __init__(self, tensor=None, const: np.ndarray | None = None, nhwc: bool = False):
        self.tensor, self.const, self.nhwc = tensor, const, nhwc


def _attrs(node) -> dict:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


class OnnxGraphToTF:
    """Builds a TensorFlow function equal to an ONNX graph of the op types this model uses."""

    def __init__(self, onnx_path: str | Path):
        import onnx
        from onnx import numpy_helper

        self.model = onnx.load(str(onnx_path))
        graph = self.model.graph
        self.consts: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
        self.nodes = list(graph.node)
        self.input_name = graph.input[0].name
        self.output_names = [o.name for o in graph.output]
        supported = set(self.OPS)
        missing = sorted({n.op_type for n in self.nodes} - supported)
        if missing:
            raise ConversionError(f"ONNX op types without a TensorFlow translation: {', '.join(missing)}")
        self._weights = {}

    # -- helpers -----------------------------------------------------------------------------------

    def _tf(self, v: Value, like: Value | None = None):
        import tensorflow as tf

        if v.tensor is not None:
            return v.tensor
        c = v.const
        if like is not None and like.nhwc and c.ndim == 4:
            c = np.transpose(c, NCHW_TO_NHWC)
        return tf.constant(c)

    def _axis(self, axis: int, v: Value) -> int:
        if not v.nhwc:
            return axis
        axis = axis % 4
        return {0: 0, 1: 3, 2: 1, 3: 2}[axis]

    def _const(self, v: Value, what: str) -> np.ndarray:
        if v is None or v.const is None:
            raise ConversionError(f"{what} must be a constant")
        return v.const

    # -- ops ---------------------------------------------------------------------------------------

    def op_Constant(self, node, ins):
        from onnx import numpy_helper

        attrs = {a.name: a for a in node.attribute}
        if "value" not in attrs:
            raise ConversionError("Constant without a tensor value")
        return [Value(const=numpy_helper.to_array(attrs["value"].t))]

    def op_Identity(self, node, ins):
        return [ins[0]]

    def op_Conv(self, node, ins):
        import tensorflow as tf

        a = _attrs(node)
        x = ins[0]
        if not x.nhwc:
            raise ConversionError("Conv on a tensor that is not a 4-D activation")
        w = self._const(ins[1], "Conv weight")
        b = self._const(ins[2], "Conv bias") if len(ins) > 2 and ins[2] is not None else None
        kh, kw = w.shape[2:]
        strides = list(a.get("strides", [1, 1]))
        dil = list(a.get("dilations", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))  # top, left, bottom, right
        group = int(a.get("group", 1))
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
            raise ConversionError(f"Conv auto_pad {a['auto_pad']}")
        top, left, bottom, right = pads
        t = x.tensor
        same = (strides == [1, 1] and top == bottom == dil[0] * (kh - 1) // 2 and left == right == dil[1] * (kw - 1) // 2
                and kh % 2 == 1 and kw % 2 == 1)
        if same:
            padding = "SAME"
        else:
            if any(pads):
                t = tf.pad(t, [[0, 0], [top, bottom], [left, right], [0, 0]])
            padding = "VALID"
        out_ch, in_per_group = w.shape[:2]
        in_ch = in_per_group * group
        if group == 1:
            kernel = np.ascontiguousarray(np.transpose(w, (2, 3, 1, 0)), dtype=np.float32)  # H W I O
            y = tf.nn.conv2d(t, kernel, strides=[1, *strides, 1], padding=padding, dilations=[1, *dil, 1])
        elif group == in_ch and out_ch == in_ch and in_per_group == 1:
            kernel = np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1)), dtype=np.float32)  # H W C 1
            y = tf.raw_ops.DepthwiseConv2dNative(input=t, filter=kernel, strides=[1, *strides, 1], padding=padding,
                                                 dilations=[1, *dil, 1])
        else:
            raise ConversionError(f"grouped conv with group={group}, {in_ch} -> {out_ch} channels")
        if b is not None:
            y = tf.nn.bias_add(y, b.astype(np.float32))
        return [Value(y, nhwc=True)]

    def op_Clip(self, node, ins):
        import tensorflow as tf

        a = _attrs(node)
        lo = float(self._const(ins[1], "Clip min")) if len(ins) > 1 and ins[1] is not None else a.get("min")
        hi = float(self._const(ins[2], "Clip max")) if len(ins) > 2 and ins[2] is not None else a.get("max")
        t = ins[0].tensor
        if lo == 0.0 and hi == 6.0:
            return [Value(tf.nn.relu6(t), nhwc=ins[0].nhwc)]
        if lo is not None:
            t = tf.maximum(t, lo)
        if hi is not None:
            t = tf.minimum(t, hi)
        return [Value(t, nhwc=ins[0].nhwc)]

    def op_Relu(self, node, ins):
        import tensorflow as tf

        return [Value(tf.nn.relu(ins[0].tensor), nhwc=ins[0].nhwc)]

    def op_Sigmoid(self, node, ins):
        import tensorflow as tf

        return [Value(tf.math.sigmoid(ins[0].tensor), nhwc=ins[0].nhwc)]

    def op_Softmax(self, node, ins):
        import tensorflow as tf

        axis = self._axis(int(_attrs(node).get("axis", -1)), ins[0])
        return [Value(tf.nn.softmax(ins[0].tensor, axis=axis), nhwc=ins[0].nhwc)]

    def _binary(self, ins, fn, np_fn):
        x, y = ins
        if x.const is not None and y.const is not None:
            return [Value(const=np_fn(x.const, y.const))]
        like = x if x.nhwc else y
        return [Value(fn(self._tf(x, like), self._tf(y, like)), nhwc=x.nhwc or y.nhwc)]

    def op_Add(self, node, ins):
        import tensorflow as tf

        return self._binary(ins, tf.add, np.add)

    def op_Sub(self, node, ins):
        import tensorflow as tf

        return self._binary(ins, tf.subtract, np.subtract)

    def op_Mul(self, node, ins):
        import tensorflow as tf

        return self._binary(ins, tf.multiply, np.multiply)

    def op_Div(self, node, ins):
        import tensorflow as tf

        def np_div(a, b):
            return a // b if np.issubdtype(np.asarray(a).dtype, np.integer) else a / b

        def tf_div(a, b):
            return tf.math.floordiv(a, b) if a.dtype.is_integer else tf.math.divide(a, b)

        return self._binary(ins, tf_div, np_div)

    def op_Shape(self, node, ins):
        import tensorflow as tf

        x = ins[0]
        if x.const is not None:
            return [Value(const=np.asarray(x.const.shape, dtype=np.int64))]
        shape = tf.shape(x.tensor, out_type=tf.int64)
        if x.nhwc:
            shape = tf.gather(shape, [0, 3, 1, 2])  # answer in the ONNX (NCHW) order
        a = _attrs(node)
        if "start" in a or "end" in a:
            shape = shape[a.get("start", 0):a.get("end", None)]
        return [Value(shape)]

    def op_Gather(self, node, ins):
        import tensorflow as tf

        axis = int(_attrs(node).get("axis", 0))
        data, idx = ins
        if data.nhwc:
            raise ConversionError("Gather on an activation")
        if data.const is not None and idx.const is not None:
            return [Value(const=np.take(data.const, idx.const, axis=axis))]
        return [Value(tf.gather(self._tf(data), self._tf(idx), axis=axis))]

    def op_Unsqueeze(self, node, ins):
        import tensorflow as tf

        axes = _attrs(node).get("axes")
        if axes is None:
            axes = self._const(ins[1], "Unsqueeze axes").tolist()
        x = ins[0]
        if x.nhwc:
            raise ConversionError("Unsqueeze of an activation")
        if x.const is not None:
            return [Value(const=np.expand_dims(x.const, tuple(axes)))]
        t = x.tensor
        for ax in sorted(axes):
            t = tf.expand_dims(t, ax)
        return [Value(t)]

    def op_Concat(self, node, ins):
        import tensorflow as tf

        axis = int(_attrs(node).get("axis", 0))
        if all(v.const is not None for v in ins):
            return [Value(const=np.concatenate([v.const for v in ins], axis=axis))]
        nhwc = any(v.nhwc for v in ins)
        if nhwc:
            axis = {0: 0, 1: 3, 2: 1, 3: 2}[axis % 4]
            like = next(v for v in ins if v.nhwc)
            return [Value(tf.concat([self._tf(v, like) for v in ins], axis=axis), nhwc=True)]
        dtype = next(v.tensor.dtype for v in ins if v.tensor is not None)
        return [Value(tf.concat([tf.cast(self._tf(v), dtype) for v in ins], axis=axis))]

    def op_Slice(self, node, ins):
        x = ins[0]
        starts = self._const(ins[1], "Slice starts").tolist()
        ends = self._const(ins[2], "Slice ends").tolist()
        axes = self._const(ins[3], "Slice axes").tolist() if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = self._const(ins[4], "Slice steps").tolist() if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
        rank = 4 if x.nhwc else (x.const.ndim if x.const is not None else x.tensor.shape.rank)
        index = [slice(None)] * rank
        big = 2 ** 62
        for s, e, ax, st in zip(starts, ends, axes, steps):
            ax = self._axis(int(ax), x) if x.nhwc else int(ax) % rank
            index[ax] = slice(int(s), None if e >= big else int(e), int(st))
        if x.const is not None:
            return [Value(const=x.const[tuple(index)])]
        return [Value(x.tensor[tuple(index)], nhwc=x.nhwc)]

    def op_Cast(self, node, ins):
        import tensorflow as tf
        from onnx import helper

        to = helper.tensor_dtype_to_np_dtype(int(_attrs(node)["to"]))
        x = ins[0]
        if x.const is not None:
            return [Value(const=x.const.astype(to))]
        return [Value(tf.cast(x.tensor, tf.as_dtype(to)), nhwc=x.nhwc)]

    def op_Floor(self, node, ins):
        import tensorflow as tf

        x = ins[0]
        if x.const is not None:
            return [Value(const=np.floor(x.const))]
        return [Value(tf.math.floor(x.tensor), nhwc=x.nhwc)]

    def op_Resize(self, node, ins):
        import tensorflow as tf

        a = _attrs(node)
        x = ins[0]
        if not x.nhwc:
            raise ConversionError("Resize of a tensor that is not a 4-D activation")
        mode = a.get("mode", "nearest")
        ctm = a.get("coordinate_transformation_mode", "half_pixel")
        if int(a.get("antialias", 0)):
            raise ConversionError("Resize with antialias")
        scales = ins[2] if len(ins) > 2 else None
        sizes = ins[3] if len(ins) > 3 else None
        in_hw = tf.shape(x.tensor)[1:3]
        if sizes is not None and (sizes.tensor is not None or sizes.const is not None and sizes.const.size):
            size = tf.cast(self._tf(sizes), tf.int32)[2:4]
        elif scales is not None and scales.const is not None and scales.const.size:
            s = scales.const.astype(np.float32)
            if s[0] != 1 or s[1] != 1:
                raise ConversionError("Resize over the batch or channel axis")
            size = tf.cast(tf.math.floor(tf.cast(in_hw, tf.float32) * s[2:4]), tf.int32)
        else:
            raise ConversionError("Resize needs constant scales or sizes")
        if mode == "linear" and ctm in ("half_pixel", "pytorch_half_pixel"):
            y = tf.raw_ops.ResizeBilinear(images=x.tensor, size=size, align_corners=False, half_pixel_centers=True)
        elif mode == "linear" and ctm == "align_corners":
            y = tf.raw_ops.ResizeBilinear(images=x.tensor, size=size, align_corners=True, half_pixel_centers=False)
        elif mode == "nearest" and ctm == "asymmetric" and a.get("nearest_mode", "round_prefer_floor") == "floor":
            y = tf.raw_ops.ResizeNearestNeighbor(images=x.tensor, size=size, align_corners=False, half_pixel_centers=False)
        else:
            raise ConversionError(f"Resize mode {mode} / {ctm}")
        return [Value(y, nhwc=True)]

    OPS = ("Constant", "Identity", "Conv", "Clip", "Relu", "Sigmoid", "Softmax", "Add", "Sub", "Mul", "Div", "Shape",
           "Gather", "Unsqueeze", "Concat", "Slice", "Cast", "Floor", "Resize")

    # -- the function ------------------------------------------------------------------------------

    def __call__(self, image):
        """``image``: N x H x W x 3 float32 (NHWC) -> dict of NHWC outputs."""
        import tensorflow as tf

        env: dict[str, Value] = {name: Value(const=c) for name, c in self.consts.items()}
        env[self.input_name] = Value(image, nhwc=True)
        for node in self.nodes:
            ins = [env[name] if name else None for name in node.input]
            outs = getattr(self, f"op_{node.op_type}")(node, ins)
            for name, value in zip(node.output, outs):
                env[name] = value
        result = {}
        for onnx_name, name in zip(self.output_names, OUTPUT_NAMES):
            v = env[onnx_name]
            if not v.nhwc:
                raise ConversionError(f"output {onnx_name} is not a 4-D activation")
            result[name] = tf.identity(v.tensor, name=name)
        return result


def build_module(onnx_path: str | Path):
    import tensorflow as tf

    graph = OnnxGraphToTF(onnx_path)

    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=INPUT_NAME)])
        def serve(self, image):
            return graph(image)

    return Module()


# ----------------------------------------------------------------------------------------------------
# Checks and conversion
# ----------------------------------------------------------------------------------------------------


def tf_parity(saved_model_dir: Path, reference: Path) -> dict:
    """The SavedModel (loaded back) against PyTorch's outputs: max abs diff per output and image."""
    import tensorflow as tf

    loaded = tf.saved_model.load(str(saved_model_dir))
    fn = loaded.signatures["serving_default"]
    data = np.load(reference)
    count = int(data["count"])
    worst = dict.fromkeys(OUTPUT_NAMES, 0.0)
    per_image, latency = [], {}
    for i in range(count):
        x = np.ascontiguousarray(np.transpose(data[f"input_{i}"], NCHW_TO_NHWC))
        out = fn(**{INPUT_NAME: tf.constant(x)})
        key = f"{x.shape[1]}x{x.shape[2]}"
        if key not in latency:  # one more call, timed, after this size's first (which may trace)
            t0 = time.perf_counter()
            fn(**{INPUT_NAME: tf.constant(x)})
            latency[key] = round((time.perf_counter() - t0) * 1000, 2)
        diffs = {}
        for name in OUTPUT_NAMES:
            ref = np.transpose(data[f"{name}_{i}"], NCHW_TO_NHWC)
            got = out[name].numpy()
            if got.shape != ref.shape:
                raise ConversionError(f"{name}: TensorFlow shape {got.shape} != PyTorch's {ref.shape}")
            d = np.abs(got.astype(np.float64) - ref.astype(np.float64))
            diffs[name] = float("inf") if not np.all(np.isfinite(d)) else float(d.max(initial=0.0))
            worst[name] = max(worst[name], diffs[name])
        per_image.append({"index": i, "size": list(x.shape[1:3]), "max_abs_diff": diffs})
    return {"runtime": f"TensorFlow {tf.__version__} SavedModel (CPU): the graph that was converted",
            "latency_note": "one call after the first of each size",
            "max_abs_diff": max(worst.values()), "outputs": worst, "per_image": per_image, "latency_ms": latency}


def run_converter(saved_model_dir: Path, out_dir: Path, quantize: str | None) -> list[str]:
    """``tensorflowjs_converter`` (the CLI of this environment) on the SavedModel."""
    exe = Path(sys.executable).with_name("tensorflowjs_converter")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tensorflowjs.converters.converter"]
    cmd += ["--input_format=tf_saved_model", "--output_format=tfjs_graph_model",
            "--signature_name=serving_default", "--saved_model_tags=serve"]
    if quantize == "float16":
        cmd.append("--quantize_float16=*")
    elif quantize == "uint8":
        cmd.append("--quantize_uint8=*")
    elif quantize:
        raise ConversionError(f"quantize must be float16 or uint8, not {quantize!r}")
    cmd += [str(saved_model_dir), str(out_dir)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConversionError(f"tensorflowjs_converter failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return cmd


def output_mapping(model_json: Path) -> dict:
    """{"inputs": {"image": "image:0"}, "outputs": {"fg_prob": "Identity:0", ...}} from the converted
    model.json's signature (the converter renames the outputs; map them explicitly)."""
    doc = json.loads(model_json.read_text())
    signature = (doc.get("modelTopology") or {}).get("signature") or doc.get("signature") or {}
    if not signature:
        raise ConversionError("the converted model.json has no signature")

    def mapping(section: str, expected) -> dict:
        found = {}
        for key, info in (signature.get(section) or {}).items():
            node = info.get("name") or key
            base = key.split(":")[0]
            found[base] = node
        missing = [n for n in expected if n not in found]
        if missing:
            raise ConversionError(f"model.json signature {section} lacks {missing}: {sorted(found)}")
        return {n: found[n] for n in expected}

    return {"inputs": mapping("inputs", [INPUT_NAME]), "outputs": mapping("outputs", OUTPUT_NAMES),
            "format": doc.get("format"), "generated_by": doc.get("generatedBy"),
            "converted_by": doc.get("convertedBy")}


def convert(onnx_path: Path, out_dir: Path, reference: Path | None, quantize: str | None = None,
            work: Path | None = None) -> dict:
    import tensorflow as tf
    import tensorflowjs

    started = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(work or tempfile.mkdtemp(prefix="nailset-tfjs-"))
    saved = work / "saved_model"
    if saved.exists():
        shutil.rmtree(saved)
    module = build_module(onnx_path)
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve.get_concrete_function()})
    t_saved = time.perf_counter()
    parity = tf_parity(saved, reference) if reference else None
    cmd = run_converter(saved, out_dir, quantize)
    t_conv = time.perf_counter()
    mapping = output_mapping(out_dir / "model.json")
    ops = sorted({n.get("op") for n in json.loads((out_dir / "model.json").read_text())["modelTopology"].get("node", [])
                  if n.get("op")})
    report = {
        "input_node": mapping["inputs"][INPUT_NAME],
        "output_nodes": mapping["outputs"],
        "model_json": {k: mapping[k] for k in ("format", "generated_by", "converted_by")},
        "quantize": quantize,
        "converter": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd[:-2])),
        "graph_ops": ops,
        "tensorflow_parity": parity,
        "tools": {"tensorflow": tf.__version__, "tensorflowjs": tensorflowjs.__version__,
                  "numpy": np.__version__},
        "seconds": {"savedmodel": round(t_saved - started, 1), "convert": round(t_conv - t_saved, 1)},
    }
    (out_dir / REPORT_FILE).write_text(json.dumps(report, indent=2))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--onnx", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--reference", type=Path, help="npz: count, input_i, fg_prob_i, class_prob_i, field_i (NCHW)")
    parser.add_argument("--quantize", choices=["float16", "uint8"])
    parser.add_argument("--work", type=Path, help="folder for the SavedModel (default: a temporary one)")
    args = parser.parse_args(argv)
    try:
        report = convert(args.onnx, args.out, args.reference, args.quantize, args.work)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"ok": True, "output_nodes": report["output_nodes"],
                      "tensorflow_max_abs_diff": (report["tensorflow_parity"] or {}).get("max_abs_diff")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
