"""Participant-grouped k-fold cross-validation of the ablation rows on real photos (issue #17).

    python bench/cv.py [--folds 5] [--rows baseline,lmp,cascade,unet] [--epochs N] [--steps S] [--size 224]
                       [--select last,ema,best-inner-val] [--seed 0] [--tta flip] [--json docs/results/cv-cpu.json]
                       [--section cv-cpu]
    python bench/cv.py --from-json run.json --section cv-gpu     # write a run made elsewhere (the GPU machine)
    python bench/cv.py --latency-only --export E ... --json lat.json   # latency apart (a quiet moment), then
    python bench/cv.py --from-json run.json lat.json                    # one table: the later run's latency wins

1. Builds the masks export of ``--source`` (default ``../shared/data/nails-cc0``) with the ablation bench's
   ``build_export`` (the platform's COCO import, geometry validation, masks export; its train/val/test split
   is not used here), or takes ``--export``. ``--labels complete`` merges the project's fingers and base/tip
   (``curation/demo/nails-cc0-labels.json``) into the polygons first, so the class and direction heads learn.
2. Deals the participants into ``--folds`` folds balanced by photo count (``ml.cross_validation``); for each
   fold and each row (``ml.ablation``, short names in ``ml.cross_validation.ROW_ALIASES``) trains the same
   budget with ``ml.train.train`` and scores the fold's held-out participants at full resolution after
   every epoch (each photo run at the model's input size, ``--val-size``, as the platform predicts; with
   ``--max-side`` at its own size capped there, the protocol before 2026-12-05; scored at the photo's own
   size). Every selection
   strategy in ``--select`` is judged on that same run: the last epoch, the EMA of the epoch-end weights, the
   best epoch on the fold's inner val participants; the best held-out epoch ("oracle") measures the gap.
   ``--tta flip``: each strategy's model is also scored with flip test-time augmentation (``ml.tta``; the same
   weights, no extra training), and the table gets its rows, the paired gain per fold and the folds it wins.
3. Measures each row's latency in ONNX Runtime at 360x480 and 480x640 (``bench/model_latency.py``'s
   ``time_ort``, ``--threads`` threads) in the same run; with ``--tta flip`` also the flip model at 360x480, the
   image and its mirror as a batch of 2 and as two runs, in turns with the plain model.
4. Writes the raw results (per image, per epoch, per fold) to ``--json`` after every fold and row, and the
   table to the ``--section`` section of ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdoc import (  # noqa: E402
    fmt,
    git_commit,
    loadavg,
    log,
    machine_info,
    markers,
    wait_for_quiet,
    write_section,
)

DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "nails-cc0"
LATENCY_SIZES = ((360, 480), (480, 640))  # H x W


def row_config(label: str, args):
    """The row's training config: the preset with the row's overrides and the bench's budget."""
    from ml.ablation import row_overrides
    from ml.train import train_config
    from ml.train_presets import bench_warmup_steps

    overrides = row_overrides(label)
    if args.size:
        overrides["augment"] = {"crop_size": args.size}
    if args.base_long_side:
        overrides.setdefault("augment", {})["base_long_side"] = args.base_long_side
    if args.aux_weight is not None:
        overrides["loss"] = {**overrides.get("loss", {}), "aux_weight": args.aux_weight}
    if args.iou_weight:
        overrides["loss"] = {**overrides.get("loss", {}), "iou_weight": args.iou_weight}
    return train_config(args.preset, **overrides, epochs=args.epochs, batch_size=args.batch,
                        steps_per_epoch=args.steps, patience=10**6, device=args.device,
                        seed=args.seed if args.train_seed is None else args.train_seed,
                        num_workers=args.workers, cache_data=True, val_size=args.val_size,
                        warmup_steps=bench_warmup_steps(args.epochs, args.steps),
                        **({"lr": args.lr} if args.lr else {}), **({"cpu_amp": True} if args.cpu_amp else {}),
                        **({"channels_last": args.channels_last} if getattr(args, "channels_last", None) is not None
                           else {}))


