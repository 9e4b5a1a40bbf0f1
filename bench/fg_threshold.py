"""The nail-probability threshold a trained model's mask is cut at, chosen on its own inner val: a
cross-validation's kept checkpoints scored again at other thresholds, on each fold's inner val and held-out
photos (issue #17).

    python bench/cv.py --work W --folds 4 ... --keep-checkpoints --rows ROW --json cv.json   # first
    python bench/fg_threshold.py --cv-json cv.json --work W [--thresholds 0.2,0.25,...,0.8]
                                 [--json docs/results/fg-threshold.json] [--section fg-threshold]

Every consumer of the model paints a pixel as nail where the nail probability is above 0.5 (the argmax of the
two nail logits). The CV sections show the cascade losing its points on recall (nails painted too small or not
at all) more than on precision, so the cut may not be where the binary mIoU is best. For every fold of the CV
run, its kept ``last.pt`` (the ``last`` strategy's weights) runs once per photo at the CV's input size on the
fold's inner val and held-out photos (``ml.evaluate.FullResScorer.sweep``) and the mask is cut at each
threshold.

The choice is made without the held-out photos (``bench/input_size.py``'s ``choose``; a tie goes to the
threshold nearest 0.5): ``per-fold`` = each fold takes the threshold with the best inner-val binary mIoU
(what a run on the platform could do with its val split), ``pooled`` = the one threshold with the best mean
inner-val mIoU over the folds. Both are reported on the held-out photos beside every fixed threshold, with the
paired difference from 0.5 per fold, nail-pixel precision and recall. A threshold costs nothing at run time (it
is a constant added to the nail logit). Writes ``--json`` and the ``--section`` section of ``docs/benchmarks.md``.
"""
from __future__ import annotations

import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdoc import git_commit, log, machine_info  # noqa: E402
from bench.cv import fold_run_dir  # noqa: E402
from bench.input_size import (SPLITS, choose, kept_checkpoints_main, kept_cv_run, setting_rows,  # noqa: E402
                               summary)

DEFAULT = 0.5
THRESHOLDS = "0.2,0.25,0.3,0.35,0.4,0.45,0.5,0.55,0.6,0.65,0.7,0.75,0.8"


def key(t: float) -> str:
    return f"{t:g}"


def choose_threshold(folds: list[dict], thresholds: list[float]) -> dict:
    """``bench/input_size.py``'s choice on the inner val, a tie going to the threshold nearest 0.5."""
    return choose(folds, thresholds, tie=lambda t: (round(abs(t - DEFAULT), 6), t), key=key)


def score_fold(run_dir: Path, size: int, thresholds: list[float]) -> dict:
    """``{split: {threshold: pooled scores and nail-pixel precision / recall}}`` of the fold's kept ``last.pt``."""
    from ml.checkpoint import load_model
    from ml.evaluate import FullResScorer, nail_breakdown, pooled_scores

    model, _ = load_model(run_dir / "run" / "last.pt")
    out: dict = {}
    for split in SPLITS:
        swept = FullResScorer(run_dir / "data", split, long_side=size).sweep(model, thresholds)
        out[split] = {}
        for t, scores in swept.items():
            pooled, lost = pooled_scores(scores), nail_breakdown(scores)
            out[split][key(t)] = {**{k: pooled[k] for k in ("miou", "nail_iou", "per_nail_iou", "images", "nails")},
                                  **{k: lost[k] for k in ("precision", "recall", "found_nails")}}
    return out


def mean_percent(values) -> str:
    """The mean of the values that exist (precision is None where nothing is painted), in percent."""
    values = [v for v in values if v is not None]
    return f"{100 * statistics.fmean(values):.1f}" if values else "-"


