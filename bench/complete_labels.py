"""How well ml.label_suggestions completes polygon-only labels (issue #16), measured on confirmed labels.

    python bench/complete_labels.py [--labels curation/demo/nails-cc0-labels.json] [--data ../shared/data/nails-cc0]
                                    [--held-out] [--no-cv] [--no-docs] [--model CHECKPOINT ...] [--json PATH]
    python bench/complete_labels.py --from-json PATH     # the docs of a run made elsewhere (bench/gpu_session.py)

``--labels``: the project's confirmed labels of the shared photos (default; ``curation/demo_labels.py``), or a
COCO file of the shared photos in which every annotation carries its finger as its category
(``left_thumb`` .. ``right_little``, or ids 1..10 as ``dataset/formats/coco.py`` writes them) and
``keypoints`` ``[base_x, base_y, 2, tip_x, tip_y, 2]``. Each photo's polygons and the photo alone go into
:func:`ml.label_suggestions.suggest_labels`; the suggestions are compared with the confirmed labels: hand,
digit and finger accuracy, the base -> tip angle error (median, 95th percentile, share within 30 degrees)
and accuracy per confidence band.

Honest measurement: ``HELD_OUT`` is a fixed set of participants whose photos, sheets and per-nail results are
never looked at while tuning; every other participant is a tuning participant (``tuned_on``): the rules were
tuned, and the learned weights (``ml/nail_direction.py``, ``bench/fit_label_suggestions.py``) fit, on these
only. The bench reports the tuning participants with the trained network, a participant-grouped 5-fold
cross-validation over them (the network retrained without the fold being scored), and only with
``--held-out`` the held-out participants (for the final figures: ``HELD_OUT_RUNS`` says how often that
was done). ``--model CHECKPOINT ...`` adds rows with each trained model's per-nail votes (``ml.nail_votes``) weighed
in, and the votes' own accuracy; train it on the tuning participants only (``bench/annotation_effort.py``'s
``train_model`` does). Writes ``docs/results/complete_labels.json`` and the ``complete_labels`` section of
``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import functools
import csv
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from dataset.geometry import FINGER_NAMES  # noqa: E402
from curation.demo_labels import DEMO_LABELS, merge_into_coco  # noqa: E402
from ml.label_suggestions import SuggestionRules, hand_and_digit, short_name, suggest_labels  # noqa: E402
from ml.nail_votes import predict_nail_votes  # noqa: E402

from bench.benchdoc import fmt, machine_info, markers, write_section  # noqa: E402  (importable from tests too)

SHARED = ROOT.parent / "shared" / "data" / "nails-cc0"
RESULTS = ROOT / "docs" / "results" / "complete_labels.json"
SECTION = "complete_labels"
# The held-out participants, fixed: the seeded third (seed 16) that ``held_out`` chose of the participants
# other than the four whose sheets the first rules were tuned on by eye. Their photos, sheets and per-nail
# results are never looked at while tuning; every other participant is a tuning participant (``tuned_on``).
HELD_OUT = ("single-41d83dbb", "single-869cda2e", "single-964c11f9", "single-9abd7cb9", "single-abd5ab5c",
            "single-bf93c2e2", "single-c03527e3", "uuid1-e05f-11e8-87a6-0242ac1c0002")
FIRST_TUNED_ON = ("uuid1-db67-11e8-9658-0242ac1c0002", "single-1eecab90", "single-4252e46c", "single-34404e67")
HOLDOUT_SHARE = 1 / 3
# How many times the held-out figures were computed (--held-out): 3 while the hand-set rules were tuned (we kept
# to at most 3), the 4th once the photo's direction vote became ml.nail_direction's network (nothing changed after),
# the 5th once a thumb could point against the fingers and round finger nails took the finger-axis network's axis
# (both chosen on the tuning participants' cross-validation; nothing changed after). After the 5th, the same
# figures were recomputed with a model's votes (the doc's model rows), and once more with that model's class votes
# off as a check (written in the doc by hand); neither changed a rule. The 6th: once the weights of a model's votes
# were chosen by bench/fit_model_votes.py's cross-validation (per-fold models), with a model of the same budget
# trained on all tuning participants; nothing changed after.
HELD_OUT_RUNS = 6
BANDS = ((0.0, 0.5), (0.5, 0.8), (0.8, 1.01))
MODEL_NAMES = "ABCDEFGH"  # the models of --model, in the doc's rows
LABEL_TO_FINGER = {name.replace(" ", "_"): k for k, name in FINGER_NAMES.items()}


def load_labels(path, data_dir=SHARED) -> dict[str, list[dict]]:
    """``{file_name: [{"polygon", "finger", "base", "tip"}, ...]}`` from a COCO file (crowd annotations,
    i.e. ignore regions, are skipped; a category that is no finger gives ``finger: None``), or from the
    project's demo label file (``curation/demo_labels.py``: fingers and base/tip by annotation id of
    ``data_dir``'s COCO file, merged into it)."""
    data = json.loads(Path(path).read_text())
    if isinstance(data.get("images"), dict):  # the demo label file: no polygons of its own
        data = merge_into_coco(json.loads((Path(data_dir) / "annotations.coco.json").read_text()), data)
    fingers = {}
    for cat in data.get("categories", []):
        name = str(cat.get("name", ""))
        finger = LABEL_TO_FINGER.get(name.lower().replace(" ", "_"))
        fingers[cat["id"]] = finger
    images = {img["id"]: img["file_name"] for img in data["images"]}
    out: dict[str, list[dict]] = {name: [] for name in images.values()}
    for ann in data["annotations"]:
        if ann.get("iscrowd"):
            continue
        seg = ann.get("segmentation")
        if not isinstance(seg, list) or not seg:
            continue
        flat = max(seg, key=len)
        polygon = np.asarray(flat, np.float64).reshape(-1, 2).tolist()
        base = tip = None
        kp = ann.get("keypoints") or []
        if len(kp) >= 6 and kp[2] > 0 and kp[5] > 0:
            base, tip = [float(kp[0]), float(kp[1])], [float(kp[3]), float(kp[4])]
        out[images[ann["image_id"]]].append({"polygon": polygon, "finger": fingers.get(ann.get("category_id")),
                                             "base": base, "tip": tip})
    return out