def precision_note(cpu_amp: bool, native_bf16: bool) -> str:
    """What the machine line adds about a CPU run's precision: nothing for float32 (no --cpu-amp)."""
    if not cpu_amp:
        return ""
    return ", bfloat16 native" if native_bf16 else ", no native bfloat16 (--cpu-amp trains in float32)"


def recorded_args(recorded: dict, device: str = "cpu") -> argparse.Namespace:
    """What :func:`row_config` reads, from the ``args`` a run wrote into its JSON: its rows' configs again
    (the benches that score a run's kept checkpoints build its models from them), on ``device``."""
    return argparse.Namespace(preset=recorded["preset"], size=recorded["crop"],
                              base_long_side=recorded.get("base_long_side"), aux_weight=recorded.get("aux_weight"),
                              iou_weight=recorded.get("iou_weight"), cpu_amp=recorded.get("cpu_amp", False),
                              channels_last=recorded.get("channels_last", False),
                              epochs=recorded["epochs"], batch=recorded["batch"], steps=recorded["steps"],
                              device=device, seed=recorded["seed"], train_seed=recorded.get("train_seed"), workers=0,
                              val_size=recorded["val_size"], lr=recorded.get("lr"))


def fold_run_dir(work: Path, fold: int, label: str) -> Path:
    """Where fold ``fold`` of row ``label`` trains (``run/last.pt`` in it is kept with --keep-checkpoints)."""
    slug = "".join(c if c.isalnum() else "-" for c in label).strip("-")
    return work / "runs" / f"fold{fold}-{slug}"


def export_summary(export: Path) -> dict:
    from dataset.formats.masks import read_masks_manifest

    images = read_masks_manifest(export)["images"]
    return {"images": len(images), "participants": len({e["participant"] for e in images}),
            "nails": sum(e["nails"] for e in images),
            "largest_participant": max(sum(1 for e in images if e["participant"] == p)
                                       for p in {e["participant"] for e in images})}


