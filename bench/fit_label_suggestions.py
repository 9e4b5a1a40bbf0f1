"""Refit the learned parameters of the label suggestions from confirmed labels (issue #16): the weights of
``ml.nail_direction.TIP_WEIGHTS`` (which end of a nail is its tip).

    python bench/fit_label_suggestions.py [--labels curation/demo/nails-cc0-labels.json] [--data ../shared/data/nails-cc0]
                                       [--l2 1.0]

Reads the confirmed labels the way ``bench/complete_labels.py`` does, keeps the photos of the TUNING
participants only (every participant not in ``bench.complete_labels.HELD_OUT``; the held-out photos are not
even read), computes each nail's features with :func:`ml.label_suggestions.tip_feature_table` (the axis
read that is closest to the confirmed direction; nails whose axes are all over 45 degrees off are left
out), and prints the leave-one-participant-out accuracy of the per-nail vote and the weights fit on all
tuning participants, to paste into ``ml/nail_direction.py``. (A prior that a photo's only hand is a left one,
``log((left + 1) / (right + 1))`` = 1.15 on the tuning photos, was tried and left out: it moved the tuning
finger accuracy by one nail and made a thumbless right hand come out left.)
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.complete_labels import SHARED, load_labels, load_participants, read_photo, tuning_participants  # noqa: E402
from curation.demo_labels import DEMO_LABELS  # noqa: E402
from ml.label_suggestions import tip_feature_table  # noqa: E402
from ml.nail_direction import FEATURES, fit_logistic  # noqa: E402

L2 = 10.0  # the ridge penalty (chosen by the leave-one-participant-out accuracy on the tuning participants)


def training_rows(labels: dict[str, list[dict]], data_dir, participants: dict[str, str], only):
    """(features, tip at +axis (0/1), participant) of every nail with a direction of the participants in
    ``only`` (the other photos are not read)."""
    xs, ys, groups = [], [], []
    for file_name, nails in sorted(labels.items()):
        who = participants.get(file_name, file_name)
        if not nails or who not in only:
            continue
        table = tip_feature_table([n["polygon"] for n in nails], read_photo(Path(data_dir) / "images" / file_name))
        for nail, rows in zip(nails, table):
            if nail["base"] is None or nail["tip"] is None:
                continue
            d = np.subtract(nail["tip"], nail["base"])
            d = d / max(np.linalg.norm(d), 1e-9)
            axis, features = max(rows, key=lambda row: abs(float(row[0] @ d)))
            if abs(float(axis @ d)) < np.cos(np.radians(45)) or not features.any():
                continue
            xs.append(features)
            ys.append(1.0 if float(axis @ d) > 0 else 0.0)
            groups.append(who)
    return np.array(xs).reshape(-1, len(FEATURES)), np.array(ys), groups


def fit_weights(x, y, l2: float = L2) -> np.ndarray:
    """``TIP_WEIGHTS`` fit on these rows (none: all zero, i.e. no vote)."""
    return fit_logistic(x, y, l2) if len(y) else np.zeros(len(FEATURES))


def leave_one_participant_out(x, y, groups, l2: float = L2) -> float:
    """Accuracy of the per-nail vote, each participant predicted by weights fit on the others."""
    hits = 0
    for who in sorted(set(groups)):
        test = np.array([g == who for g in groups])
        w = fit_weights(x[~test], y[~test], l2)
        hits += int(((x[test] @ w > 0) == (y[test] > 0.5)).sum())
    return hits / len(y)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", default=str(DEMO_LABELS))
    parser.add_argument("--data", default=str(SHARED))
    parser.add_argument("--l2", type=float, default=L2)
    args = parser.parse_args(argv)
    labels, participants = load_labels(args.labels, args.data), load_participants(args.data)
    tuning = tuning_participants(participants.get(name, name) for name in labels)
    x, y, groups = training_rows(labels, args.data, participants, only=set(tuning))
    w = fit_weights(x, y, args.l2)
    single = {name: float(np.mean((x[:, k] * (2 * y - 1)) > 0) + 0.5 * np.mean(x[:, k] == 0))
              for k, name in enumerate(FEATURES)}
    print(json.dumps({"nails": len(y), "participants": len(set(groups)), "tip_at_plus": float(y.mean()),
                      "single_feature_accuracy": single,
                      "lopo_accuracy": leave_one_participant_out(x, y, groups, args.l2),
                      "train_accuracy": float(np.mean((x @ w > 0) == (y > 0.5))),
                      "weights": dict(zip(FEATURES, np.round(w, 3).tolist()))}, indent=2))
    print("TIP_WEIGHTS = np.array([" + ", ".join(f"{v:.3f}" for v in w) + "])")
    return 0


if __name__ == "__main__":
    sys.exit(main())
