#!/usr/bin/env python
"""Model cost and CPU speed: the cascade (fusion 320 / 256 / 128, 55- and 43-layer) beside the U-Net on the
same MobileNetV2 encoder.

    .venv/bin/python bench/model_latency.py                  # full run (~6-10 min on 2 cores), writes docs
    .venv/bin/python bench/model_latency.py --runs 5 --no-docs --no-train   # quick check

What it measures (every number comes from this run; nothing is hard-coded):

1. parameters and multiply-adds (MACs: every Conv2d's output elements x in-channels/groups x kernel area,
   counted with forward hooks on the eval-mode model; 1 MAC = 2 FLOPs) at 288, 352, 480 px square and at
   360 x 480 and 480 x 640 (H x W), plus the share of each part of the cascade;
2. the CPU's fp32 convolution peak: the best GFLOP/s of a few large 3x3 convolutions with
   ``--threads`` threads (PyTorch / oneDNN, channels_last);
3. inference latency, batch 1, ``--threads`` threads (``torch.set_num_threads`` / ORT intra-op threads,
   1 inter-op thread), median of ``--runs`` runs after ``--warmup`` runs, at 360 x 480 and 480 x 640:
   PyTorch eager on the inference copy (BN folded into the convs, channels_last, ``torch.inference_mode``)
   and ONNX Runtime (the folded model exported with the TorchScript exporter, opset 17, all graph
   optimisations), every model in the same process one after the other; each latency is also given as a
   ratio of the compute bound (FLOPs / conv peak);
4. where the time of the paper's cascade goes: wall time per part (forward hooks, eager);
5. training throughput (images/s) at 336 x 336 crops, batch ``--train-batch``: forward (all output scales),
   the loss (LMP), backward and an AdamW step, ``--threads`` threads.

The weights are random (latency does not depend on them); the cascade and the U-Net use the default
pretrained source's architecture (TFLite: TF "SAME" padding, which adds explicit pads before stride-2 convs).
Results go into the ``model_latency`` section of ``docs/benchmarks.md`` (``--no-docs``: print only).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import os
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ml.models.config import ModelConfig  # noqa: E402
from ml.models.inference import inference_model  # noqa: E402
from ml.models.registry import build_model  # noqa: E402
from ml.losses import CascadeLoss  # noqa: E402

from bench.benchdoc import DOC, git_commit, machine_info, markers, write_section  # noqa: E402

SECTION_START, SECTION_END = markers("model_latency")
GOAL_MS = 40.0
GOAL_SPEEDUP = 2.5
SQUARE_SIZES = (288, 352, 480)
FRAME_SIZES = ((360, 480), (480, 640))  # H x W

MODELS = {
    "cascade-55 f320": ModelConfig(),
    "cascade-55 f256": ModelConfig(fusion_width=256),
    "cascade-55 f128": ModelConfig(fusion_width=128),
    "cascade-55 f320, PyTorch padding": ModelConfig(tf_padding=False),
    "cascade-43 f320": ModelConfig(depth=43),
    "baseline-55 f320": ModelConfig(arch="baseline"),
    "U-Net (MobileNetV2)": ModelConfig(arch="unet"),
}
PAPER = "cascade-55 f320"
#: Cascades that could become the default preset (issue #17): their goals get a line of their own.
CANDIDATES = ("cascade-55 f256", "cascade-55 f128")
UNET = "U-Net (MobileNetV2)"


# --------------------------------------------------------------------------------------------------
# Counting
# --------------------------------------------------------------------------------------------------


def count_macs(model: nn.Module, h: int, w: int) -> tuple[int, dict[str, int]]:
    """Total conv MACs of one eval forward at h x w, and MACs per top-level child module."""
    per_module: dict[nn.Module, int] = {}

    def hook(module, args, out):
        k = module.kernel_size[0] * module.kernel_size[1]
        per_module[module] = per_module.get(module, 0) + out.numel() // out.shape[0] * (module.in_channels // module.groups) * k

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    model.eval()
    with torch.inference_mode():
        model(torch.rand(1, 3, h, w))
    for handle in handles:
        handle.remove()
    parts: dict[str, int] = {}
    for name, child in model.named_children():
        ids = {id(m) for m in child.modules()}
        parts[name] = sum(v for m, v in per_module.items() if id(m) in ids)
    return sum(per_module.values()), parts


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


def conv_peak(threads: int, runs: int = 5) -> dict:
    """Best fp32 GFLOP/s of large 3x3 convolutions (channels_last, oneDNN)."""
    torch.set_num_threads(threads)
    best = {"gflops": 0.0}
    for c, s in ((256, 64), (512, 32), (320, 56)):
        conv = nn.Conv2d(c, c, 3, padding=1, bias=False).eval().to(memory_format=torch.channels_last)
        x = torch.rand(1, c, s, s).contiguous(memory_format=torch.channels_last)
        flops = 2 * c * c * 9 * s * s
        with torch.inference_mode():
            for _ in range(2):
                conv(x)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                conv(x)
                times.append(time.perf_counter() - t0)
        g = flops / min(times) / 1e9
        if g > best["gflops"]:
            best = {"gflops": g, "shape": f"{c}->{c} 3x3 on {s}x{s}"}
    return best


def time_eager(models: dict[str, nn.Module], h: int, w: int, runs: int, warmup: int) -> dict[str, list[float]]:
    """Per model, ``runs`` wall times (ms) of the inference copy; the models take turns run by run, so
    that a change of load on the (shared) machine hits all of them alike."""
    fast = {name: inference_model(model) for name, model in models.items()}
    x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    times: dict[str, list[float]] = {name: [] for name in fast}
    with torch.inference_mode():
        for net in fast.values():
            for _ in range(warmup):
                net(x)
        for _ in range(runs):
            for name, net in fast.items():
                t0 = time.perf_counter()
                net(x)
                times[name].append((time.perf_counter() - t0) * 1000)
    return times


def export_onnx(model: nn.Module, h: int, w: int) -> bytes:
    fast = inference_model(model, channels_last=False)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(fast, (torch.rand(1, 3, h, w),), buffer, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["fg", "cls", "field"])
    return buffer.getvalue()


def time_ort(model: nn.Module, h: int, w: int, runs: int, warmup: int, threads: int) -> list[float]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(export_onnx(model, h, w), opts, providers=["CPUExecutionProvider"])
    x = np.random.rand(1, 3, h, w).astype(np.float32)
    for _ in range(warmup):
        session.run(None, {"image": x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, {"image": x})
        times.append((time.perf_counter() - t0) * 1000)
    return times


def part_times(model: nn.Module, h: int, w: int, runs: int) -> dict[str, float]:
    """Wall ms per top-level part of the inference copy (eager) in the fastest of ``runs`` runs (a
    consistent split of one run; the machine is shared); 'other' = the rest of forward (normalisation,
    the x2 downsample, the upsamplings between parts). The low encoder runs through ``forward_stages``,
    so its stages are timed one by one."""
    fast = inference_model(model)
    x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    current: dict[str, float] = {}
    starts: dict[int, float] = {}
    handles = []

    def timed(module: nn.Module, name: str) -> None:
        def pre(m, a):
            starts[id(m)] = time.perf_counter()

        def post(m, a, o):
            current[name] = current.get(name, 0.0) + time.perf_counter() - starts[id(m)]

        handles.append(module.register_forward_pre_hook(pre))
        handles.append(module.register_forward_hook(post))

    for name, child in fast.named_children():
        if name == "low" and hasattr(child, "stages"):
            for stage in child.stages:
                timed(stage, name)
        else:
            timed(child, name)
    best: dict[str, float] = {"total": math.inf}
    with torch.inference_mode():
        fast(x)
        for _ in range(runs):
            current.clear()
            t0 = time.perf_counter()
            fast(x)
            total = time.perf_counter() - t0
            if total < best["total"]:
                best = dict(current, total=total)
    for handle in handles:
        handle.remove()
    result = {name: v * 1000 for name, v in best.items() if name != "total"}
    result["other"] = best["total"] * 1000 - sum(result.values())
    result["total"] = best["total"] * 1000
    return result


def train_throughput(config: ModelConfig, size: int, batch: int, steps: int, threads: int) -> dict[str, float]:
    """Images per second of training steps: from the median step and from the fastest step."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(config, load_pretrained=False).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = CascadeLoss()
    x = torch.rand(batch, 3, size, size)
    fg = (torch.rand(batch, size, size) < 0.05).long()
    targets = {"image": x, "fg": fg, "cls": torch.where(fg > 0, 3, 0), "field": torch.zeros(batch, 2, size, size),
               "field_mask": fg > 0, "ignore": torch.zeros(batch, size, size, dtype=torch.bool)}
    targets["field"][:, 0][fg > 0] = 1.0

    def step():
        loss, _ = criterion(model(x), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"median": batch / statistics.median(times), "best": batch / min(times)}


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def machine() -> dict:
    """``benchdoc.machine_info`` with what this bench adds: library versions and the commit."""
    versions = {"torch": torch.__version__, "numpy": np.__version__}
    try:
        import onnx
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
        versions["onnx"] = onnx.__version__
    except ImportError:
        pass
    return {**machine_info(), "versions": versions,
            "commit": git_commit(("ml", "bench/model_latency.py"), "ml/ or this script")}