def section(report: dict, name: str) -> str:
    keys, base, folds = [key(t) for t in report["thresholds"]], key(DEFAULT), report["folds"]
    lines = [f"<!-- {name}:start -->",
             "## The nail-probability threshold, chosen on the inner val (`bench/fg_threshold.py`)", "",
             f"Measured {report['date']} in {report['seconds'] / 60:.1f} min with `{report['command']}` (commit "
             f"{report['commit']}); {report['machine']}. The kept `last.pt` of each fold of the CV run "
             f"`{report['cv_command']}` ({report['row']}), run at the CV's input size (long side "
             f"{report['size']}) on the fold's inner val photos and on its held-out participants, its nail mask cut "
             "at each threshold of the nail probability (0.5: what every consumer does today).", "",
             "| threshold | inner val mIoU | held-out binary mIoU | held-out nail IoU | held-out per fold | "
             "vs 0.5, per fold | nail-pixel precision / recall | nails found (IoU >= 0.5) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def row(label: str, picks: list[str]) -> str:
        val = [f["val"][p]["miou"] for f, p in zip(folds, picks)]
        test = [f["test"][p] for f, p in zip(folds, picks)]
        diff = [100 * (t["miou"] - f["test"][base]["miou"]) for f, t in zip(folds, test)]
        return (f"| {label} | {summary(val)} | {summary([t['miou'] for t in test])} | "
                f"{summary([t['nail_iou'] for t in test])} | " + " / ".join(f"{100 * t['miou']:.1f}" for t in test)
                + " | " + " / ".join(f"{d:+.1f}" for d in diff) + f" (mean {statistics.fmean(diff):+.1f}) | "
                f"{mean_percent(t['precision'] for t in test)} / {mean_percent(t['recall'] for t in test)} | "
                f"{sum(t['found_nails'] for t in test)} of "
                f"{sum(t['nails'] for t in test)} |")

    lines += setting_rows(row, keys, base, "today's", report["chosen"], len(folds), key)
    lines += ["", "Mean ± sd over the folds (inner val and held-out mIoU pooled per fold, as `bench/cv.py`; precision "
              "and recall: means over the folds). `per-fold`: each fold cuts at the threshold its own inner val scored "
              "best (a tie: the one nearest 0.5); `pooled`: the threshold with the best mean inner-val mIoU over the "
              "folds. Neither reads the held-out photos.", f"<!-- {name}:end -->"]
    return "\n".join(lines)


def measure(args, parser, argv: list[str]) -> dict:
    import torch

    started = time.monotonic()
    cv, row, indices = kept_cv_run(args.cv_json, args.work, parser)
    thresholds = sorted({float(t) for t in args.thresholds.split(",")} | {DEFAULT})
    if not all(0 < t < 1 for t in thresholds):
        parser.error(f"--thresholds: each must be between 0 and 1, got {args.thresholds}")
    size = cv["args"]["input_side"]
    info = machine_info()
    report = {"date": time.strftime("%Y-%m-%d"), "row": row, "thresholds": thresholds, "size": size,
              "command": "python " + shlex.join(["bench/fg_threshold.py", *argv]),
              "cv_command": cv["command"], "commit": git_commit(("ml", "bench"), "ml/ or bench/") or "unknown",
              "machine": f"{info['nproc']} CPUs ({info.get('cpu', 'unknown')}), torch {torch.__version__}",
              "folds": []}
    for i in indices:
        log(f"fold {i}: thresholds {thresholds}")
        scores = score_fold(fold_run_dir(args.work, i, row), size, thresholds)
        report["folds"].append({"fold": i, **scores})
        log("  inner val " + ", ".join(f"{key(t)} {100 * scores['val'][key(t)]['miou']:.1f}" for t in thresholds)
            + " | held-out " + ", ".join(f"{key(t)} {100 * scores['test'][key(t)]['miou']:.1f}" for t in thresholds))
    report["chosen"] = choose_threshold(report["folds"], thresholds)
    report["seconds"] = time.monotonic() - started
    return report


def main(argv: list[str] | None = None) -> dict:
    def add_arguments(parser):
        parser.add_argument("--thresholds", default=THRESHOLDS)

    return kept_checkpoints_main(argv, __doc__, add_arguments, measure, section, "fg-threshold")


if __name__ == "__main__":
    main()