def load_participants(data_dir) -> dict[str, str]:
    path = Path(data_dir) / "participants.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as fh:
        return {row["file_name"]: row["participant"] for row in csv.DictReader(fh)}


def held_out(participants, seed: int, tuned_on=FIRST_TUNED_ON) -> list[str]:
    """A seeded third of the participants not in ``tuned_on`` (sorted); with seed 16 on the shared photos'
    participants this is ``HELD_OUT``."""
    candidates = sorted(set(participants) - set(tuned_on))
    rng = np.random.default_rng(seed)
    k = max(1, round(len(candidates) * HOLDOUT_SHARE)) if candidates else 0
    return sorted(rng.choice(candidates, size=k, replace=False).tolist()) if k else []


def tuning_participants(participants, held=HELD_OUT) -> list[str]:
    """Every participant not held out (sorted): the rules and the learned weights are fit on these."""
    return sorted(set(participants) - set(held))


@functools.lru_cache(maxsize=64)
def read_photo(path) -> np.ndarray | None:
    """A shared photo as RGB, decoded once per run (the tuning rows, the cross-validation and the held-out
    comparison all read the same photos); read-only, as it is shared."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    rgb.setflags(write=False)
    return rgb


def angle_between(a_base, a_tip, b_base, b_tip) -> float:
    u = np.subtract(a_tip, a_base)
    v = np.subtract(b_tip, b_base)
    nu, nv = np.linalg.norm(u), np.linalg.norm(v)
    if nu == 0 or nv == 0:
        return 180.0
    return math.degrees(math.acos(float(np.clip(u @ v / nu / nv, -1, 1))))


def compare(labels: dict[str, list[dict]], data_dir, participants: dict[str, str], only=None,
            rules_for=None, predictor=None, votes=None) -> list[dict]:
    """One record per confirmed nail: truth, suggestion, confidences, angle error. ``only``: the participants
    whose photos are read (None: all); ``rules_for(participant)``: the ``SuggestionRules`` to use (None:
    the defaults); ``predictor`` (an ``ml.predict.Predictor``): its per-nail votes (``ml.nail_votes``) go to
    the suggester, and each record also gets the model's own finger (``model_finger``: the votes' argmax)
    and angle error (``model_angle_error``); ``votes``: instead, ``{file name: per-nail votes}`` computed before
    (each photo's by a model that never saw its participant, ``bench/fit_model_votes.py``)."""
    records = []
    for file_name, nails in sorted(labels.items()):
        who = participants.get(file_name, file_name)
        if not nails or (only is not None and who not in only):
            continue
        image = read_photo(Path(data_dir) / "images" / file_name)
        rules = rules_for(who) if rules_for else None
        polygons = [n["polygon"] for n in nails]
        if votes is not None:
            photo_votes = votes.get(file_name)
        else:
            photo_votes = predict_nail_votes(predictor, image, polygons) if predictor is not None and image is not None else None
        suggestions = suggest_labels(polygons, image, rules=rules, model_votes=photo_votes)
        for k, (nail, s) in enumerate(zip(nails, suggestions)):
            rec = {"file_name": file_name, "nail": k, "participant": who,
                   "finger": nail["finger"], "suggested": s.finger, "confidence": s.confidence,
                   "direction_confidence": s.direction_confidence, "angle_error": None}
            if nail["base"] is not None and nail["tip"] is not None:
                rec["angle_error"] = angle_between(nail["base"], nail["tip"], s.base, s.tip)
            vote = photo_votes[k] if photo_votes else None
            if vote and vote.get("finger_probs"):
                rec["model_finger"] = int(np.argmax(vote["finger_probs"])) + 1
                probs = np.asarray(vote["finger_probs"])
                rec["model_digit"] = int(np.argmax(probs[:5] + probs[5:])) + 1  # whichever the hand
            if vote and vote.get("direction") and rec["angle_error"] is not None:
                rec["model_angle_error"] = angle_between(nail["base"], nail["tip"], [0.0, 0.0], vote["direction"])
            records.append(rec)
    return records


def cross_validate(labels: dict[str, list[dict]], data_dir, participants: dict[str, str], tuning) -> list[dict]:
    """Participant-grouped k-fold over the tuning participants (``bench/fit_label_suggestions.py``'s folds):
    each fold's photos are suggested with the learned part (``ml.nail_direction``'s network) trained on the
    other folds' participants only."""
    from bench.fit_label_suggestions import fold_rules  # it imports this module

    rules_for = fold_rules(labels, participants, tuning, data_dir)
    return compare(labels, data_dir, participants, only=set(tuning), rules_for=rules_for)


def _bands(pairs) -> list[dict]:
    out = []
    for lo, hi in BANDS:
        hits = [ok for conf, ok in pairs if lo <= conf < hi]
        out.append({"band": f"{lo:g}-{min(hi, 1):g}", "nails": len(hits),
                    "accuracy": (sum(hits) / len(hits)) if hits else None})
    return out


def expected_calibration_error(pairs, bins: int = 10) -> float:
    """Mean |accuracy - mean confidence| over equal-width confidence bins, weighted by their nails."""
    pairs = list(pairs)
    total = 0.0
    for k in range(bins):
        sel = [(c, ok) for c, ok in pairs if k / bins <= c < (k + 1) / bins or (k == bins - 1 and c >= 1)]
        if sel:
            total += len(sel) * abs(np.mean([ok for _, ok in sel]) - np.mean([c for c, _ in sel]))
    return total / len(pairs) if pairs else 0.0


def metrics(records: list[dict]) -> dict:
    labelled = [r for r in records if r["finger"] is not None]
    with_dir = [r for r in records if r["angle_error"] is not None]
    out = {"nails": len(records), "images": len({r["file_name"] for r in records}),
           "participants": len({r["participant"] for r in records}), "with_finger": len(labelled),
           "with_direction": len(with_dir)}
    if labelled:
        def acc(test):
            return sum(1 for r in labelled if r["suggested"] is not None and test(r)) / len(labelled)
        out["hand_accuracy"] = acc(lambda r: hand_and_digit(r["suggested"])[0] == hand_and_digit(r["finger"])[0])
        out["digit_accuracy"] = acc(lambda r: hand_and_digit(r["suggested"])[1] == hand_and_digit(r["finger"])[1])
        out["finger_accuracy"] = acc(lambda r: r["suggested"] == r["finger"])
        out["finger_by_confidence"] = _bands([(r["confidence"], r["suggested"] == r["finger"]) for r in labelled])
        out["finger_ece"] = expected_calibration_error([(r["confidence"], r["suggested"] == r["finger"])
                                                        for r in labelled])
    if with_dir:
        errors = np.array([r["angle_error"] for r in with_dir])
        out["angle_median"] = float(np.median(errors))
        out["angle_p95"] = float(np.percentile(errors, 95))
        out["within_30"] = float(np.mean(errors <= 30))
        out["direction_by_confidence"] = _bands([(r["direction_confidence"], r["angle_error"] <= 30)
                                                 for r in with_dir])
        out["direction_ece"] = expected_calibration_error([(r["direction_confidence"], r["angle_error"] <= 30)
                                                           for r in with_dir])
    voted = [r for r in labelled if r.get("model_finger") is not None]
    if voted:  # the model's votes alone (their argmax), beside the suggestions that weigh them
        out["model_finger_accuracy"] = sum(r["model_finger"] == r["finger"] for r in voted) / len(voted)
        out["model_digit_accuracy"] = sum(r["model_digit"] == hand_and_digit(r["finger"])[1] for r in voted) / len(voted)
    field = [r["model_angle_error"] for r in with_dir if r.get("model_angle_error") is not None]
    if field:
        out["model_within_30"] = float(np.mean(np.array(field) <= 30))
    return out


def evaluate(labels_path, data_dir=SHARED, held=HELD_OUT, *, show_held_out: bool = False,
             cross_validation: bool = True, models=()) -> dict:
    """The bench's figures (no files written): on the tuning participants (everyone not in ``held``) with
    the trained network, their participant-grouped cross-validation, and only with ``show_held_out``
    the held-out participants' figures (their photos are not even read otherwise)."""
    labels = load_labels(labels_path, data_dir)
    participants = load_participants(data_dir)
    everyone = sorted({participants.get(name, name) for name, nails in labels.items() if nails})
    held = sorted(set(held) & set(everyone))
    tuning = tuning_participants(everyone, held)
    started = time.perf_counter()
    records = compare(labels, data_dir, participants, only=set(tuning))
    seconds = time.perf_counter() - started
    cv = cross_validate(labels, data_dir, participants, tuning) if cross_validation else []
    held_records = compare(labels, data_dir, participants, only=set(held)) if show_held_out else []
    checked = json.loads(Path(labels_path).read_text()).get("checked_by_eye")
    voted = []
    for model in models:  # the same comparison with each model's per-nail votes (rules unchanged)
        from ml.predict import Predictor

        predictor = Predictor.from_checkpoint(model, threads=2)
        entry = {"checkpoint": str(model), **training_info(Path(model)),
                 "tuning": metrics(compare(labels, data_dir, participants, only=set(tuning), predictor=predictor))}
        if show_held_out:
            entry["held_out"] = metrics(compare(labels, data_dir, participants, only=set(held), predictor=predictor))
            entry["held_out_segmentation"] = held_out_segmentation(model, data_dir)
        voted.append(entry)
    return {"labels": str(labels_path), "data": str(data_dir), "checked_by_eye": checked, "models": voted,
            "tuned_on": tuning, "held_out": held, "seconds": seconds,
            "tuning": metrics(records), "cross_validation": metrics(cv) if cv else None,
            "held_out_metrics": metrics(held_records) if show_held_out else None,
            "all": metrics(records + held_records) if show_held_out else None,
            "records": records + held_records, "cross_validation_records": cv}


def held_out_segmentation(checkpoint, data_dir=SHARED, size: int = 480) -> dict:
    """The model's own figures on the held-out participants' photos (``ml.evaluate.evaluate`` on their masks
    export at long side ``size``): binary mIoU, nail IoU, per-finger IoU and the direction field's error."""
    import tempfile

    from bench.annotation_effort import masks_export  # it imports this module
    from ml.evaluate import evaluate as evaluate_model

    with tempfile.TemporaryDirectory() as tmp:
        masks, photos, nails = masks_export(Path(tmp), held_out=True, data_dir=Path(data_dir))
        report = evaluate_model(checkpoint, masks, split="test", sizes=(size,), threads=2)
    scores = report["sizes"][size]
    return {"size": size, "photos": photos, "nails": nails,
            **{k: scores.get(k) for k in ("miou", "nail_iou", "finger_iou", "finger_miou", "direction_error_deg")}}


def training_info(checkpoint: Path) -> dict:
    """What ``bench/annotation_effort.py``'s ``train_model`` wrote beside the checkpoint's run (budget,
    photos, wall time), when it is there."""
    for folder in checkpoint.parents[:3]:
        info = folder / "training.json"
        if info.is_file():
            data = json.loads(info.read_text())
            return {k: data[k] for k in ("budget", "photos", "nails", "wall_s", "device", "status", "epochs_completed") if k in data}
    return {}


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def section(result: dict, command: str) -> str:
    start, end = markers(SECTION)
    lines = [start, "## Completing polygon-only labels (`bench/complete_labels.py`, issue #16)", "",
             f"Command: `{command}`. Machine: {(result.get('machine') or machine_info())['cpu']}. Suggestions from polygons + photo only "
             f"(`ml.label_suggestions.suggest_labels`), compared with the confirmed labels in `{result['labels']}`.",
             f"Held out (fixed; never looked at while tuning): {', '.join(result['held_out']) or '-'}. Tuned on "
             f"(rules, and the networks of `ml/nail_direction.py`, tip and finger axis, trained by "
             f"`bench/fit_label_suggestions.py`): "
             f"every other participant ({len(result['tuned_on'])}). The held-out figures were computed "
             f"{HELD_OUT_RUNS} time(s) in all: 3 while the hand-set rules were tuned, the 4th once the photo's direction vote "
             f"became a network (trained on the tuning participants only), the 5th once a thumb could point against the "
             f"fingers and round finger nails took the finger-axis network's axis (both chosen on the tuning participants' "
             f"cross-validation), nothing changed after either (after the 5th: the model rows, and one check with the "
             f"model's class votes off, written by hand below), the 6th once the weights of a model's votes "
             f"(`model_weight`, `model_digit_weight`, `model_direction_weight`) were chosen by "
             f"`bench/fit_model_votes.py`'s cross-validation on the tuning participants (each fold's votes from a "
             f"model trained without it), with a model of that budget trained on all of them; nothing changed after. "
             f"The cross-validation retrains only the "
             f"networks (tip and finger axis) per fold of participants (5 folds); the hand-set rules (`SuggestionRules`) "
             f"were tuned on all tuning participants, so it is close to the tuning figure and the held-out row is the "
             f"honest one.", "",
             "| set | nails | hand | digit | finger | angle median | angle p95 | within 30 deg |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    rows = [("tuning participants (network trained on them)", result.get("tuning")),
            ("tuning, participant-grouped 5-fold", result.get("cross_validation")),
            ("held-out participants", result.get("held_out_metrics")), ("all photos", result.get("all"))]
    for k, model in enumerate(result.get("models") or []):
        rows += [(f"tuning, + votes of model {MODEL_NAMES[k]} (trained on them)", model.get("tuning")),
                 (f"held-out participants, + votes of model {MODEL_NAMES[k]}", model.get("held_out"))]
    for name, m in rows:
        if not m:
            continue
        lines.append(f"| {name} | {m['nails']} | {_pct(m.get('hand_accuracy'))} | {_pct(m.get('digit_accuracy'))} | "
                     f"{_pct(m.get('finger_accuracy'))} | {fmt(m.get('angle_median'))} | {fmt(m.get('angle_p95'))} | "
                     f"{_pct(m.get('within_30'))} |")
    from bench.annotation_effort import describe_budget  # it imports this module

    rules = SuggestionRules()
    for k, model in enumerate(result.get("models") or []):
        lines += ["", f"Model {MODEL_NAMES[k]} (`ml.nail_votes`, `--model`): `{model['checkpoint']}`"
                  + (f", trained by `bench/annotation_effort.py`'s `train_model` ({describe_budget(model)}, "
                     f"{model.get('wall_s')} s) on the {model.get('photos')} "
                     f"photos of the tuning participants with their confirmed fingers and base/tip"
                     if model.get("budget") else "")
                  + f". The rules were not changed for it (its votes weighed as `SuggestionRules` says: `model_weight` "
                  f"{rules.model_weight:g}, `model_digit_weight` {rules.model_digit_weight:g}, `model_direction_weight` "
                  f"{rules.model_direction_weight:g}). Its votes alone (argmax of its class head over "
                  "the nail, of the digit whichever the hand; its direction field's mean): "
                  + "; ".join(f"{name}: finger {_pct(model[key].get('model_finger_accuracy'))}, digit "
                              f"{_pct(model[key].get('model_digit_accuracy'))}, within 30 deg "
                              f"{_pct(model[key].get('model_within_30'))}"
                              for name, key in (("tuning", "tuning"), ("held out", "held_out")) if model.get(key))
                  + "."]
        seg = model.get("held_out_segmentation")
        if seg:
            per_finger = seg.get("finger_iou") or {}
            lines += ["", f"Model {MODEL_NAMES[k]} on the held-out participants' {seg['photos']} photos ({seg['nails']} "
                          f"nails; `ml.evaluate`, long side {seg['size']}): binary mIoU {_pct(seg.get('miou'))}, nail IoU "
                          f"{_pct(seg.get('nail_iou'))}, mean per-finger IoU {_pct(seg.get('finger_miou'))}, direction "
                          f"error {fmt(seg.get('direction_error_deg'))} deg (mean over the nails' pixels); per finger: "
                          + (", ".join(f"{short_name(int(f))} {_pct(v)}" for f, v in sorted(per_finger.items(),
                                                                                          key=lambda kv: int(kv[0])))
                             or "-") + "."]
    checked = result.get("checked_by_eye")
    if checked:
        lines += ["", f"When the labels were checked by eye against every photo (the first accuracy figure, before any "
                      f"tuning on them), {checked['finger_changed']} of {checked['nails']} suggested fingers and "
                      f"{checked['direction_changed']} of {checked['nails']} suggested directions were changed; "
                      f"{checked['both_ok']} nails kept both finger and direction (within 30 deg)."]
    lines += ["", "Accuracy by confidence band (finger: `confidence`; direction within 30 deg: "
              "`direction_confidence`), nails in the band in brackets:", "",
              "| set | what | " + " | ".join(f"{lo:g}-{min(hi, 1):g}" for lo, hi in BANDS) + " | ECE |",
              "| --- | --- |" + " --- |" * (len(BANDS) + 1)]
    banded = [("tuning, cross-validated", result.get("cross_validation")), ("held out", result.get("held_out_metrics"))]
    banded += [(f"held out, + votes of model {MODEL_NAMES[k]}", model.get("held_out"))
               for k, model in enumerate(result.get("models") or [])]
    for name, m in banded:
        if not m:
            continue
        for what, band_key in (("finger", "finger_by_confidence"), ("direction", "direction_by_confidence")):
            bands = m.get(band_key) or []
            cells = [f"{_pct(b['accuracy'])} ({b['nails']})" for b in bands] or ["-"] * len(BANDS)
            ece = m.get(f"{what}_ece")
            lines.append(f"| {name} | {what} | " + " | ".join(cells) + f" | {fmt(ece, 3)} |")
    lines += ["", f"Targets (issue #16, held out): finger >= 90 %, within 30 deg >= 95 %, low confidence where "
              f"wrong. Written {time.strftime('%Y-%m-%d')}; full figures in `docs/results/complete_labels.json`.",
              end, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--labels", default=str(DEMO_LABELS.relative_to(ROOT)),
                        help="confirmed labels: the demo label file (default) or a COCO file (finger categories + "
                             "base/tip keypoints)")
    parser.add_argument("--data", default=str(SHARED), help="folder with images/ and participants.csv")
    parser.add_argument("--held-out", action="store_true",
                        help="also suggest and score the held-out participants' photos (only for the final figures)")
    parser.add_argument("--no-cv", action="store_true", help="skip the participant-grouped cross-validation")
    parser.add_argument("--no-docs", action="store_true", help="print only; write neither the JSON nor the doc")
    parser.add_argument("--json", help="also write the full result here (with its command and machine), e.g. on "
                                       "the GPU machine (bench/gpu_session.py)")
    parser.add_argument("--from-json", help="measure nothing: write docs/results/complete_labels.json and the doc "
                                            "section of a result that --json saved (elsewhere)")
    parser.add_argument("--model", nargs="+", default=[],
                        help="checkpoints whose per-nail votes (ml.nail_votes) are also weighed, each in turn: adds the "
                             "rows '+ votes of model A' (B, ...); train them on the tuning participants only")
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
    else:
        result = evaluate(args.labels, args.data, show_held_out=args.held_out, cross_validation=not args.no_cv,
                          models=args.model)
        result["command"] = "python bench/complete_labels.py " + " ".join(argv if argv is not None else sys.argv[1:])
        result["machine"] = machine_info()
    summary = {k: v for k, v in result.items() if not k.endswith("records")}
    print(json.dumps(summary, indent=2))
    if args.json and not args.from_json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if not args.no_docs:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        write_section(SECTION, section(result, result["command"].strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
