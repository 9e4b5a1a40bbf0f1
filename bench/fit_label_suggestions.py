"""Train the learned parts of the label suggestions from confirmed labels (issue #16): the two networks of
:mod:`ml.nail_direction`, which end of a nail is its tip (into ``ml/weights/nail_tip.npz``) and which way its
finger runs (into ``ml/weights/nail_axis.npz``).

    python bench/fit_label_suggestions.py [--labels curation/demo/nails-cc0-labels.json] [--data ../shared/data/nails-cc0]
                                       [--epochs 30] [--folds 5] [--no-save]

Reads the confirmed labels the way ``bench/complete_labels.py`` does and keeps the photos of the TUNING
participants only (every participant not in ``bench.complete_labels.HELD_OUT``; the held-out photos are not
even read). The tip network: each nail is one sample, its crop read along the axis (of those
``ml.label_suggestions`` reads) closest to the confirmed direction; nails whose axes are all over 45 degrees
off are left out. The finger-axis network: each nail with a confirmed direction is one sample
(:func:`axis_samples`). Prints the participant-grouped k-fold accuracy of each (each fold's participants
predicted by networks trained on the others): the tip vote's (by its confidence too), and for the round
nails (the ones the suggestions ask the finger-axis network about) how often the axis it reads is within 30
degrees of the confirmed direction, sign-free and signed. Then trains both on all tuning participants and
saves the weights (with how they were trained) unless ``--no-save``. Deterministic: seed 0, 2 threads.
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

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.complete_labels import SHARED, load_labels, load_participants, read_photo, tuning_participants  # noqa: E402
from curation.demo_labels import DEMO_LABELS  # noqa: E402
from ml.label_suggestions import SuggestionRules, direction_reads  # noqa: E402
from ml.nail_direction import (AXIS_WEIGHTS_PATH, WEIGHTS_PATH, finger_axis_reads, save_tip_net,  # noqa: E402
                               tip_probabilities, train_axis_net, train_tip_net)  # noqa: E402

EPOCHS = 30   # chosen by the grouped k-fold accuracy on the tuning participants
FOLDS = 5


def photos_of(nails_by_file: dict, data_dir, participants: dict[str, str], only):
    """``(file name, participant, photo, its nails)`` for each photo with nails of the participants in ``only``, in
    file-name order (the other photos are not read)."""
    for file_name, nails in sorted(nails_by_file.items()):
        who = participants.get(file_name, file_name)
        if not nails or who not in only:
            continue
        photo = read_photo(Path(data_dir) / "images" / file_name)
        if photo is not None:
            yield file_name, who, photo, nails


def training_samples(labels: dict[str, list[dict]], data_dir, participants: dict[str, str], only):
    """``(samples, participant per sample)``; a sample is ``(photo, polygon, axis, tip at +axis)`` of a nail
    with a confirmed direction of the participants in ``only`` (the other photos are not read)."""
    samples, groups = [], []
    for _, who, photo, nails in photos_of(labels, data_dir, participants, only):
        for nail, axes in zip(nails, direction_reads([n["polygon"] for n in nails])):
            if nail["base"] is None or nail["tip"] is None:
                continue
            d = np.subtract(nail["tip"], nail["base"])
            d = d / max(np.linalg.norm(d), 1e-9)
            axis = max(axes, key=lambda a: abs(float(a @ d)))
            if abs(float(axis @ d)) < np.cos(np.radians(45)):
                continue
            samples.append((photo, nail["polygon"], axis, float(axis @ d) > 0))
            groups.append(who)
    return samples, groups


def axis_samples(labels: dict[str, list[dict]], data_dir, participants: dict[str, str], only):
    """``(samples, participant per sample)`` for the finger-axis network: ``(photo, polygon, base -> tip unit
    vector)`` of every nail with a confirmed direction of the participants in ``only``."""
    samples, groups = [], []
    for _, who, photo, nails in photos_of(labels, data_dir, participants, only):
        for nail in nails:
            if nail["base"] is None or nail["tip"] is None:
                continue
            d = np.subtract(nail["tip"], nail["base"])
            if np.linalg.norm(d) > 0:
                samples.append((photo, nail["polygon"], d / np.linalg.norm(d)))
                groups.append(who)
    return samples, groups


def participant_folds(groups, folds: int = FOLDS) -> list[list[str]]:
    """The participants (sorted) dealt into ``folds`` folds."""
    people = sorted(set(groups))
    return [people[k::folds] for k in range(min(folds, len(people)))]


def fold_networks(samples, groups, folds: int = FOLDS, epochs: int = EPOCHS, train=train_tip_net) -> dict:
    """``{participant: network}``: each participant's network (``train``: the tip network's, or
    ``train_axis_net`` on :func:`axis_samples`) trained on the samples of the other folds' participants only
    (fold ``k`` with seed ``k``)."""
    nets = {}
    for k, fold in enumerate(participant_folds(groups, folds)):
        net = train([s for s, g in zip(samples, groups) if g not in fold], epochs=epochs, seed=k)
        nets.update({who: net for who in fold})
    return nets


def fold_rules(labels: dict, participants: dict, tuning: list[str], data_dir=SHARED, epochs: int = EPOCHS):
    """``rules_for(who, **weights)``: the ``SuggestionRules`` of a tuning participant with the networks (tip,
    finger axis) of its fold (trained on the other folds' participants only) and the given weights."""
    tip_nets = fold_networks(*training_samples(labels, data_dir, participants, only=set(tuning)), epochs=epochs)
    axis_nets = fold_networks(*axis_samples(labels, data_dir, participants, only=set(tuning)), epochs=epochs,
                              train=train_axis_net)
    return lambda who, **weights: SuggestionRules(tip_net=tip_nets[who], axis_net=axis_nets[who], **weights)


def grouped_cross_validation(samples, groups, folds: int = FOLDS, epochs: int = EPOCHS) -> dict:
    """Each fold's samples voted on by a network trained on the other folds: per-sample P(right)."""
    p_right = np.zeros(len(samples))
    nets = fold_networks(samples, groups, folds, epochs)
    by_photo: dict[int, list[int]] = {}
    for i, sample in enumerate(samples):
        by_photo.setdefault(id(sample[0]), []).append(i)
    for members in by_photo.values():   # one batch per photo (a photo is one participant's)
        photo = samples[members[0]][0]
        ps = tip_probabilities(photo, [(samples[i][1], samples[i][2]) for i in members], nets[groups[members[0]]])
        for i, p in zip(members, ps):
            p_right[i] = p if samples[i][3] else 1 - p
    bands = {}
    sure = np.maximum(p_right, 1 - p_right)
    for lo, hi in ((0.5, 0.7), (0.7, 0.9), (0.9, 1.01)):
        sel = (sure >= lo) & (sure < hi)
        bands[f"{lo}-{min(hi, 1.0)}"] = {"nails": int(sel.sum()),
                                         "accuracy": float(np.mean(p_right[sel] > 0.5)) if sel.any() else None}
    return {"folds": folds, "accuracy": float(np.mean(p_right > 0.5)), "mean_p_right": float(p_right.mean()),
            "by_confidence": bands}


def axis_cross_validation(samples, groups, folds: int = FOLDS, epochs: int = EPOCHS) -> dict:
    """The finger-axis network on the round nails of each fold (those ``ml.label_suggestions`` reads on both
    axes, :func:`direction_reads`; trained on the other folds): the share whose read axis is within 30 degrees
    of the confirmed direction, sign-free (what the suggestions use) and signed; beside it, the share whose own
    major axis is (what the suggestions used before)."""
    nets = fold_networks(samples, groups, folds, epochs, train=train_axis_net)
    axial, signed, major = [], [], []
    within = np.cos(np.radians(30))
    for (photo, polygon, direction), who in zip(samples, groups):
        axes = direction_reads([polygon])[0]
        if len(axes) < 2:   # not round: its own axis is the one the suggestions take
            continue
        axis, _ = finger_axis_reads(photo, [polygon], nets[who])[0]
        cos = float(axis @ direction)
        signed.append(cos >= within)
        axial.append(abs(cos) >= within)
        major.append(abs(float(axes[0] @ direction)) >= within)
    share = (lambda xs: float(np.mean(xs)) if xs else None)
    return {"folds": folds, "round_nails": len(axial), "within_30_sign_free": share(axial),
            "within_30_signed": share(signed), "major_axis_within_30": share(major)}


def train_and_save(report: dict, train, save) -> None:
    """Train the network on every tuning participant (``train()``), write it (``save(net)``, its path) and note
    where and how long in ``report`` (``saved``, ``train_seconds``)."""
    started = time.monotonic()
    report["saved"] = str(save(train()))
    report["train_seconds"] = round(time.monotonic() - started, 1)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", default=str(DEMO_LABELS))
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--folds", type=int, default=FOLDS, help="0: no cross-validation")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--out", default=str(WEIGHTS_PATH), help="the tip network's weights")
    parser.add_argument("--axis-out", default=str(AXIS_WEIGHTS_PATH), help="the finger-axis network's weights")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    labels, participants = load_labels(args.labels, args.data), load_participants(args.data)
    tuning = tuning_participants(participants.get(name, name) for name in labels)
    samples, groups = training_samples(labels, args.data, participants, only=set(tuning))
    report = {"nails": len(samples), "participants": len(set(groups)),
              "tip_at_plus": float(np.mean([s[3] for s in samples])) if samples else None, "epochs": args.epochs}
    if args.folds:
        started = time.monotonic()
        report["cross_validation"] = grouped_cross_validation(samples, groups, args.folds, args.epochs)
        report["cross_validation"]["seconds"] = round(time.monotonic() - started, 1)
    axis, axis_groups = axis_samples(labels, args.data, participants, only=set(tuning))
    report["axis"] = {"nails": len(axis)}
    if args.folds:
        started = time.monotonic()
        report["axis"]["cross_validation"] = axis_cross_validation(axis, axis_groups, args.folds, args.epochs)
        report["axis"]["cross_validation"]["seconds"] = round(time.monotonic() - started, 1)
    if not args.no_save:
        about = {"trained_on": "the tuning participants' confirmed labels (bench/fit_label_suggestions.py)",
                 "nails": len(samples), "participants": len(set(groups)), "epochs": args.epochs, "seed": 0,
                 "cross_validation_accuracy": report.get("cross_validation", {}).get("accuracy")}
        train_and_save(report, lambda: train_tip_net(samples, epochs=args.epochs, seed=0),
                       lambda net: save_tip_net(net, args.out, about))
        about = {**about, "nails": len(axis), "cross_validation": report["axis"].get("cross_validation")}
        train_and_save(report["axis"], lambda: train_axis_net(axis, epochs=args.epochs, seed=0),
                       lambda net: save_tip_net(net, args.axis_out, about))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