def fmt_ms(v):
    return "-" if v is None else f"{v:.1f}"


def build_section(r: dict) -> str:
    a = r["args"]
    info = r["machine"]
    peak = r["peak"]["gflops"]
    hw = "x".join(map(str, FRAME_SIZES[0]))
    lines = [SECTION_START, "## Model cost and CPU latency (`bench/model_latency.py`)", ""]
    lines.append(f"Measured {r['date']} in {r['total_s']:.0f} s with `{r['command']}`"
                 + (f" (commit {info['commit']})" if info["commit"] else "") + "; every figure below comes from that "
                 "run (the command of each part is the same script; `--help` lists the options).")
    lines.append("")
    paper = r["latency"].get(PAPER, {}).get(hw)
    unet = r["latency"].get(UNET, {}).get(hw)
    if paper:
        best = min(v for v in (paper["eager_min"], paper.get("ort_min")) if v is not None)
        ok_ms = best <= GOAL_MS
        lines.append(f"**Goal <= {GOAL_MS:.0f} ms at 360x480 (H x W) on {a['threads']} threads with the 320-wide fusion: "
                     f"{'met' if ok_ms else 'NOT met'}** ({best:.1f} ms, the faster runtime's minimum; eager "
                     f"{fmt_ms(paper['eager_min'])}, ONNX Runtime {fmt_ms(paper.get('ort_min'))} ms; medians "
                     f"{fmt_ms(paper['eager'])} / {fmt_ms(paper.get('ort'))} ms).")
        if unet:
            ub = min(v for v in (unet["eager_min"], unet.get("ort_min")) if v is not None)
            speedup = ub / best
            lines.append(f"**Goal >= {GOAL_SPEEDUP}x faster than the U-Net: {'met' if speedup >= GOAL_SPEEDUP else 'NOT met'}** "
                         f"({speedup:.2f}x: U-Net {ub:.1f} ms, each with its faster runtime, same run). Accuracy at equal "
                         "budget: the ablation sections (`bench/ablation.py`), where the U-Net scored higher.")
            others = [name for name in r["latency"] if name not in (PAPER, UNET) and name in CANDIDATES]
            if others:
                lines += ["", f"The same goals for the candidate defaults (issue #17), judged alike (same run, "
                              "faster runtime's minimum):", "",
                          f"| model | {hw} (ms) | <= {GOAL_MS:.0f} ms | x faster than the U-Net | >= {GOAL_SPEEDUP}x |",
                          "| --- | ---: | --- | ---: | --- |"]
                for name in others:
                    row = r["latency"][name][hw]
                    ms = min(v for v in (row["eager_min"], row.get("ort_min")) if v is not None)
                    lines.append(f"| {name} | {ms:.1f} | {'met' if ms <= GOAL_MS else 'NOT met'} | {ub / ms:.2f} | "
                                 f"{'met' if ub / ms >= GOAL_SPEEDUP else 'NOT met'} |")
        lines.append("")
    lines += ["### Set-up", ""]
    lines.append(f"- **Machine**: {info['nproc']} CPUs ({info['cpu']}), shared: load average "
                 f"{info['load'][0]:.1f} / {info['load'][1]:.1f} / {info['load'][2]:.1f} (1 / 5 / 15 min) at the start, "
                 f"{r['load_end'][0]:.1f} at the end (other work on the machine inflates the timings).")
    lines.append("- **Software**: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + f", Python {info['python']}.")
    lines.append(f"- **Timing**: batch 1, {a['threads']} threads, median of {a['runs']} runs after {a['warmup']} warm-up "
                 "runs; random weights; PyTorch eager = `ml.models.inference.inference_model` (BN folded, channels_last, "
                 "`torch.inference_mode`); ONNX Runtime = the folded model exported by `torch.onnx.export(dynamo=False, "
                 "opset_version=17)`, CPU provider, `intra_op_num_threads` = threads, sequential, ORT_ENABLE_ALL.")
    lines.append(f"- **Conv peak**: {peak:.0f} GFLOP/s fp32 ({r['peak']['shape']}, channels_last, best of 5); "
                 "\"/ bound\" = the minimum latency / (FLOPs / peak), 1.0 would be compute-bound at that peak. "
                 "\"PyTorch padding\" = `tf_padding=False` (what torchvision weights use); the inference copy merges "
                 "TF \"SAME\" pads into their convs exactly (`ml.models.inference.remove_tf_padding`), so the padding no longer "
                 "costs time.")
    lines.append("- **MACs**: Conv2d multiply-adds counted with forward hooks (1 MAC = 2 FLOPs); the 1x1 heads of the "
                 "final output run at H/8 before the x8 upsample (exact; see docs/model.md). Upsampling, additions and "
                 "pads are not counted.")
    lines += ["", "### Parameters and multiply-adds (GMAC)", ""]
    sizes = [f"{s}x{s}" for s in SQUARE_SIZES] + ["x".join(map(str, f)) for f in FRAME_SIZES]
    lines.append("| model | params (M) | " + " | ".join(sizes) + " |")
    lines.append("| --- | --- | " + " | ".join("---" for _ in sizes) + " |")
    for name, row in r["cost"].items():
        lines.append(f"| {name} | {row['params'] / 1e6:.2f} | " + " | ".join(f"{row['macs'][s] / 1e9:.2f}" for s in sizes) + " |")
    parts = r.get("parts_macs")
    if parts:
        total = sum(parts.values())
        lines += ["", f"Multiply-adds of the paper's cascade (fusion 320) at {hw}, by part: "
                  + ", ".join(f"{k} {v / 1e9:.2f} G ({100 * v / total:.0f} %)" for k, v in parts.items() if v) + "."]
    lines += ["", f"### Inference latency, batch 1, {a['threads']} threads (ms)", ""]
    lines.append("Median (min) of the runs. The machine is shared, so the minimum is the better estimate of an "
                 "unloaded machine; the goals above are judged on it, the medians show what the load did.")
    lines.append("")
    lines.append("| model | H x W | GMAC | eager | ONNX Runtime | compute bound | eager / bound | ORT / bound |")
    lines.append("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, per_size in r["latency"].items():
        for size, row in per_size.items():
            bound = 2 * row["macs"] / (peak * 1e9) * 1000
            lines.append(f"| {name} | {size} | {row['macs'] / 1e9:.2f} | {fmt_ms(row['eager'])} ({fmt_ms(row['eager_min'])}) | "
                         f"{fmt_ms(row.get('ort'))} ({fmt_ms(row.get('ort_min'))}) | {bound:.1f} | "
                         f"{row['eager_min'] / bound:.1f} | " + (f"{row['ort_min'] / bound:.1f}" if row.get("ort") else "-") + " |")
    pt = r.get("part_times")
    if pt:
        lines += ["", f"Where the eager time of the paper's cascade goes at {hw} (ms per part in the fastest of "
                  f"{a['runs']} runs, forward hooks; 'other' = normalisation, x2 downsample, upsamplings between "
                  "parts): " + ", ".join(f"{k} {v:.1f}" for k, v in pt.items() if k != "total")
                  + f"; total {pt['total']:.1f} ms."]
    tr = r.get("train")
    if tr:
        lines += ["", f"### Training throughput, 336x336 crops, batch {a['train_batch']}, {a['threads']} threads", ""]
        lines.append("Forward with every output scale, LMP loss, backward, AdamW step, random init; images per "
                     f"second from the median and from the fastest of {a['train_steps']} timed steps (after one "
                     "warm-up step).")
        lines.append("")
        lines.append("| model | images/s (median step) | images/s (fastest step) | s per image (fastest) |")
        lines.append("| --- | --- | --- | --- |")
        for name, ips in tr.items():
            lines.append(f"| {name} | {ips['median']:.2f} | {ips['best']:.2f} | {1 / ips['best']:.2f} |")
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--models", nargs="*", default=list(MODELS), help="subset of: " + ", ".join(MODELS))
    parser.add_argument("--no-ort", action="store_true", help="skip ONNX Runtime")
    parser.add_argument("--no-train", action="store_true", help="skip the training throughput")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--train-models", nargs="*", default=[PAPER, "cascade-55 f128", UNET])
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--wait-idle", type=float, default=300.0,
                        help="first wait up to this many seconds for the 1-minute load average to drop under a "
                             "quarter of the CPUs (the machine is shared; timings under load are meaningless)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait_idle
    while os.getloadavg()[0] > 0.25 * (os.cpu_count() or 1) and time.monotonic() < deadline:
        time.sleep(5)
    started = time.monotonic()
    command = "python bench/model_latency.py" + ("" if argv is None and len(sys.argv) == 1 else " " + shlex.join(sys.argv[1:] if argv is None else argv))
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    report = {"args": vars(args), "command": command, "machine": machine(), "date": dt.date.today().isoformat(),
              "cost": {}, "latency": {}}

    print(f"machine: {report['machine']}", flush=True)
    report["peak"] = conv_peak(args.threads)
    print(f"conv peak: {report['peak']}", flush=True)

    sizes = [(s, s) for s in SQUARE_SIZES] + list(FRAME_SIZES)
    models = {name: build_model(MODELS[name], load_pretrained=False).eval() for name in args.models}
    for name, model in models.items():
        row = {"params": params(model), "macs": {}}
        for h, w in sizes:
            row["macs"][f"{h}x{w}"], parts = count_macs(model, h, w)
            if name == PAPER and (h, w) == FRAME_SIZES[0]:
                report["parts_macs"] = parts
        report["cost"][name] = row
        print(f"{name}: {row['params'] / 1e6:.2f} M params, " + ", ".join(f"{k} {v / 1e9:.2f}" for k, v in row["macs"].items()), flush=True)

    for h, w in FRAME_SIZES:
        key = f"{h}x{w}"
        torch.set_num_threads(args.threads)
        eager = time_eager(models, h, w, args.runs, args.warmup)
        for name, model in models.items():
            row = {"macs": report["cost"][name]["macs"][key], "eager": statistics.median(eager[name]),
                   "eager_min": min(eager[name])}
            if not args.no_ort:
                ort_times = time_ort(model, h, w, args.runs, args.warmup, args.threads)
                row["ort"], row["ort_min"] = statistics.median(ort_times), min(ort_times)
            report["latency"].setdefault(name, {})[key] = row
            print(f"{name} {key}: eager {row['eager']:.1f} (min {row['eager_min']:.1f}) ms, ORT {fmt_ms(row.get('ort'))} "
                  f"(min {fmt_ms(row.get('ort_min'))}) ms", flush=True)

    if PAPER in models:
        torch.set_num_threads(args.threads)
        report["part_times"] = part_times(models[PAPER], *FRAME_SIZES[0], args.runs)
        print(f"part times: {report['part_times']}", flush=True)

    if not args.no_train:
        report["train"] = {}
        for name in args.train_models:
            ips = train_throughput(MODELS[name], 336, args.train_batch, args.train_steps, args.threads)
            report["train"][name] = ips
            print(f"train {name}: {ips['median']:.2f} images/s (fastest step {ips['best']:.2f})", flush=True)

    report["total_s"] = time.monotonic() - started
    report["load_end"] = os.getloadavg()
    section = build_section(report)
    print()
    print(section)
    if not args.no_docs:
        write_section("model_latency", section)
        print(f"wrote {DOC.relative_to(ROOT)}")
    return report


if __name__ == "__main__":
    main()