def latency(label: str, args) -> dict:
    """ONNX Runtime median and minimum ms per frame of the row's model at each of ``LATENCY_SIZES``; with
    ``--tta flip`` also the flip-TTA model (``ml.tta.FlipTTA``, flip and average in the graph) at the first
    size, the image and its mirror as a batch of 2 (``"360x480 flip batch"``) and as two runs
    (``"360x480 flip runs"``), timed in turns with the plain model so that all three see the same load."""
    from bench.model_latency import time_ort
    from ml.models.registry import build_model
    from ml.tta import with_tta

    model = build_model(row_config(label, args).model, load_pretrained=False).eval()
    out = {}
    for i, (h, w) in enumerate(LATENCY_SIZES):
        variants = {f"{h}x{w}": model}
        if i == 0 and "flip" in args.tta_modes:
            variants[f"{h}x{w} flip batch"] = with_tta(model, "flip", batched=True)
            variants[f"{h}x{w} flip runs"] = with_tta(model, "flip", batched=False)
        times: dict[str, list[float]] = {key: [] for key in variants}
        for _ in range(2):  # two turns each, so a change of load reaches every variant
            for key, net in variants.items():
                times[key] += time_ort(net, h, w, args.latency_runs // 2, 3, args.threads)
        for key, values in times.items():
            out[key] = {"median": statistics.median(values), "min": min(values)}
    return out


def pct(summary: dict | None, key: str = "miou") -> str:
    value = (summary or {}).get(key) or {}
    if value.get("mean") is None:
        return "-"
    sd = value.get("sd")
    return f"{100 * value['mean']:.1f}" + (f" ± {100 * sd:.1f}" if sd is not None else "")


def section(report: dict, name: str) -> str:
    """The doc section ``name`` (markers included) of a run's report."""
    from ml.cross_validation import SELECTIONS, summarize

    args, export, machine = report["args"], report["export"], report["machine"]
    selections = [s for s in SELECTIONS if s in args["select"]]
    rows = list(dict.fromkeys(r["row"] for r in report["results"]))
    by_row = {row: [r for r in report["results"] if r["row"] == row] for row in rows}
    folds = report["folds"]
    start, end = markers(name)
    cpu = not machine["device"].startswith("cuda")
    lines = [
        start,
        f"## Cross-validation on nails-cc0, {report['title']} (`bench/cv.py`)",
        "",
        f"Measured {report['date']} in {fmt(report['seconds'] / 60)} min with `{report['command']}` "
        f"(commit {report['commit']}); every figure below comes from that run (several commands: one table)."
        + (" **A reduced CPU budget** (small crops, few steps): the figures rank rows and selection strategies "
           "under that budget; they are not the models' accuracy after a full training." if cpu else ""),
        "",
        "### Set-up",
        "",
        f"- **Data**: `../shared/data/nails-cc0` ({export['images']} photos, {export['nails']} nails, "
        f"{export['participants']} participants, the largest with {export['largest_participant']} photos"
        + {"polygons": "; nail polygons only, so only the nail/background heads learn",
           "complete": "; with the project's fingers and base/tip (`curation/demo/nails-cc0-labels.json`), so the "
                       "class and direction heads learn too"}.get(args.get("labels"), "")
        + ") in "
        f"{len(folds)} participant-grouped folds (`ml.cross_validation.participant_folds`, seed {args['seed']}): "
        f"held-out photos per fold {' / '.join(str(len(f['test'])) for f in folds)}; no participant on both "
        "sides of a fold. Inner val (for `best-inner-val`) per fold: "
        f"{' / '.join(str(len(f['inner_val'])) for f in folds)} photos"
        + (", held out of training for every strategy (one shared run per fold and row)."
           if "best-inner-val" in selections else " (not used: every strategy trains on all the fold's photos)."),
        f"- **Budget (every row, every fold the same)**: preset `{args['preset']}` with {args['crop']}x{args['crop']} "
        "random crops"
        + (f" (each photo first scaled to long side {args['base_long_side']}, not the preset's)"
           if args.get("base_long_side") else "")
        + f", {args['epochs']} epochs x {args['steps']} steps x batch {args['batch']} "
        f"(= {args['epochs'] * args['steps'] * args['batch']} crops), AdamW"
        + (f" at learning rate {args['lr']:g} (not the preset's)" if args.get("lr") else "") + ", poly schedule"
        + (f", the coarse outputs' loss (deep supervision) weighted {args['aux_weight']:g} (not the preset's)"
           if args.get("aux_weight") is not None else "")
        + (f", plus the Lovasz-softmax IoU loss of the nail/background output weighted {args['iou_weight']:g} "
           "(`ml.losses.lovasz_iou`, not the preset's)" if args.get("iou_weight") else "")
        + (", in bfloat16 autocast on the CPU (`TrainConfig.cpu_amp`; scored in float32)" if args.get("cpu_amp") else "")
        + (", weights and batches in channels-last (NHWC) memory (`TrainConfig.channels_last`)"
           if args.get("channels_last") else "")
        + ", pretrained "
        f"MobileNetV2 encoders, training seed {args.get('train_seed', args['seed'])}; inner val at long side {args['val_size'] or args.get('input_side')} "
        "after every epoch.",
        "- **Scoring**: the fold's held-out photos at full resolution: "
        + (f"the input's long side is the photo's own, capped at {args['max_side']} (multiples of 32)"
           if args.get("max_side") else
           f"each photo resized so its long side is {args.get('input_side')}, the model's input size (its "
           "`TrainConfig.eval_size`, what `ml.predict.Predictor` runs it at on the platform)")
        + ", the prediction resized back and compared with the labels "
        "at the photo's own size (`ml.evaluate.FullResScorer`). Binary mIoU = mean of nail and background IoU "
        "from the fold's pixel counts; per-nail IoU = mean over labelled nails of each nail's IoU with the "
        "predicted nail pixels nearest to it. Mean ± sd over the folds; per-image scores are in the JSON.",
        "- **Checkpoint selection**, all judged on the same training run: " + "; ".join(
            {"last": "`last` = the fixed schedule's last epoch",
             "ema": f"`ema` = exponential moving average of the epoch-end weights (decay {args['ema_decay']}, BN "
                    "statistics averaged alike)",
             "best-inner-val": "`best-inner-val` = the epoch with the best inner-val binary mIoU"}[s]
            for s in selections)
        + ". Gap = the best held-out epoch's mIoU (an oracle no strategy can know) minus the strategy's.",
        f"- **Machine**: {machine['where']}; torch {machine['torch']}, device `{machine['device']}`, load average "
        f"{machine.get('load', 'n/a')} at the start (other work shared the machine)"
        + (f"; {machine['parallel']}" if machine.get("parallel") else "") + ".",
        "",
        "### Held-out accuracy (%, mean ± sd over folds)",
        "",
        "| model | selection | binary mIoU | nail IoU | per-nail IoU | gap to best epoch | mIoU per fold | epochs picked |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    steadiness = {s: [] for s in selections}
    ttas = args.get("tta") or []
    for row in rows:
        for tta in [None, *ttas]:
            for strategy in selections:
                s = summarize(by_row[row], strategy, tta)
                if tta is None:
                    steadiness[strategy].append(s)
                per_fold = " / ".join(f"{100 * v:.1f}" for v in s["miou"]["folds"])
                picked = "/".join("ema" if e is None else str(e) for e in s["epochs"])
                gap = pct(s, "gap_to_oracle") if tta is None else "-"  # the oracle epoch is the plain scoring's
                lines.append(f"| {row}{f' + {tta} TTA' if tta else ''} | {strategy} | {pct(s)} | {pct(s, 'nail_iou')} | "
                             f"{pct(s, 'per_nail_iou')} | {gap} | {per_fold} | {picked} |")
    lines += ["", "Averaged over the rows:", ""]
    overall = {}
    for strategy, summaries in steadiness.items():
        sds = [s["miou"]["sd"] for s in summaries if s["miou"]["sd"] is not None]
        gaps = [s["gap_to_oracle"]["mean"] for s in summaries]
        means = [s["miou"]["mean"] for s in summaries]
        if not sds:
            lines.append(f"- `{strategy}`: one fold only.")
            continue
        overall[strategy] = (statistics.fmean(sds), statistics.fmean(gaps), statistics.fmean(means))
        lines.append(f"- `{strategy}`: mean binary mIoU {100 * overall[strategy][2]:.1f}, sd over folds "
                     f"{100 * overall[strategy][0]:.1f} (mean of the rows' sd), gap to the best epoch "
                     f"{100 * overall[strategy][1]:.1f} points.")
    if len(overall) > 1:
        steadiest = min(overall, key=lambda k: overall[k][0])
        closest = min(overall, key=lambda k: overall[k][1])
        lines += ["", f"Steadiest across folds (lowest mean sd): `{steadiest}`; closest to the best epoch it could "
                  f"have picked (smallest mean gap): `{closest}`. With {len(folds)} folds an sd is itself uncertain "
                  "by about a third of its value, so differences in sd below a point are not evidence."]
    lines += breakdown_lines(rows, by_row, selections)
    if ttas:
        lines += tta_lines(report, rows, by_row, selections, ttas)
    wait = report.get("latency_wait") or {}
    busy = (f"; other processes kept {wait['busy_cores']:.1f} cores busy just before (the minimum is the better "
            "estimate of a quiet machine; `model_latency` has quiet figures)" if wait.get("busy_cores") is not None else "")
    lines += ["", f"### Cost (latency: ONNX Runtime, batch 1, {args['threads']} threads, median (min) of "
              f"{args['latency_runs']} runs, random weights, every row in one process{busy})", "",
              "| model | 360x480 (ms) | 480x640 (ms) | train time per fold (s) | crops per fold |",
              "| --- | --- | --- | --- | --- |"]
    for row in rows:
        lat = report.get("latency", {}).get(row) or {}
        cells = [f"{fmt(lat[k]['median'])} ({fmt(lat[k]['min'])})" if k in lat else "-" for k in ("360x480", "480x640")]
        secs = statistics.fmean(r["train_seconds"] for r in by_row[row])
        lines.append(f"| {row} | {cells[0]} | {cells[1]} | {secs:.0f} | {by_row[row][0]['crops']} |")
    flip = [row for row in rows if "360x480 flip batch" in (report.get("latency", {}).get(row) or {})]
    if flip:
        lines += ["", "Flip TTA at 360x480, the same process and turns as the plain model (flip and averaging in the "
                  "ONNX graph; median (min) ms):", "",
                  "| model | plain | flip, image + mirror as a batch of 2 | flip, two runs of batch 1 | "
                  "cheaper flip / plain (medians) |", "| --- | --- | --- | --- | --- |"]
        for row in flip:
            lat = report["latency"][row]
            cells = [f"{fmt(lat[k]['median'])} ({fmt(lat[k]['min'])})"
                     for k in ("360x480", "360x480 flip batch", "360x480 flip runs")]
            cheaper = min(lat["360x480 flip batch"]["median"], lat["360x480 flip runs"]["median"])
            lines.append(f"| {row} | {' | '.join(cells)} | {cheaper / lat['360x480']['median']:.2f} |")
    scoring = "not included" if all("scoring_seconds" in r for r in report["results"]) else "included"
    lines += ["", "Train time is the wall time of `ml.train.train` (inner validation included, the held-out scoring "
              f"after each epoch {scoring}), on a machine shared with other work.", end]
    return "\n".join(lines) + "\n"


def breakdown_lines(rows: list[str], by_row: dict, selections: list[str]) -> list[str]:
    """Where each row's nail IoU goes (``ml.evaluate.nail_breakdown``), every fold's held-out photos pooled."""
    from ml.evaluate import nail_breakdown

    strategy = "last" if "last" in selections else selections[0]
    lines = ["", f"### Where the nail IoU is lost (`{strategy}`, every fold's held-out photos pooled)", "",
             "Precision and recall of the nail pixels (too much painted / too little); found: the labelled nails "
             "whose per-nail IoU is at least 0.5; outline IoU: their mean per-nail IoU.", "",
             "| model | nail precision | nail recall | nails found | outline IoU of found nails |",
             "| --- | --- | --- | --- | --- |"]
    for row in rows:
        b = nail_breakdown([img for r in by_row[row] for img in r["selections"][strategy]["images"]])
        share = {k: "-" if b[k] is None else f"{100 * b[k]:.1f}" for k in ("precision", "recall", "found", "found_iou")}
        lines.append(f"| {row} | {share['precision']} | {share['recall']} | {share['found']} ({b['found_nails']} of "
                     f"{b['nails']}) | {share['found_iou']} |")
    return lines


def tta_lines(report: dict, rows: list[str], by_row: dict, selections: list[str], ttas: list[str]) -> list[str]:
    """The test-time augmentation part of the section: per model and selection the binary mIoU plain and with
    each TTA (the same weights), the gain per fold, the folds it wins, and whether that meets the rule for a
    default (every fold or all but one of at least 4 gain, and the mean gain above its sd over folds)."""
    from ml.cross_validation import summarize

    lines = ["", "### Test-time augmentation (the same models scored plain and with it; points of binary mIoU)", "",
             "| model | selection | TTA | plain | with TTA | gain (mean ± sd) | gain per fold | folds gained | "
             "nail IoU gain | per-nail IoU gain | default? |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        for tta in ttas:
            for strategy in selections:
                plain, aug = summarize(by_row[row], strategy), summarize(by_row[row], strategy, tta)
                gain = aug["gain"]
                n = len(gain["folds"])
                sd = gain["sd"] or 0.0
                enough = aug["wins"] == n or (n >= 4 and aug["wins"] >= n - 1)
                verdict = "yes" if enough and gain["mean"] > sd else "no"
                per_fold = " / ".join(f"{100 * v:+.1f}" for v in gain["folds"])
                others = [f"{100 * (aug[k]['mean'] - plain[k]['mean']):+.1f}" for k in ("nail_iou", "per_nail_iou")]
                lines.append(f"| {row} | {strategy} | {tta} | {pct(plain)} | {pct(aug)} | {100 * gain['mean']:+.1f}"
                             + (f" ± {100 * gain['sd']:.1f}" if gain["sd"] is not None else "")
                             + f" | {per_fold} | {aug['wins']} of {n} | {others[0]} | {others[1]} | {verdict} |")
    seconds = [r.get("tta_seconds") for r in report["results"] if r.get("tta_seconds") is not None]
    lines += ["", "A TTA would become a default only with \"yes\": every fold gains (or all but one, with at least "
              "4 folds) and the mean gain exceeds its sd over folds. The folds' sd of the plain mIoU is in the table "
              "above; the gain is paired (same model, same photos), so its own sd is the one that matters."
              + (f" Scoring with TTA took {statistics.fmean(seconds):.0f} s per fold and row." if seconds else "")]
    return lines


def merge_reports(reports: list[dict]) -> dict:
    """One report of several runs with the same folds and budget (e.g. run one row at a time): results and
    latencies merged in order (a later run's latency of a row replaces an earlier one, with its timing
    options), the seconds summed, the commands joined."""
    first = reports[0]
    free = ("select", "latency_runs", "threads", "keep_checkpoints")  # what may differ: no effect on training

    def budget(report: dict) -> dict:
        return {k: v for k, v in report["args"].items() if k not in free}

    for other in reports[1:]:
        if other["folds"] != first["folds"] or budget(other) != budget(first):
            raise ValueError("runs with different folds or budgets cannot share a table")
    timed = [rep for rep in reports if rep.get("latency")]
    args = {**first["args"], **({k: timed[-1]["args"][k] for k in free[1:] if k in timed[-1]["args"]} if timed else {})}
    merged = {**first, "args": args, "commit": " / ".join(dict.fromkeys(rep["commit"] for rep in reports))}
    if timed and timed[-1].get("latency_wait"):
        merged["latency_wait"] = timed[-1]["latency_wait"]
    return {**merged, "results": [r for rep in reports for r in rep["results"]],
            "latency": {k: v for rep in reports for k, v in rep.get("latency", {}).items()},
            "seconds": sum(rep["seconds"] for rep in reports),
            "command": " && ".join(rep["command"] for rep in reports)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--export", type=Path, help="an existing masks export (skips building one)")
    parser.add_argument("--labels", default="polygons",
                        help="'polygons' (the shared COCO file alone: only the nail/background heads learn), "
                             "'complete' (merged with the project's fingers and base/tip, "
                             "curation/demo/nails-cc0-labels.json: the class and direction heads learn too) or a "
                             "demo label file")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "cv")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only-folds", help="comma list of fold indices to run (default all; e.g. to time one)")
    parser.add_argument("--rows", default="baseline,lmp,cascade,unet",
                        help="comma list of ml.cross_validation.ROW_ALIASES or full ml.ablation row labels")
    from ml.train_presets import TRAIN_PRESETS

    parser.add_argument("--preset", default="web-336", choices=list(TRAIN_PRESETS))
    parser.add_argument("--size", type=int, help="training crop size (default: the preset's)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=8, help="steps per epoch")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lr", type=float, help="peak learning rate (default: the preset's)")
    parser.add_argument("--aux-weight", type=float,
                        help="the weight of the coarse outputs' loss (deep supervision; ml.losses.LossConfig.aux_weight, "
                             "default: the preset's)")
    parser.add_argument("--iou-weight", type=float,
                        help="add the Lovasz-softmax IoU loss (ml.losses.LossConfig.iou_weight) with this weight")
    parser.add_argument("--cpu-amp", action="store_true",
                        help="train in bfloat16 autocast on a CPU that has it natively (TrainConfig.cpu_amp)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                        help="keep the weights and batches in NHWC memory or not (TrainConfig.channels_last; default: "
                             "its default, NHWC; the CV sections before cv-cpu-16x-channels-last trained in NCHW)")
    parser.add_argument("--base-long-side", type=int,
                        help="long side each training photo is scaled to before the random scale and crop "
                             "(ml.data.AugmentConfig.base_long_side; default: the preset's, crop size / 0.7)")
    parser.add_argument("--val-size", type=int, default=480,
                        help="long side of the inner val photos, and the model's input size (TrainConfig.eval_size: "
                             "what the platform predicts at, and the held-out photos' without --max-side)")
    parser.add_argument("--max-side", type=int,
                        help="run each held-out photo at its own size, its long side capped here (the protocol of "
                             "the runs before 2026-12-05); default: every photo at the model's input size "
                             "(--val-size), as the platform predicts")
    parser.add_argument("--select", default="last,ema,best-inner-val")
    parser.add_argument("--ema-decay", type=float, default=0.6)
    parser.add_argument("--tta", default="", help="comma list of test-time augmentations (ml.tta.TTA_MODES, e.g. "
                        "flip) every selected model is also scored with (same weights) and timed with")
    parser.add_argument("--seed", type=int, default=0, help="the folds' and (without --train-seed) the training's seed")
    parser.add_argument("--train-seed", type=int,
                        help="the training's seed alone (initialisation, crop order, augmentation), the folds kept: "
                             "rerun a row with other seeds on the same folds to see how far a rerun moves it")
    parser.add_argument("--keep-checkpoints", action="store_true",
                        help="keep each fold's last.pt and best.pt (under WORK/runs/fold<i>-<row>/run/), e.g. to look "
                             "at their predictions or to teach another model; default: deleted after the fold")
    parser.add_argument("--teacher", metavar="ROW",
                        help="distil: each fold's model also learns from the nail/background predictions of ROW's "
                             "model of the same fold (WORK/runs/fold<i>-<row>/run/last.pt, kept by an earlier "
                             "--keep-checkpoints run; trained on the same photos, never the held-out ones); the "
                             "rows are reported as '<row>, distilled from <ROW>'")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=0,
                        help="DataLoader worker processes per training (the same crops: each sample is seeded)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for the latency")
    parser.add_argument("--latency-runs", type=int, default=20)
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--latency-only", action="store_true",
                        help="measure only the rows' latency (merge with the training run's JSON by --from-json)")
    parser.add_argument("--wait-idle", type=float, default=0.0,
                        help="before the latency, wait up to this many seconds for the machine to be less busy "
                             "than half its CPUs")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="only write the doc section of earlier runs' JSON (several runs on the same folds, e.g. "
                             "one per row: results and latencies merged, in order)")
    parser.add_argument("--section", default="cv-cpu")
    parser.add_argument("--title", help="the section's title (default \"reduced CPU budget\"; with --from-json: "
                                         "the runs' own unless given)")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    from ml.tta import check_tta

    try:
        args.tta_modes = [m for m in (check_tta(n.strip()) for n in args.tta.split(",") if n.strip()) if m != "none"]
    except ValueError as exc:
        parser.error(str(exc))

    if args.from_json:
        report = merge_reports([json.loads(path.read_text()) for path in args.from_json])
        if args.title:
            report["title"] = args.title
        text = section(report, args.section)
        if not args.no_doc:
            write_section(args.section, text)
        print(text)
        return report

    import torch

    from bench.ablation import build_export
    from dataset.formats.masks import read_masks_manifest
    from ml.cross_validation import participant_folds, row_label, run_fold
    from ml.device import cpu_has_native_bf16, resolve_device

    wanted = [int(i) for i in args.only_folds.split(",")] if args.only_folds else list(range(args.folds))
    teachers: dict[int, Path] = {}
    teacher = None
    if args.teacher and not args.latency_only:
        try:
            teacher = row_label(args.teacher)
        except KeyError as exc:
            parser.error(str(exc.args[0]))
        teachers = {i: fold_run_dir(args.work, i, teacher) / "run" / "last.pt" for i in wanted}
        missing = [str(path) for path in teachers.values() if not path.is_file()]
        if missing:
            parser.error(f"--teacher {args.teacher}: no checkpoint of that row in {args.work} (train it first with "
                         f"--keep-checkpoints and the same --work, folds and seed): {', '.join(missing)}")
    started = time.monotonic()
    args.work.mkdir(parents=True, exist_ok=True)
    export = args.export or args.work / "export"
    if args.export is None:
        from curation.demo_labels import DEMO_LABELS

        labels = {"polygons": None, "complete": DEMO_LABELS}.get(args.labels, Path(args.labels))
        build_export(args.source, export, labels=labels)
    labels = [row_label(name.strip()) for name in args.rows.split(",")]
    selections = [s.strip() for s in args.select.split(",")]
    folds = participant_folds(read_masks_manifest(export)["images"], k=args.folds, seed=args.seed)
    device = resolve_device(args.device)
    info = machine_info()
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{info['nproc']} CPUs ({info.get('cpu', 'unknown')}), {torch.get_num_threads()} threads"
             + precision_note(args.cpu_amp, cpu_has_native_bf16()))
    first = row_config(labels[0], args)  # every row has the same budget, crops and input size
    report = {
        "title": args.title or "reduced CPU budget", "date": time.strftime("%Y-%m-%d"), "seconds": 0.0,
        "command": "python " + shlex.join(["bench/cv.py"] + (sys.argv[1:] if argv is None else list(argv))),
        "commit": git_commit(("ml", "bench"), "ml/ or bench/") or "unknown",
        "args": {"preset": args.preset, "crop": first.augment.crop_size, "epochs": args.epochs, "steps": args.steps,
                 "batch": args.batch, **({"lr": args.lr} if args.lr else {}),
                 **({"aux_weight": args.aux_weight} if args.aux_weight is not None else {}),
                 **({"iou_weight": args.iou_weight} if args.iou_weight else {}),
                 **({"cpu_amp": True} if args.cpu_amp else {}),
                 "channels_last": first.channels_last,
                 **({"base_long_side": args.base_long_side} if args.base_long_side else {}),
                 "labels": args.labels if args.export is None else "an existing export",
                 "val_size": args.val_size, "max_side": args.max_side,
                 "input_side": first.eval_size, "select": selections,
                 "ema_decay": args.ema_decay, "seed": args.seed,
                 **({"train_seed": args.train_seed} if args.train_seed is not None else {}), "threads": args.threads,
                 "latency_runs": args.latency_runs, "folds": args.folds, "tta": args.tta_modes},
        "export": export_summary(export), "folds": [fold.to_dict() for fold in folds], "results": [], "latency": {},
        "machine": {"where": where, "torch": torch.__version__, "device": str(device),
                    "load": " / ".join(f"{x:.1f}" for x in loadavg()) if device.type == "cpu" else "n/a",
                    "workers": args.workers},
    }
    log(f"{len(folds)} folds, held-out photos {[len(f.test) for f in folds]}, inner val {[len(f.inner_val) for f in folds]}")

    def save() -> None:
        report["seconds"] = time.monotonic() - started
        if args.json:  # after every run: a run cut short still leaves what it finished
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1))

    if not args.no_latency:
        if args.wait_idle:
            report["latency_wait"] = wait_for_quiet(args.wait_idle, threshold=info["nproc"] / 2)
        for label in labels:
            report["latency"][label] = latency(label, args)
            log(f"latency {label}: " + ", ".join(f"{k} {v['median']:.1f} ms" for k, v in report["latency"][label].items()))
        save()
    for fold in (folds[i] for i in wanted if not args.latency_only):
        for label in labels:
            config = row_config(label, args)
            if teachers:
                config = replace(config, teacher=str(teachers[fold.index]))
                label = f"{label}, distilled from {teacher}"
            log(f"fold {fold.index}: {label}")
            result = run_fold(export, fold, config, fold_run_dir(args.work, fold.index, label),
                              selections=selections, ema_decay=args.ema_decay, max_side=args.max_side,
                              tta=args.tta_modes, keep_checkpoints=args.keep_checkpoints, log=log)
            report["results"].append({"row": label, **({"teacher": config.teacher} if teachers else {}), **result})
            log("  -> " + ", ".join(f"{s} {100 * v['scores']['miou']:.1f}"
                                    + "".join(f" ({t} {100 * r['scores']['miou']:.1f})" for t, r in v["tta"].items())
                                    for s, v in result["selections"].items())
                + f", oracle {100 * result['oracle']['scores']['miou']:.1f} (epoch {result['oracle']['epoch']}), "
                f"{result['train_seconds']:.0f} s")
            save()
    save()
    if args.latency_only:
        return report
    text = section(report, args.section)
    print(text)
    if not args.no_doc:
        write_section(args.section, text)
    return report


if __name__ == "__main__":
    main()
