"""The finger and base/tip a click proposal comes with (issue #18): how often they are right, without the browser.

    python bench/click_labels.py [--model CHECKPOINT] [--json PATH] [--no-docs]

Click-to-nail gives a new nail its finger and base/tip from ``ml.label_suggestions`` run on the nails known at
that moment (``labeling/click_nail.py``); Enter accepts them confirmed, and the effort bench's annotator then
fixes what is wrong (a finger click; ``X`` for an arrow the wrong way round; ``Shift+T`` at the tip when
aiming the arrow there puts both ends right; else, both ends off by more than 5 % of the nail's length, one
Shift+drag from base to tip (the tool's arrow stroke, since 2026-12-06 noon; before: ``B`` and ``T``), one
end off, ``B`` or ``T``). This bench replays what the tool computes for those labels on the
shared photos, deterministically and in seconds, where ``bench/annotation_effort.py`` drives the real page
(and its outline corrections make run-to-run noise):

- per photo, the nails are clicked left to right (the effort bench's order) at their pole of inaccessibility;
  the nails before are drawn and confirmed with the answers' finger and base/tip;
- the proposal's outline is ``segment_click``'s when it reaches IoU 0.9 with the answer, else the answer's (as
  the annotator's corrective points, drags or redraw would leave it);
- its suggestion is read by the endpoint's own code (``labeling.photos.small_copy``,
  ``labeling.suggestions.suggest_on_small``): the drawn nails' confirmed labels as constraints, with a model its per-nail votes and (``model+context``, the endpoint since
  2026-12-06) the nails its probability shows that are not drawn yet (``ml.click_segmentation.model_context_nails``).

Rows: ``image`` (no model), and with ``--model`` ``model`` (the model's probability and votes, no context) and
``model+context``. Reported per set (held-out participants, ``bench/complete_labels.py``'s ``HELD_OUT``; the
tuning participants, on which the suggestion rules were tuned and the effort bench's model trains): finger right,
both ends within 5 %, label fixes the annotator needs (the effort bench's rule: 0, 1, 2, 3 actions) and their
mean, the first nail of each photo's finger, and the landmark fixes on round nails (length / width < 1.25) apart.
Writes ``docs/results/click_labels.json`` and the ``click_labels`` section of ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.annotation_effort import (aimed_landmarks, finger_ok, iou, landmark_ok, landmarks_ok, load_answers,  # noqa: E402
                                     pole)
from bench.benchdoc import git_commit, log, machine_info, markers, publish_report, setup_django  # noqa: E402
from ml.click_segmentation import model_context_nails, nail_size_from_polygons, segment_click  # noqa: E402
from ml.label_suggestions import SuggestionRules, _measure  # noqa: E402
from ml.nail_votes import nail_votes, shrunk_prediction  # noqa: E402

RESULTS = ROOT / "docs" / "results" / "click_labels.json"
SECTION = "click_labels"
BAR = 0.9                # the effort bench's: an outline under it is corrected before the labels are looked at
ROUND = SuggestionRules().round_aspect


def _aspect(polygon) -> float:
    nail = _measure(0, polygon)  # the suggester's own length and width
    return nail.length / nail.width


def fixes_needed(suggestion_finger, base, tip, answer: dict, polygon=None) -> dict:
    """What the effort bench's annotator does after Enter: a finger click when the finger is wrong; X when
    the arrow is the wrong way round; Shift+T at the answer's tip when both ends are off and aiming the arrow
    there (on the nail's ``polygon``) puts both within the tolerance; else one Shift+drag from the answer's
    base to its tip when both ends are off (``arrow``), B or T when one is (``ends``: the ends still off after
    a swap or an aim; ``landmarks``: the actions for base/tip)."""
    finger = not finger_ok(suggestion_finger, answer)
    swapped = landmark_ok(base, "tip", answer) and landmark_ok(tip, "base", answer) and not landmark_ok(base, "base", answer)
    ends = 0 if swapped else (not landmark_ok(base, "base", answer)) + (not landmark_ok(tip, "tip", answer))
    aimed = aimed_landmarks(polygon, answer["tip"]) if ends == 2 and polygon is not None else None
    aim = aimed is not None and landmarks_ok(*aimed, answer)
    if aim:
        ends = 0
    arrow = ends == 2
    landmarks = int(swapped) + int(aim) + (1 if arrow else ends)
    return {"finger": int(finger), "swap": int(swapped), "aim": int(aim), "arrow": int(arrow), "ends": ends,
            "landmarks": landmarks, "actions": int(finger) + landmarks}


def _endpoint():
    """``(small_copy, suggest_on_small)``: the click endpoint's own photo shrinking and suggestion call
    (labeling/photos.py, labeling/suggestions.py; Django apps, so Django is set up first)."""
    setup_django()
    from labeling.photos import small_copy
    from labeling.suggestions import suggest_on_small

    return small_copy, suggest_on_small


def measure_photo(photo: dict, predictor=None) -> list[dict]:
    """One record per answer nail: for each row (image; model and model+context with a predictor) the
    suggestion's finger and ends and the fixes they need."""
    small_copy, suggest_on_small = _endpoint()
    rgb = cv2.cvtColor(cv2.imread(photo["path"]), cv2.COLOR_BGR2RGB)
    height, width = rgb.shape[:2]
    small, scale = small_copy(rgb)
    fg = prediction = grid = None
    if predictor is not None:
        from ml.predict import foreground_at

        prediction, grid = shrunk_prediction(predictor, rgb)
        fg = foreground_at(prediction.fg_prob.astype(np.float16), height, width)
    answers = photo["nails"]
    order = sorted(range(len(answers)), key=lambda i: pole(answers[i]["polygon"])[0])
    drawn: list[int] = []
    records = []
    rows = ["image"] + (["model", "model+context"] if predictor is not None else [])
    for i in order:
        answer = answers[i]
        polygons = [answers[j]["polygon"] for j in drawn]
        known = [{"finger": answers[j]["finger"], "base": answers[j]["base"], "tip": answers[j]["tip"]} for j in drawn]
        record = {"photo": photo["file_name"], "nail": i, "participant": photo["participant"],
                  "held_out": photo["held_out"], "drawn_before": len(drawn),
                  "round": _aspect(answer["polygon"]) < ROUND}
        outlines = {}  # per probability (image only, the model's): the outline the labels are read on, the click's IoU
        for source, prob in (("image", None), ("model", fg))[:1 + (fg is not None)]:
            result = segment_click(rgb, [(*pole(answer["polygon"]), 1)], nail_size=nail_size_from_polygons(polygons),
                                   fg_prob=prob)
            value = iou(result.polygon, answer["polygon"]) if result.polygon else 0.0
            outlines[source] = (result.polygon if value >= BAR else answer["polygon"], value)
        for row in rows:
            prob = fg if row != "image" else None
            outline, outline_iou = outlines["image" if prob is None else "model"]
            unseen = model_context_nails(prob, polygons + [outline]) if row == "model+context" else []
            everything = polygons + [outline] + unseen
            votes = (nail_votes(everything, prediction.class_prob, prediction.field, prediction.fg_prob, scale=grid)
                     if row != "image" else None)
            suggestion = suggest_on_small(everything, known + [None] * (1 + len(unseen)), small, scale,
                                          votes)[len(polygons)]
            record[row] = {"outline_iou": round(outline_iou, 4), "context_nails": len(unseen),
                           "suggested_finger": suggestion.finger, "confidence": round(suggestion.confidence, 3),
                           **fixes_needed(suggestion.finger, suggestion.base, suggestion.tip, answer, outline)}
        records.append(record)
        drawn.append(i)
    return records


def summarize(records: list[dict], row: str) -> dict:
    rows = [r for r in records if row in r]
    if not rows:
        return {"nails": 0}
    fixes = Counter(r[row]["actions"] for r in rows)
    firsts = [r for r in rows if r["drawn_before"] == 0]
    round_ = [r for r in rows if r["round"]]
    return {"nails": len(rows), "finger_right": sum(not r[row]["finger"] for r in rows),
            "ends_right": sum(r[row]["ends"] == 0 and not r[row]["swap"] and not r[row]["aim"] for r in rows),
            "no_fix": fixes[0], "fixes": {str(k): fixes[k] for k in sorted(fixes)},
            "fix_actions_mean": round(statistics.fmean(r[row]["actions"] for r in rows), 3),
            "first_nail_finger_right": sum(not r[row]["finger"] for r in firsts), "first_nails": len(firsts),
            "round_nails": len(round_),
            "landmark_actions_round": sum(r[row]["landmarks"] for r in round_),
            "landmark_actions_other": sum(r[row]["landmarks"] for r in rows if not r["round"]),
            "aims": sum(r[row]["aim"] for r in rows), "arrows": sum(r[row]["arrow"] for r in rows)}


def render(report: dict) -> str:
    start, end = markers(SECTION)
    m = report["machine"]
    lines = [start, "## The labels a click proposal comes with (`bench/click_labels.py`, issue #18)", "",
             f"Measured {report['when']} in {report['total_s']:.0f} s with `{report['command']}` (commit "
             f"{report['commit']}); {m['cpu']}, {m['nproc']} CPUs. Model: {report['model'] or 'none'}.", "",
             "Per nail, clicked left to right with the nails before it drawn and confirmed, the finger and base/tip "
             "the proposal comes with, against the project's confirmed labels: what the effort bench's annotator "
             "must fix after Enter (1 action for a wrong finger, 1 for an arrow the wrong way round, 1 (Shift+T) for "
             "an arrow that only needs aiming at the tip, else 1 (a Shift+drag from base to tip) when both ends are off by more than 5 % of the nail's length, 1 (B or T) when one is). Outlines under IoU 0.9 are taken as corrected (the "
             "answer's). Tuning participants: the suggestion rules were tuned and the model trained on them.", "",
             "| set | row | nails | finger right | both ends right | nothing to fix | fix actions (mean) "
             "| first nail's finger right | landmark actions: round nails / others |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for subset, label in (("held_out", "held-out participants"), ("tuning", "tuning participants")):
        for row, s in report["summary"][subset].items():
            if not s["nails"]:
                continue
            n = s["nails"]
            pct = lambda k: f"{s[k]} ({100 * s[k] / n:.1f} %)"  # noqa: E731
            lines.append(f"| {label} | {row} | {n} | {pct('finger_right')} | {pct('ends_right')} | {pct('no_fix')} "
                         f"| {s['fix_actions_mean']:.2f} | {s['first_nail_finger_right']} of {s['first_nails']} "
                         f"| {s['landmark_actions_round']} ({s['round_nails']} nails) / {s['landmark_actions_other']} "
                         f"({n - s['round_nails']} nails) |")
    lines += ["", f"Per nail: `{RESULTS.relative_to(ROOT)}`.", end, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a checkpoint: adds the model rows")
    parser.add_argument("--json", default=str(RESULTS))
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    predictor = None
    if args.model:
        from ml.predict import Predictor

        predictor = Predictor.from_checkpoint(args.model, threads=2)
    records = []
    for photo in load_answers():
        records += measure_photo(photo, predictor)
        log(f"{photo['file_name']}: {len(photo['nails'])} nails")
    rows = ["image"] + (["model", "model+context"] if predictor is not None else [])
    report = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine_info(),
              "commit": git_commit() or "?", "model": args.model,
              "summary": {subset: {row: summarize([r for r in records if r["held_out"] == (subset == "held_out")], row)
                                   for row in rows} for subset in ("held_out", "tuning")},
              "nails": records}
    publish_report(report, started, "bench/click_labels.py", argv, render, SECTION, args.json, args.no_docs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
