"""The input size a trained model runs at, chosen on its own inner val: a cross-validation's kept checkpoints
scored again at other input sizes, on each fold's inner val and held-out photos, with each size's latency
(issue #17).

    python bench/cv.py --work W --folds 4 ... --keep-checkpoints --rows ROW --json cv.json   # first
    python bench/input_size.py --cv-json cv.json --work W [--sizes 320,352,384,416,448,480]
                               [--json docs/results/input-size.json] [--section input-size]

A model is trained on crops of photos scaled to a long side around the augmentation's ``base_long_side`` (with
a random scale) and runs on the platform at its config's input size (``TrainConfig.eval_size``: each photo
resized so its long side is that, what ``ml.predict.Predictor`` and the CV's scoring do). Whether that size is
the best one for the nails' scale is a measurement, not a given. For every fold of the CV run and each size in
``--sizes``, the fold's kept ``last.pt`` (the ``last`` strategy's weights; ``--keep-checkpoints``) is scored at
full resolution (``ml.evaluate.FullResScorer``) on the fold's inner val photos and on its held-out participants.

The choice is made without the held-out photos: ``per-fold`` = each fold takes the size with the best
inner-val binary mIoU (what a run on the platform could do with its own val split; ties go to the smaller,
faster size); ``pooled`` = the one size with the best mean inner-val mIoU over the folds. Both are reported
on the held-out photos beside every fixed size, with the paired difference from the CV's own size per fold.
Latency: ONNX Runtime, batch 1, ``--threads`` threads, a 3:4 photo at each size (``ml.data.eval_size_for``), all
sizes in turns in one process. Writes ``--json`` and the ``--section`` section of ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdoc import fmt, git_commit, log, machine_info, wait_for_quiet, write_section  # noqa: E402
from bench.cv import fold_run_dir  # noqa: E402

SPLITS = {"val": "inner val", "test": "held-out"}


def kept_cv_run(cv_json: Path, work: Path, parser: argparse.ArgumentParser) -> tuple[dict, str, list[int]]:
    """A one-row ``bench/cv.py`` run whose folds kept their ``last.pt`` under ``work``: (its JSON, the row, the
    fold indices); the parser's error otherwise."""
    cv = json.loads(cv_json.read_text())
    rows = sorted({r["row"] for r in cv["results"]})
    if len(rows) != 1:
        parser.error(f"--cv-json: one row expected, found {len(rows)}: {', '.join(rows)}")
    row = rows[0]
    indices = sorted(r["fold"] for r in cv["results"])
    missing = [str(fold_run_dir(work, i, row)) for i in indices
               if not (fold_run_dir(work, i, row) / "run" / "last.pt").is_file()]
    if missing:
        parser.error(f"no kept last.pt (run bench/cv.py with --keep-checkpoints and this --work): {', '.join(missing)}")
    return cv, row, indices


def score_fold(run_dir: Path, sizes: list[int]) -> dict:
    """``{split: {size: pooled scores}}`` of the fold's kept ``last.pt`` on its inner val and held-out photos."""
    from ml.checkpoint import load_model
    from ml.evaluate import FullResScorer, pooled_scores

    model, _ = load_model(run_dir / "run" / "last.pt")
    out: dict = {}
    for split in SPLITS:
        out[split] = {}
        for size in sizes:
            scores = pooled_scores(FullResScorer(run_dir / "data", split, long_side=size)(model))
            out[split][str(size)] = {k: scores[k] for k in ("miou", "nail_iou", "per_nail_iou", "images", "nails")}
    return out


def choose(folds: list[dict], settings: list, tie=lambda s: s, key=str) -> dict:
    """The settings (sizes, thresholds: each fold's ``val`` scores are under ``key(setting)``) chosen on the inner
    val: per fold (its own best; on a tie the one ``tie`` ranks first: the smaller size) and pooled (the best
    mean over the folds)."""
    per_fold = [min(settings, key=lambda s: (-round(f["val"][key(s)]["miou"], 6), tie(s))) for f in folds]
    pooled = min(settings, key=lambda s: (-round(statistics.fmean(f["val"][key(s)]["miou"] for f in folds), 6), tie(s)))
    return {"per-fold": per_fold, "pooled": [pooled] * len(folds)}


