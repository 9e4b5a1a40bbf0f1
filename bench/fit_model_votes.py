"""How far the label suggestions should trust a trained model's votes (issue #16): ``SuggestionRules.model_weight``
(its class head) and ``model_direction_weight`` (its direction field), chosen by a participant-grouped
cross-validation on the tuning participants in which every photo's votes come from a segmentation model that
never saw its participant.

    python bench/fit_model_votes.py --out /tmp/model-folds [--preset gpu-336] [--epochs 10] [--steps 25]
                                    [--batch 8] [--folds 5] [--no-sweep]

1. For each fold of the tuning participants (``bench/fit_label_suggestions.py``'s folds), a model trained by
   ``bench/annotation_effort.py``'s ``train_model`` on the other folds' photos (``out/fold-K``), and one on all
   of them (``out/all``, the model whose votes ``bench/complete_labels.py --model`` weighs on the held-out
   participants), all with the same budget. Resumable: a model whose ``training.json`` exists is kept.
2. Each tuning photo's per-nail votes (``ml.nail_votes``) from its fold's model, kept in ``out/votes.json``.
3. The suggestions of every tuning photo with the fold networks (tip, finger axis; as
   ``bench/complete_labels.py``'s cross-validation) and the fold model's votes, for each setting of the weights
   (:func:`sweep`: the direction's first, then the class head's on the whole finger x on the digit alone):
   hand, digit, finger, within 30 degrees. Prints them and writes ``docs/results/model_votes.json`` and the ``model_votes`` section of
   ``docs/benchmarks.md``.

The held-out participants' photos are never read here.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.annotation_effort import train_model  # noqa: E402
from bench.benchdoc import git_commit, machine_info, markers, publish_report  # noqa: E402
from bench.complete_labels import (SHARED, _pct, compare, load_labels, load_participants, metrics,  # noqa: E402
                                   read_photo, tuning_participants)
from bench.fit_label_suggestions import EPOCHS, FOLDS, fold_rules, participant_folds  # noqa: E402
from curation.demo_labels import DEMO_LABELS  # noqa: E402

RESULTS = ROOT / "docs" / "results" / "model_votes.json"
SECTION = "model_votes"
# Model E's recipe of the effort bench (preset gpu-336, batch 8, 25 steps an epoch), at half its epochs so that
# six models train in about an hour on 2 CPU threads.
BUDGET = {"preset": "gpu-336", "epochs": 10, "steps_per_epoch": 25, "batch_size": 8, "threads": 2, "device": "cpu"}
DIRECTION_WEIGHTS = (0.0, 0.5, 1.0)    # stage 1: model_direction_weight, the class votes off
CLASS_WEIGHTS = (0.0, 0.25, 0.5, 1.0)  # stage 2, at stage 1's best: model_weight x model_digit_weight (0, 0: stage 1's)
DIGIT_WEIGHTS = (0.0, 0.5, 1.0)


def train_fold_models(out: Path, tuning: list[str], budget: dict = BUDGET, folds: int = FOLDS,
                      data_dir=SHARED, final: bool = True) -> dict:
    """``{participant: checkpoint}`` of each fold's model (trained without the fold's participants) and, with
    ``final``, ``"all"``: the model trained on every tuning participant. Models already trained are kept."""
    checkpoints = {}
    jobs = [(f"fold-{k}", fold) for k, fold in enumerate(participant_folds(tuning, folds))] + ([("all", [])] if final else [])
    for name, fold in jobs:
        info_path = out / name / "training.json"
        if not info_path.exists():
            print(f"training {name} (leaving out {len(fold)} participants)", flush=True)
            train_model(out / name, budget, data_dir=data_dir, leave_out=fold)
        info = json.loads(info_path.read_text())
        for who in fold or ["all"]:
            checkpoints[who] = info["checkpoint"]
    return checkpoints


def fold_votes(out: Path, labels: dict, participants: dict, checkpoints: dict, data_dir=SHARED) -> dict:
    """``{file name: per-nail votes}`` of every tuning photo from its fold's model (cached in ``out/votes.json``)."""
    from ml.nail_votes import predict_nail_votes
    from ml.predict import Predictor

    path = out / "votes.json"
    if path.exists():
        return json.loads(path.read_text())
    votes, predictors = {}, {}
    for file_name, nails in sorted(labels.items()):
        who = participants.get(file_name, file_name)
        if not nails or who not in checkpoints or who == "all":
            continue
        image = read_photo(Path(data_dir) / "images" / file_name)
        if image is None:
            continue
        checkpoint = checkpoints[who]
        if checkpoint not in predictors:
            predictors[checkpoint] = Predictor.from_checkpoint(checkpoint, threads=2)
        votes[file_name] = predict_nail_votes(predictors[checkpoint], image, [n["polygon"] for n in nails])
    path.write_text(json.dumps(votes))
    return votes


