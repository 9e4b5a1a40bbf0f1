"""Train click-a-nail's image-only network (:mod:`ml.click_outline`, issue #18) into ``ml/weights/nail_outline.npz``.

    python bench/fit_click_outline.py [--data ../shared/data/nails-cc0] [--epochs 30] [--folds 5]
                                      [--fold K ...] [--no-save] [--out PATH]

Reads the shared photos' COCO outlines (``bench/click_nail.py``'s answers) of the TUNING participants only
(every participant not in ``bench.complete_labels.HELD_OUT``; the held-out photos are not even read). Each
nail is one sample: its outline, the nail size the tool would send (``nail_size_from_polygons`` of the
photo's other nails; its own for a lone nail) and where clicks fall (the disk of half the inscribed radius
around the pole of inaccessibility). With ``--folds`` it prints a participant-grouped cross-validation
(``--fold`` picks some folds): each fold's photos clicked (one click at the pole, ``bench/click_nail.py``'s
rule) with a network trained on the other folds, beside GrabCut alone on the same clicks: IoU median and
the share at >= 0.9 (the effort bench's bar). Then trains on all tuning participants and saves the weights
(with how they were trained) unless ``--no-save``. Deterministic: seed 0, 2 threads.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from shapely.ops import polylabel  # noqa: E402

from bench.click_nail import biggest_part, iou, load_answers, shape  # noqa: E402
from bench.complete_labels import SHARED, load_participants, tuning_participants  # noqa: E402
from bench.fit_label_suggestions import participant_folds, photos_of, train_and_save  # noqa: E402
from ml.click_outline import WEIGHTS_PATH, save_outline_net, train_outline_net  # noqa: E402
from ml.click_segmentation import DEFAULT_RULES, nail_size_from_polygons, segment_click  # noqa: E402

EPOCHS = 30
FOLDS = 5
CLICK_SPREAD = 0.5   # clicks fall within this share of the inscribed radius around the pole


def photo_nails(data_dir, only) -> list[tuple]:
    """``(file name, participant, photo, [(outline, nail size, (pole, radius)), ...])`` per photo of the
    participants in ``only``."""
    out = []
    answers, participants = load_answers(Path(data_dir)), load_participants(data_dir)
    for name, who, photo, outlines in photos_of(answers, data_dir, participants, only):
        nails = []
        for i, outline in enumerate(outlines):
            size = nail_size_from_polygons([o for j, o in enumerate(outlines) if j != i]) or \
                nail_size_from_polygons([outline])
            part = biggest_part(shape(outline))
            pole = polylabel(part, tolerance=0.5)
            radius = CLICK_SPREAD * part.exterior.distance(pole)
            nails.append((outline, size, ((pole.x, pole.y), radius)))
        out.append((name, who, photo, nails))
    return out


def samples_of(photos) -> list[tuple]:
    return [(photo, outline, size, click) for _, _, photo, nails in photos for outline, size, click in nails]


def click_ious(photos, net_rules, plain_rules, levels=()) -> dict:
    """One click at each nail's pole: IoU with the network and with GrabCut alone (and with the network's
    outline taken at each probability level of ``levels``: ``network@0.45``...)."""
    variants = [("network", net_rules), ("grabcut", plain_rules)]
    variants += [(f"network@{level:g}", dataclasses.replace(net_rules, outline_level=level))
                 for level in levels if level != net_rules.outline_level]
    scores = {key: [] for key, _ in variants}
    for _, _, photo, nails in photos:
        height, width = photo.shape[:2]
        for outline, size, ((x, y), _) in nails:
            for key, rules in variants:
                result = segment_click(photo, [(x, y, 1)], nail_size=size, rules=rules)
                scores[key].append(iou(result.polygon, outline, width, height))
    return scores


def summary(values) -> dict:
    values = np.asarray(values, float)
    return {"nails": int(len(values)), "iou_median": round(float(np.median(values)), 4) if len(values) else None,
            "at_0.9": round(float(np.mean(values >= 0.9)), 4) if len(values) else None,
            "below_0.5": round(float(np.mean(values < 0.5)), 4) if len(values) else None}


def cross_validation(photos, folds: int, only_folds, epochs: int, levels=()) -> dict:
    """Per fold: a network trained on the other folds' photos, scored on the fold's (``levels``: also with
    its outline taken at these probability levels, the same network)."""
    groups = [who for _, who, _, _ in photos]
    scores = {}
    per_fold = []
    for k, fold in enumerate(participant_folds(groups, folds)):
        if only_folds and k not in only_folds:
            continue
        train = [p for p in photos if p[1] not in fold]
        test = [p for p in photos if p[1] in fold]
        started = time.monotonic()
        net = train_outline_net(samples_of(train), epochs=epochs, seed=k)
        seconds = time.monotonic() - started
        fold_scores = click_ious(test, dataclasses.replace(DEFAULT_RULES, outline_network=net),  # not the saved one
                                 dataclasses.replace(DEFAULT_RULES, outline_net=False), levels)
        for key, values in fold_scores.items():
            scores.setdefault(key, []).extend(values)
        per_fold.append({"fold": k, "participants": len(fold), "train_seconds": round(seconds, 1),
                         **{key: summary(v) for key, v in fold_scores.items()}})
        print(json.dumps(per_fold[-1]), flush=True)
    return {"folds": folds, "per_fold": per_fold, **{key: summary(v) for key, v in scores.items()},
            "median_gain": round(statistics.median(np.subtract(scores["network"], scores["grabcut"])), 4)
            if scores["network"] else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--folds", type=int, default=FOLDS, help="0: no cross-validation")
    parser.add_argument("--fold", type=int, action="append", default=[], help="only these folds (0-based)")
    parser.add_argument("--levels", default="", help="also score the network's outline at these probability "
                        "levels (comma-separated, e.g. 0.35,0.4,0.45,0.55; the rules' outline_level is the plain row)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--out", default=str(WEIGHTS_PATH))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    participants = load_participants(args.data)
    tuning = set(tuning_participants(participants.values()))
    photos = photo_nails(args.data, tuning)
    report = {"photos": len(photos), "nails": sum(len(p[3]) for p in photos),
              "participants": len({p[1] for p in photos}), "epochs": args.epochs}
    if args.folds:
        levels = [float(v) for v in args.levels.split(",") if v.strip()]
        report["cross_validation"] = cross_validation(photos, args.folds, set(args.fold), args.epochs, levels)
    if not args.no_save:
        about = {"trained_on": "the tuning participants' outlines (bench/fit_click_outline.py)",
                 "nails": report["nails"], "participants": report["participants"], "epochs": args.epochs, "seed": 0,
                 "cross_validation": {k: report.get("cross_validation", {}).get(k) for k in ("network", "grabcut")}}
        train_and_save(report, lambda: train_outline_net(samples_of(photos), epochs=args.epochs, seed=0),
                       lambda net: save_outline_net(net, args.out, about))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
