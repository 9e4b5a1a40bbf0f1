#!/usr/bin/env python
"""Export parity: the paper's cascade exported to ONNX, Core ML (FP32 and FP16) and TensorFlow.js, each
compared with PyTorch on real photos, with file sizes and latencies.

    .venv/bin/python bench/export_parity.py                       # full run, writes docs/benchmarks.md
    .venv/bin/python bench/export_parity.py --checkpoint best.pt  # a trained checkpoint instead of the stand-in
    .venv/bin/python bench/export_parity.py --formats onnx --no-docs

Every artifact goes through ``ml.export.pipeline.export_model`` (what the export job runs) into ``--out``
(default ``var/bench/export``): max absolute difference of every output (``fg_prob``, ``class_prob``,
``field``) against PyTorch (the model as trained, eval mode, float32) on ``--photos`` photos of
``../shared/data/nails-cc0/images``; latency of onnxruntime on the CPU, of the TensorFlow SavedModel that
was converted, and of TF.js in headless Chromium (cpu and webgl backends; WebGL runs on SwiftShader here,
a software GPU, so its latency says nothing of a phone's). Core ML is checked by executing the saved ML
program op by op with PyTorch kernels: Apple's runtime is not run (it does not exist on Linux), so there
is no Core ML latency.

Model: ``--checkpoint`` (ml.train) if given. Without one (this workplace has no trained full-size model),
a stand-in with the paper's architecture and size: cascade-55, fusion 320, width 1.0, encoders with the
ImageNet MobileNetV2 weights (``imagenet-tflite``), decoder at its initialisation, and the three heads'
weights scaled so that the logits span about +-10 on the photos as a trained model's do (FP16 error grows
with the magnitude of the values, so an untrained model's near-zero logits would flatter it).
Results go into the ``export`` section of ``docs/benchmarks.md`` (``--no-docs``: print only).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

FORMATS = {"onnx": ("onnx", {}), "coreml-fp32": ("coreml", {"precision": "fp32"}),
           "coreml-fp16": ("coreml", {"precision": "fp16"}), "tfjs": ("tfjs", {})}
LOGIT_SPAN = 10.0


def stand_in_model(photos, long_side: int):
    from ml.models.cascade import cascade_net
    from ml.export.photos import prepare_input

    torch.manual_seed(0)
    model = cascade_net("cascade-55").eval()
    x = torch.from_numpy(np.concatenate([prepare_input(p, (224, 288)) for p in photos[:2]]))
    with torch.no_grad():
        out = model(x)
        span = max(float(t.abs().max()) for t in (out.fg, out.cls))
        scale = LOGIT_SPAN / max(span, 1e-6)
        for head in (model.head.fg, model.head.cls, model.head.field):
            head.weight.mul_(scale)
            head.bias.mul_(scale)
        model.head.field.weight.div_(LOGIT_SPAN)  # the field stays near unit length
        model.head.field.bias.div_(LOGIT_SPAN)
    meta = {"config": {"val_size": long_side, "model": model.config.to_dict()}, "data": {}}
    return model, meta, f"stand-in: cascade-55 (fusion 320, width 1.0), ImageNet encoders, decoder untrained, heads scaled to logits of +-{LOGIT_SPAN:g}"


def machine() -> dict:
    """``benchdoc.machine_info`` with what this bench adds: torch, Chromium and the commit."""
    from benchdoc import git_commit, machine_info

    chromium = ""
    try:
        chromium = subprocess.run(["/usr/bin/chromium", "--version"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return {**machine_info(), "commit": git_commit(("ml/export", "bench/export_parity.py"), "ml/export or this script"),
            "torch": torch.__version__, "chromium": chromium}


def fmt_diff(v) -> str:
    return "-" if v is None else f"{v:.1e}"


def fmt_latency(latency: dict) -> str:
    return ", ".join(f"{size}: {ms:,.1f}" for size, ms in latency.items()) if latency else "-"


def build_section(r: dict) -> str:
    from benchdoc import markers

    start, end = markers("export")
    m = r["machine"]
    lines = [start, "## Export parity (`bench/export_parity.py`)", "",
             f"Measured {r['when']} in {r['seconds']:.0f} s with `{r['command']}` (commit {m['commit'] or '?'}).", ""]
    verdicts = [f"{k}: {'under' if v['passed'] else '**NOT under**'} its goal" for k, v in r["results"].items()]
    lines += ["**" + ("All artifacts meet their parity goals" if all(v["passed"] for v in r["results"].values())
                      else "Some artifact misses its parity goal") + "** (" + "; ".join(verdicts) + ").", ""]
    lines += ["### Set-up", "",
              f"- **Machine**: {m['nproc']} CPUs ({m['cpu']}); Python {m['python']}, torch {m['torch']}; {m['chromium']} "
              "(headless, WebGL on SwiftShader: a software rasteriser, so webgl latencies here are not a GPU's).",
              f"- **Background**: load average {m['load'][0]:.1f} when the run began and {r['load_end'][0]:.1f} when it "
              "ended (other processes share the 2 CPUs: latencies are upper bounds; the differences do not depend on it).",
              f"- **Model**: {r['model']}.",
              f"- **Photos**: {', '.join(r['photos'])} (real photos of `../shared/data/nails-cc0/images`, spread over the "
              "sorted list); each resized as the evaluation does (longer side, multiples of 32) or, for Core ML's fixed "
              "input, to exactly that size.",
              "- **Reference**: PyTorch, the model as trained (BN not folded), eval mode, float32, CPU. "
              "Difference = max |artifact - PyTorch| over every element of the output, every photo and every runtime.",
              "- **Core ML**: Apple's runtime was **not** run (it does not exist on Linux): the saved `.mlpackage` is "
              "loaded back and its ML program executed op by op with PyTorch kernels (`ml/export/coreml_interpreter.py`), "
              "FP16 programs with every intermediate rounded to fp16. No Core ML latency is reported.",
              "- **Latency**: batch 1, median of 5 (onnxruntime) or 3 (TF.js) runs after a warm-up; TF.js times include "
              "reading the outputs back (`dataSync`); the TensorFlow SavedModel time is one call after tracing.",
              "", "### Results", "",
              "| artifact | goal | fg_prob | class_prob | field | passed | size MB | runtimes checked | latency ms (input HxW: ms) | export s |",
              "| --- | ---: | ---: | ---: | ---: | :---: | ---: | --- | --- | ---: |"]
    for key, v in r["results"].items():
        rep = v["report"]
        runs = rep["runs"]
        checked = ", ".join(runs)
        lat = []
        for rk, run in runs.items():
            if run.get("latency_ms"):
                lat.append(f"{rk} {fmt_latency(run['latency_ms'])}")
        o = rep["outputs"]
        lines.append(f"| {key} | {rep['goal']:.0e} | {fmt_diff(o['fg_prob'])} | {fmt_diff(o['class_prob'])} | "
                     f"{fmt_diff(o['field'])} | {'yes' if v['passed'] else '**no**'} | {v['size_bytes'] / 1e6:.1f} | "
                     f"{checked} | {'; '.join(lat) or '- (not run on Apple hardware)'} | {rep.get('export_seconds', 0):.0f} |")
    lines += ["", "Per runtime (max abs diff over all outputs and photos):", "",
              "| artifact | runtime | max abs diff |", "| --- | --- | ---: |"]
    for key, v in r["results"].items():
        for rk, run in v["report"]["runs"].items():
            lines.append(f"| {key} | {run.get('runtime', rk)} | {fmt_diff(run.get('max_abs_diff'))} |")
    lines += ["", end, ""]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="a trained checkpoint (ml.train); default: the stand-in model")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of {', '.join(FORMATS)}")
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--long-side", type=int, default=480, help="parity input size (longer side), all formats")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "export"))
    parser.add_argument("--no-browser", action="store_true", help="TF.js: skip headless Chromium")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    from ml.data import eval_size_for
    from ml.export.photos import parity_photos
    from ml.export.pipeline import export_model

    started = time.perf_counter()
    photos = parity_photos(count=args.photos)
    if args.checkpoint:
        from ml.checkpoint import load_model

        model, meta = load_model(args.checkpoint)
        description = f"checkpoint `{args.checkpoint}` ({json.dumps((meta.get('config') or {}).get('model', {}))})"
    else:
        model, meta, description = stand_in_model(photos, args.long_side)
    fixed = eval_size_for(3, 4, args.long_side)
    out_root = Path(args.out)
    results = {}
    for key in [k.strip() for k in args.formats.split(",") if k.strip()]:
        fmt, options = FORMATS[key]
        out = out_root / key
        shutil.rmtree(out, ignore_errors=True)
        print(f"== {key}", flush=True)
        kwargs = dict(options)
        if fmt == "coreml":
            kwargs["size"] = fixed
        if fmt == "tfjs":
            kwargs["browser"] = False if args.no_browser else None
            kwargs["browser_repeats"] = 3
        document = export_model(model, fmt, out, meta=meta, model_version="bench", photos=photos,
                                parity_long_side=args.long_side, strict=False,
                                on_progress=lambda f, msg: print(f"   {f:4.0%} {msg}", flush=True), **kwargs)
        report = document["parity"]
        results[key] = {"passed": report["passed"], "size_bytes": document["size_bytes"], "report": report}
        print(f"   max abs diff {report['max_abs_diff']:.2e} (goal {report['goal']:.0e}): "
              f"{'passed' if report['passed'] else 'FAILED'}", flush=True)
    result = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "seconds": time.perf_counter() - started, "machine": machine(), "model": description,
              "photos": [p.name for p in photos], "results": results, "load_end": os.getloadavg(),
              "command": ".venv/bin/python bench/export_parity.py" + (" " + shlex.join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else "")}
    (out_root / "result.json").write_text(json.dumps(result, indent=1, default=str))
    section = build_section(result)
    print(section)
    if not args.no_docs:
        from benchdoc import write_section

        write_section("export", section)
    return result


if __name__ == "__main__":
    main()