def score(row: dict) -> float:
    """What the sweep maximises: finger accuracy + share within 30 degrees (the two targets of issue #16)."""
    return row["finger_accuracy"] + row["within_30"]


def cross_validated(labels, participants, tuning, votes, rules_for, weights: dict, data_dir=SHARED) -> dict:
    """The cross-validated figures of one setting of the weights (``SuggestionRules`` fields)."""
    started = time.monotonic()
    records = compare(labels, data_dir, participants, only=set(tuning),
                      rules_for=lambda who: rules_for(who, **weights), votes=votes)
    row = {**weights, **metrics(records)}
    print(f"{weights}: hand {row['hand_accuracy']:.3f} digit {row['digit_accuracy']:.3f} finger "
          f"{row['finger_accuracy']:.3f} within 30 {row['within_30']:.3f} ({time.monotonic() - started:.0f} s)", flush=True)
    return row


def sweep(labels: dict, participants: dict, tuning: list[str], votes: dict, data_dir=SHARED,
          epochs: int = EPOCHS) -> dict:
    """Stage 1: ``model_direction_weight`` over ``DIRECTION_WEIGHTS`` with the class votes off; stage 2, at its
    best: ``model_weight`` x ``model_digit_weight``. The best of each stage by :func:`score` (ties: the first,
    i.e. the smaller weights). Also the row without any model (``votes`` None) for reference."""
    rules_for = fold_rules(labels, participants, tuning, data_dir, epochs)
    without = cross_validated(labels, participants, tuning, None, rules_for, {}, data_dir)
    stage1 = [cross_validated(labels, participants, tuning, votes, rules_for,
                              {"model_weight": 0.0, "model_digit_weight": 0.0, "model_direction_weight": w}, data_dir)
              for w in DIRECTION_WEIGHTS]
    first = max(stage1, key=score)
    direction = first["model_direction_weight"]
    stage2 = [first if (c, d) == (0.0, 0.0) else  # stage 1's best is stage 2's first setting
              cross_validated(labels, participants, tuning, votes, rules_for,
                              {"model_weight": c, "model_digit_weight": d, "model_direction_weight": direction}, data_dir)
              for c in CLASS_WEIGHTS for d in DIGIT_WEIGHTS]
    best = max(stage1 + stage2, key=score)
    return {"without_model": without, "stage1": stage1, "stage2": stage2,
            "best": {k: best[k] for k in ("model_weight", "model_digit_weight", "model_direction_weight")}}