def setting_rows(row, settings: list[str], own: str, own_note: str, chosen: dict, folds: int, key) -> list[str]:
    """A rescoring table's rows: ``row(label, setting per fold)`` for every fixed setting (the run's own marked
    ``own_note``), then for each way of choosing on the inner val (``chosen``'s settings, named by ``key``)."""
    fixed = [row(s + (f" ({own_note})" if s == own else ""), [s] * folds) for s in settings]
    return fixed + [row(f"chosen on inner val, {how}: {' / '.join(map(key, picks))}", [key(p) for p in picks])
                    for how, picks in chosen.items()]


def latencies(config, sizes: list[int], runs: int, threads: int) -> dict:
    """Median and minimum ms of the model at each size's 3:4 input, the sizes timed in turns."""
    from bench.model_latency import time_ort
    from ml.data import eval_size_for
    from ml.models.registry import build_model

    model = build_model(config.model, load_pretrained=False).eval()
    times: dict[int, list[float]] = {s: [] for s in sizes}
    for _ in range(2):
        for s in sizes:
            h, w = eval_size_for(3, 4, s)
            times[s] += time_ort(model, h, w, runs // 2, 3, threads)
    return {str(s): {"input": "x".join(map(str, eval_size_for(3, 4, s))), "median": statistics.median(v),
                     "min": min(v)} for s, v in times.items()}


def summary(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else f"{mean:.1f}"


def section(report: dict, name: str) -> str:
    sizes, base = report["sizes"], str(report["cv_size"])
    folds = report["folds"]
    lines = [f"<!-- {name}:start -->",
             f"## The input size a trained model runs at, chosen on its inner val (`bench/input_size.py`)", "",
             f"Measured {report['date']} in {report['seconds'] / 60:.1f} min with `{report['command']}` (commit "
             f"{report['commit']}); {report['machine']}. The kept `last.pt` of each fold of the CV run "
             f"`{report['cv_command']}` ({report['row']}; trained with inner val and scoring at long side {base}), "
             f"scored again at full resolution with each photo's long side resized to each size (the model's input), "
             f"on the fold's inner val photos and on its held-out participants.", "",
             "| input long side | input (3:4 photo) | inner val mIoU | held-out binary mIoU | held-out nail IoU | "
             "held-out per fold | vs the CV's size, per fold | ms (min), ONNX Runtime 2 threads |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]

    def row(label: str, picks: list[str]) -> str:
        val = [f["val"][p]["miou"] for f, p in zip(folds, picks)]
        test = [f["test"][p]["miou"] for f, p in zip(folds, picks)]
        nail = [f["test"][p]["nail_iou"] for f, p in zip(folds, picks)]
        diff = [100 * (t - f["test"][base]["miou"]) for f, t in zip(folds, test)]
        same = len(set(picks)) == 1
        lat = report["latency"].get(picks[0]) if same else None
        return (f"| {label} | {lat['input'] if lat else '-'} | {summary(val)} | {summary(test)} | {summary(nail)} | "
                + " / ".join(f"{100 * t:.1f}" for t in test) + " | "
                + " / ".join(f"{d:+.1f}" for d in diff) + f" (mean {statistics.fmean(diff):+.1f}) | "
                + (f"{fmt(lat['median'])} ({fmt(lat['min'])})" if lat else "-") + " |")

    lines += setting_rows(row, [str(s) for s in sizes], base, "the CV's", report["chosen"], len(folds), str)
    lines += ["", "Mean ± sd over the folds (inner val and held-out mIoU pooled per fold, as `bench/cv.py`). "
              "`per-fold`: each fold runs at the size its own inner val scored best (what a run on the platform can "
              "do with its val split); `pooled`: the size with the best mean inner-val mIoU over the folds. Neither "
              "reads the held-out photos. Latency: median (min) of "
              f"{report['latency_runs']} runs per size, in turns, random weights.", f"<!-- {name}:end -->"]
    return "\n".join(lines)


def kept_checkpoints_main(argv: list[str] | None, description: str, add_arguments, measure, section,
                          default_section: str) -> dict:
    """The command line of a bench that scores a CV run's kept checkpoints again (this one, ``bench/fg_threshold.py``):
    ``--cv-json`` and ``--work``, the bench's own arguments (``add_arguments(parser)``), ``--json``, ``--section``,
    ``--from-json`` (only the doc of an earlier run) and ``--no-doc``; ``measure(args, parser, argv)`` makes the
    report (written to ``--json``), ``section(report, name)`` its doc section, printed and written to
    ``docs/benchmarks.md``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv-json", type=Path, help="the JSON of a bench/cv.py run (one row)")
    parser.add_argument("--work", type=Path, help="that run's --work (with --keep-checkpoints)")
    add_arguments(parser)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--section", default=default_section)
    parser.add_argument("--from-json", type=Path, help="only write the doc section of an earlier run's JSON")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args(argv)
    if args.from_json:
        report = json.loads(args.from_json.read_text())
    elif not (args.cv_json and args.work):
        parser.error("--cv-json and --work are needed (or --from-json)")
    else:
        report = measure(args, parser, sys.argv[1:] if argv is None else list(argv))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1))
    text = section(report, args.section)
    print(text)
    if not args.no_doc:
        write_section(args.section, text)
    return report


def main(argv: list[str] | None = None) -> dict:
    def add_arguments(parser):
        parser.add_argument("--sizes", default="320,352,384,416,448,480")
        parser.add_argument("--threads", type=int, default=2)
        parser.add_argument("--latency-runs", type=int, default=20)
        parser.add_argument("--wait-idle", type=float, default=30.0)

    return kept_checkpoints_main(argv, __doc__, add_arguments, measure, section, "input-size")


def measure(args, parser, argv: list[str]) -> dict:
    import torch

    from bench.cv import recorded_args, row_config

    started = time.monotonic()
    cv, row, indices = kept_cv_run(args.cv_json, args.work, parser)
    sizes = [int(s) for s in args.sizes.split(",")]
    cv_size = cv["args"]["input_side"]
    if cv_size not in sizes:
        sizes = sorted([*sizes, cv_size])
    info = machine_info()
    report = {"date": time.strftime("%Y-%m-%d"), "row": row, "sizes": sizes, "cv_size": cv_size,
              "command": "python " + shlex.join(["bench/input_size.py", *argv]),
              "cv_command": cv["command"], "commit": git_commit(("ml", "bench"), "ml/ or bench/") or "unknown",
              "machine": f"{info['nproc']} CPUs ({info.get('cpu', 'unknown')}), torch {torch.__version__}",
              "latency_runs": args.latency_runs, "folds": [], "latency": {}}
    for i in indices:
        log(f"fold {i}: scoring at {sizes}")
        scores = score_fold(fold_run_dir(args.work, i, row), sizes)
        report["folds"].append({"fold": i, **scores})
        log("  inner val " + ", ".join(f"{s} {100 * scores['val'][str(s)]['miou']:.1f}" for s in sizes)
            + " | held-out " + ", ".join(f"{s} {100 * scores['test'][str(s)]['miou']:.1f}" for s in sizes))
    report["chosen"] = choose(report["folds"], sizes)
    if args.wait_idle:
        report["latency_wait"] = wait_for_quiet(args.wait_idle, threshold=info["nproc"] / 2)
    report["latency"] = latencies(row_config(row, recorded_args(cv["args"])), sizes, args.latency_runs, args.threads)
    report["seconds"] = time.monotonic() - started
    return report


if __name__ == "__main__":
    main()