def render(report: dict) -> str:
    start, end = markers(SECTION)
    m = report["machine"]
    budget = report["budget"]
    models = report["models"]
    folds = [info for name, info in models.items() if name.startswith("fold-")]
    lines = [start, "## How far to trust a model's votes on the label suggestions (`bench/fit_model_votes.py`, issue #16)",
             "", f"Measured {report['when']} in {report['total_s']:.0f} s with `{report['command']}` (commit "
             f"{report['commit']}); {m['cpu']}, {m['nproc']} CPUs.", "",
             f"Participant-grouped {report['folds']}-fold cross-validation over the {report['tuning_participants']} "
             "tuning participants (the held-out ones are never read): each photo's per-nail votes (`ml.nail_votes`) "
             "come from a segmentation model trained without its participant, by `bench/annotation_effort.py`'s "
             f"`train_model` (preset {budget['preset']}, {budget['epochs']} epochs x {budget['steps_per_epoch']} steps "
             f"of {budget['batch_size']} on {budget['threads']} CPU threads; "
             + ", ".join(f"{info.get('photos')} photos" for info in folds) + " per fold, "
             + " / ".join(f"{info.get('wall_s'):.0f} s" for info in folds if info.get("wall_s") is not None)
             + "), and the tip and finger-axis networks are the fold's (as `bench/complete_labels.py`'s "
             "cross-validation). Stage 1 weighs the model's direction field (`model_direction_weight`) with its class "
             "votes off; stage 2, at stage 1's best, its class head on the whole finger (`model_weight`) and on the "
             "digit alone, whichever the hand (`model_digit_weight`). Best: the highest finger accuracy + share within "
             "30 deg (ties: the smaller weights).", "",
             "| stage | class (finger) | class (digit) | direction | hand | digit | finger | within 30 deg | angle p95 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]

    def row(stage, r):
        weights = [r.get(k) for k in ("model_weight", "model_digit_weight", "model_direction_weight")]
        cells = ["-" if w is None else f"{w:g}" for w in weights]
        best = all(r.get(k) == v for k, v in report["best"].items())
        text = (f"| {stage} | {' | '.join(cells)} | {_pct(r.get('hand_accuracy'))} | {_pct(r.get('digit_accuracy'))} "
                f"| {_pct(r.get('finger_accuracy'))} | {_pct(r.get('within_30'))} | {r.get('angle_p95', 0):.1f} |")
        return text.replace("| " + stage, "| **" + stage + " (best)**", 1) if best and stage == "2" else text

    lines.append(row("no model", report["without_model"]))
    lines += [row("1", r) for r in report["stage1"]] + [row("2", r) for r in report["stage2"]]
    votes = report["stage1"][0]
    lines += ["", f"The fold models' votes alone (argmax over the nail): finger {_pct(votes.get('model_finger_accuracy'))}, "
              f"digit whichever the hand {_pct(votes.get('model_digit_accuracy'))}, direction within 30 deg "
              f"{_pct(votes.get('model_within_30'))}.", "",
              f"Per setting: `{RESULTS.relative_to(ROOT)}`.", end, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    import torch

    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="where the fold models and their votes go")
    parser.add_argument("--labels", default=str(DEMO_LABELS))
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--preset", default=BUDGET["preset"], help="the training preset of every model (e.g. the "
                        "default, cpu-224-longer, with --epochs 64 --steps 12)")
    parser.add_argument("--epochs", type=int, default=BUDGET["epochs"])
    parser.add_argument("--steps", type=int, default=BUDGET["steps_per_epoch"], help="steps an epoch")
    parser.add_argument("--batch", type=int, default=BUDGET["batch_size"])
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--no-sweep", action="store_true", help="train the models and stop")
    parser.add_argument("--no-final", action="store_true", help="no model on all tuning participants (the sweep "
                        "needs only the fold models; bench/complete_labels.py --model needs it)")
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(2)
    out, data_dir = Path(args.out), Path(args.data)
    labels, participants = load_labels(args.labels, data_dir), load_participants(data_dir)
    tuning = tuning_participants(participants.get(name, name) for name in labels)
    budget = {**BUDGET, "preset": args.preset, "epochs": args.epochs, "steps_per_epoch": args.steps,
              "batch_size": args.batch}
    checkpoints = train_fold_models(out, tuning, budget, args.folds, data_dir, final=not args.no_final)
    if args.no_sweep:
        return 0
    votes = fold_votes(out, labels, participants, checkpoints, data_dir)
    trainings = {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/training.json"))}
    report = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_info(),
              "commit": git_commit() or "?", "budget": budget, "folds": args.folds, "tuning_participants": len(tuning),
              "models": {name: {k: info.get(k) for k in ("checkpoint", "photos", "nails", "wall_s", "left_out", "status")}
                         for name, info in trainings.items()},
              **sweep(labels, participants, tuning, votes, data_dir)}
    publish_report(report, started, "bench/fit_model_votes.py", argv, render, SECTION, args.json, args.no_docs)
    return 0

if __name__ == "__main__":
    sys.exit(main())
