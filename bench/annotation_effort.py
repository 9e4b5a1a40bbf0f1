#!/usr/bin/env python
"""Annotator effort (issue #18): what the tool saves, in actions and seconds per finished nail.

    .venv/bin/python bench/annotation_effort.py --work /tmp/effort      # image-only modes + model modes; docs
    .venv/bin/python bench/annotation_effort.py --quick --no-docs      # 1 synthetic photo, 2 nails (~1 min)

A simulated annotator labels photos whose answers are known (the 40 shared nails-cc0 photos with the project's
confirmed fingers and base/tip, ``curation/demo/nails-cc0-labels.json``) in the real annotation tool
(``/annotate/<id>/``) in headless Chromium (Playwright + Debian's ``/usr/bin/chromium``), against a scratch
embedded instance (SQLite, Django's live-server thread in this process). Every photo is labelled once per mode
(each mode on its own copy of the photos): **scratch** (polygon tool), **drafts** (correcting a model's
pre-labeling drafts), **click** (click-to-nail, image-only: no model active) and **click+model** (click-to-nail
with the trained model active). Model modes need ``--model CHECKPOINT`` or a model trained by ``--train``
(``ml.train.train`` on the photos of the participants NOT held out; budget in ``TRAIN_BUDGET``).

Rules of the simulated annotator (fixed; the numbers follow from them):

* It never thinks: seconds per nail are the time its actions on the nail took in the page (Playwright's input
  events until the page handled them) plus the waits for the click-to-nail answers and, before it reads a nail's
  suggested finger and base/tip, for the label suggestions of the nails as they are: the tool's and server's
  latency, not an annotator's time (its own reading of the page and geometry sums are left out; autosave is
  not awaited).
* Actions counted: every click, drag, wheel notch and key press sent to the page (a Ctrl/Shift+click and a Shift+drag are one each).
* Zoom: before drawing an outline or dragging vertices of a nail whose longer side is under ``MIN_NAIL_PX``
  on screen, one wheel notch (x1.82) at the nail per action until it is not (at most 5), then one middle-drag
  that brings the nail to the middle if part of it left the screen; ``F`` (fit) after the outline or drags.
* Outline from scratch: ``N``, then one click per vertex of the answer's polygon simplified (Douglas-Peucker,
  shapely) with the largest tolerance whose polygon, as the clicks land on whole screen pixels, has IoU >= 0.9
  with the answer (``BAR``); ``Enter`` closes it.
* Finger from scratch: 1 click on the finger in the two-hands panel; base/tip: the mouse on the answer's base
  and ``B``, on its tip and ``T`` (pointing is no action; of a nail whose base and tip are set and confirmed,
  only the one off by more than ``LANDMARK_TOL``); ``X`` (swap base and tip) instead when the nail's arrow
  points the wrong way (its base and tip swapped are right); ``Shift+T`` with the mouse on the answer's tip
  (aim the arrow: base and tip on the nail's axis through its centroid towards the mouse) instead of both ``B``
  and ``T`` when that puts both within the tolerance (since 2026-12-06); else, when both are to be placed, one
  Shift+drag from the answer's base to its tip (the tool's arrow stroke, since 2026-12-06 noon) instead of
  ``B`` and ``T`` (unless it spans under ``DRAG_THRESHOLD_PX`` on screen).
* Finger/base/tip of a nail that shows a suggestion (dashed: the draft's or the server's label suggestion; a
  click proposal's finger and base/tip come confirmed with its ``Enter``): ``G`` when the suggested finger or the suggested base/tip is right (finger equal, base and
  tip within ``LANDMARK_TOL`` of the nail's base-tip length), then the scratch rule for what is still wrong.
* Tools: ``N`` before each outline, ``V`` before drags or a selecting click when another
  tool is on (each a key press).
* Drafts: the page shows the draft nails the model is sure of as nails and proposes the others (outline
  confidence under ``prelabel.proposals.PROPOSE_BELOW``; ghosted, the first one selected). Each answer nail is
  matched to a draft nail, shown or proposed (greedy, best IoU first, IoU >= 0.1). Draft nails matching no
  answer (or one below 0.5) go first: a shown one is deleted (a click + ``Delete``), a proposed one rejected
  (``Delete`` when it is the selected proposal, else it is selected first + ``Delete``). Then per answer nail,
  left to right: a matched proposed nail (IoU >= 0.5) is accepted (selected unless it is the selected proposal,
  ``Enter``) and is then a shown one. A proposal is selected with ``P`` (``Shift+P``) when it is the next
  (previous) one of the selected proposal (with none selected: the first, the last), else with a click in it
  (then ``P`` until it is selected, when the click missed it). A shown one at IoU >= 0.9 is kept (a click
  selects it, none after an accept); at IoU >= 0.5, vertex drags, each the drag of the vertex whose move onto the nearest
  point of the answer's outline gains the most IoU, until IoU >= 0.9 or after ``MAX_DRAGS`` drags or when no
  drag gains ``MIN_GAIN``: then it is deleted (``Esc``, ``Delete``) and redrawn from scratch; below 0.5 or
  unmatched: redrawn from scratch.
* Click-to-nail: a Ctrl+click at the answer's pole of inaccessibility; while the proposal's IoU < 0.9, up to
  ``MAX_POINTS`` corrective points: an Alt+click (a positive point, which the tool takes anywhere) at the pole
  of the biggest region the proposal missed when that region is at least 2 % of the nail, else a Shift+click
  (a negative point) at the pole of the biggest region it has too much (at least 2 % of the nail); no point
  when neither is. ``Enter`` accepts it at IoU >= 0.9; at IoU >= 0.5 ``Enter`` and the drafts' drag rule
  (an accepted proposal is corrected like a draft, redrawn when the drags do not reach the bar); below 0.5
  (or no proposal) ``Esc`` and the scratch rule for the outline. Then the suggestion rule (after an ``Enter``
  on a proposal: only the scratch rule for a finger or base/tip that is wrong).
* Check: after the autosave, the annotation is read back through the API (``GET /api/images/<id>/annotation/``);
  each answer nail is matched to a saved nail (greedy IoU); it is finished when IoU >= 0.9, the finger is the
  answer's, base and tip are within ``LANDMARK_TOL`` of the answer's base-tip length and nothing is still only
  suggested. Actions and time are summed per answer nail (deleting spurious drafts counts to the photo's first
  nail); figures are per finished nail.

Reported per mode and set (held-out participants: ``bench/complete_labels.py``'s ``HELD_OUT``; all photos):
nails, finished, median / mean actions per finished nail, the ratio of scratch's median to the mode's, median
wall seconds per nail, and the label fixes made (``label_fixes`` per nail, in order, and counted per mode: G,
finger, swap, aim, arrow, base, tip). Writes ``docs/results/annotation_effort.json`` (per nail) and the ``annotation_effort``
section of ``docs/benchmarks.md``.

(Over 600 lines on purpose: the written rules, the page driver that follows them, the check and the report are
one unit that must change together; the test imports its core.)
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from shapely.geometry import Point  # noqa: E402
from shapely.ops import nearest_points, polylabel  # noqa: E402

from bench.benchdoc import git_commit, log, machine_info, markers, write_section  # noqa: E402
from bench.click_nail import biggest_part, click_point, corrective_point, shape  # noqa: E402
from bench.complete_labels import HELD_OUT, load_labels, training_info  # noqa: E402
from curation.demo_labels import DEMO_LABELS, write_merged_coco  # noqa: E402
from ml.postprocess import axis_ends  # noqa: E402
from prelabel.proposals import PROPOSE_BELOW  # noqa: E402

SECTION = "annotation_effort"
SHARED = ROOT.parent / "shared" / "data" / "nails-cc0"
RESULTS = ROOT / "docs" / "results" / "annotation_effort.json"
# The model modes' training on this machine's CPU; bench/gpu_session.py trains a bigger budget on a lent GPU
# ("device": "cuda", "workers": DataLoader processes).
TRAIN_BUDGET = {"preset": "web-336", "epochs": 4, "steps_per_epoch": 25, "batch_size": 4, "threads": 2,
                "device": "cpu"}
BAR = 0.9               # IoU a finished nail needs with the answer
LANDMARK_TOL = 0.05     # base / tip within this share of the answer's base-tip length
MIN_NAIL_PX = 150       # zoom in on nails smaller than this on screen before drawing / dragging
MAX_DRAGS = 6           # vertex drags on one draft nail before it is redrawn
MIN_GAIN = 0.003        # a drag that gains less IoU than this is not made (the draft is redrawn)
MAX_POINTS = 5          # corrective points on one proposal
DRAG_THRESHOLD_PX = 3   # the tool's DRAG_THRESHOLD (tools.js): a shorter press-move-release is a click
VIEWPORT = {"width": 1400, "height": 900}
MODES = ("scratch", "drafts", "click", "click+model")
USER, PASSWORD = "effort-annotator", "effort-password-123"


# --------------------------------------------------------------------------------------------------
# Answers, geometry
# --------------------------------------------------------------------------------------------------

def load_answers(data_dir: Path = SHARED) -> list[dict]:
    """Every shared photo with its answer: ``{"file_name", "path", "participant", "held_out", "nails"}``, the
    nails (polygon, finger, base, tip) of the shared COCO file merged with the project's demo labels."""
    labels = load_labels(DEMO_LABELS, data_dir)
    with open(data_dir / "participants.csv", newline="") as handle:
        owners = {row["file_name"]: row["participant"] for row in csv.DictReader(handle)}
    return [{"file_name": name, "path": str(data_dir / "images" / name), "participant": owners[name],
             "held_out": owners[name] in HELD_OUT, "nails": nails} for name, nails in sorted(labels.items())]


def masks_export(out: Path, held_out: bool = False, data_dir: Path = SHARED, leave_out=()) -> tuple[Path, int, int]:
    """The platform's masks export (``dataset.formats``) of the shared photos of the participants NOT held out
    (``held_out=False``: every photo in split ``train``) or of the held-out ones (split ``test``), with the
    project's confirmed fingers and base/tip (demo labels), under ``out/masks``: (its folder, photos, nails).
    ``leave_out``: participants whose photos are left out too (a fold of a cross-validation)."""
    from dataset.formats import ExportRecord, FolderTarget, get_exporter, get_importer
    from dataset.geometry import normalize_geometry

    out.mkdir(parents=True, exist_ok=True)
    parsed = get_importer("coco").parse(str(write_merged_coco(data_dir / "annotations.coco.json", out / "coco")))
    owners = {a["file_name"]: a["participant"] for a in load_answers(data_dir)}
    records = []
    for image in parsed.images:
        if (owners[image.file_name] in HELD_OUT) != held_out or owners[image.file_name] in leave_out:
            continue
        geometry = normalize_geometry({"nails": image.geometry["nails"], "ignore": image.geometry.get("ignore") or []})
        records.append(ExportRecord(len(records) + 1, image.file_name, str(data_dir / "images" / image.file_name), image.width, image.height,
                                    owners[image.file_name], "test" if held_out else "train", geometry, "bench"))
    with FolderTarget(out / "masks") as target:
        get_exporter("masks").export(records, target, {"snapshot": "annotation-effort", "content_hash": "bench",
                                                       "created_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    return out / "masks", len(records), sum(len(r.geometry["nails"]) for r in records)


def train_model(out: Path, budget: dict = TRAIN_BUDGET, data_dir: Path = SHARED, should_stop=None,
                leave_out=()) -> dict:
    """The platform's training (``ml.train.train``) on the shared photos of the participants NOT held out, with
    their finger classes and base/tip (demo labels), written as the platform's masks export; every photo is
    train (no val: the train mIoU picks the best epoch). ``budget``: ``TRAIN_BUDGET``'s keys (``device``:
    where; ``workers``: DataLoader processes, optional); ``should_stop()``: asked before each step (a
    deadline; the best epoch so far is kept); ``leave_out``: participants left out too (``masks_export``). Writes ``out/training.json``: the checkpoint path, the budget,
    the photos, the device, the epochs completed and the time, and returns it."""
    import torch

    from ml.train import train, train_config

    masks, photos, nails = masks_export(out, held_out=False, data_dir=data_dir, leave_out=set(leave_out))
    torch.set_num_threads(budget["threads"])
    device = budget.get("device", "cpu")
    config = train_config(budget["preset"], epochs=budget["epochs"], steps_per_epoch=budget["steps_per_epoch"],
                          batch_size=budget["batch_size"], device=device, num_workers=budget.get("workers", 0),
                          cache_data=True)
    started = time.monotonic()
    last = [0.0]

    def progress(fraction, message):
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            log(f"train {fraction * 100:5.1f}% {message}")

    result = train(config, masks, out / "run", resume=False, on_progress=progress, should_stop=should_stop)
    info = {"checkpoint": str(result["checkpoint"] or result["last_checkpoint"]), "budget": budget,
            "photos": photos, "nails": nails, "wall_s": round(time.monotonic() - started, 1),
            "device": torch.cuda.get_device_name(0) if result["device"].startswith("cuda") else "cpu",
            "status": result["status"], "epochs_completed": result["epochs_completed"],
            "left_out": sorted(leave_out)}
    (out / "training.json").write_text(json.dumps(info, indent=1))
    return info


def describe_budget(model: dict) -> str:
    """How ``train_model``'s model was trained, for the docs: "preset P, E epochs x S steps of B on ..."."""
    budget = model["budget"]
    where = (f"{budget['threads']} CPU threads" if budget.get("device", "cpu") == "cpu" else
             f"{model.get('device') or budget['device']} ({budget.get('workers', 0)} loader processes)")
    epochs = (f"{model['epochs_completed']} of {budget['epochs']} epochs (stopped at its deadline)"
              if model.get("status") == "cancelled" else f"{budget['epochs']} epochs")
    return f"preset {budget['preset']}, {epochs} x {budget['steps_per_epoch']} steps of {budget['batch_size']} on {where}"


def iou(a, b) -> float:
    pa, pb = shape(a), shape(b)
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union > 0 else 0.0


def pole(polygon) -> list[float]:
    """The pole of inaccessibility: the inside point furthest from the outline."""
    return list(click_point(polygon))


def free_point(polygon, others: list) -> list[float]:
    """Where a click selects ``polygon`` among ``others``: the pole of its largest part that none of them covers
    (the polygon's own pole when they cover it all)."""
    own = shape(polygon)
    for other in others:
        if shape(other).intersects(own):
            own = own.difference(shape(other))
    part = biggest_part(own)
    if part is None:
        return pole(polygon)
    p = polylabel(part, tolerance=0.5)
    return [p.x, p.y]


def landmark_ok(point, key: str, answer: dict) -> bool:
    """The nail's ``key`` ("base" / "tip") at ``point`` is within ``LANDMARK_TOL`` of the answer's base-tip length."""
    if answer["base"] is None or answer["tip"] is None:
        return True
    if point is None:
        return False
    length = max(1.0, float(np.hypot(answer["tip"][0] - answer["base"][0], answer["tip"][1] - answer["base"][1])))
    return float(np.hypot(point[0] - answer[key][0], point[1] - answer[key][1])) <= LANDMARK_TOL * length


def aimed_landmarks(polygon, point) -> tuple[list[float], list[float]] | None:
    """Base and tip as the tool's ``Shift+T`` puts them with the mouse at ``point`` (scene.js ``aimLandmarks``):
    where the line from the outline's area centroid towards the point leaves the outline, tip on its side."""
    centre = np.asarray(shape(polygon).centroid.coords[0])
    direction = np.asarray(point, np.float64) - centre
    length = float(np.hypot(*direction))
    if length == 0:
        return None
    base, tip = axis_ends(polygon, centre, direction / length)
    return [float(v) for v in base], [float(v) for v in tip]


def landmarks_ok(base, tip, answer: dict) -> bool:
    return landmark_ok(base, "base", answer) and landmark_ok(tip, "tip", answer)


def finger_ok(finger, answer: dict) -> bool:
    return answer["finger"] is None or finger == answer["finger"]


def match(candidates: list, answers: list, min_iou: float = 0.1) -> dict[int, tuple[int, float]]:
    """Greedy one-to-one matching, best IoU first: ``{answer index: (candidate index, IoU)}``."""
    pairs = sorted(((iou(c, a["polygon"]), j, i) for i, a in enumerate(answers) for j, c in enumerate(candidates)
                    if shape(c).intersects(shape(a["polygon"]))), reverse=True)
    out, used = {}, set()
    for value, j, i in pairs:
        if value >= min_iou and i not in out and j not in used:
            out[i] = (j, value)
            used.add(j)
    return out


def check_nail(saved: dict | None, value: float, answer: dict) -> dict:
    if saved is None:
        return {"finished": False, "iou": 0.0, "finger_ok": False, "landmarks_ok": False, "confirmed": False}
    result = {"iou": round(value, 4), "finger_ok": finger_ok(saved.get("finger"), answer),
              "landmarks_ok": landmarks_ok(saved.get("base"), saved.get("tip"), answer), "confirmed": not saved.get("suggested")}
    result["finished"] = value >= BAR and result["finger_ok"] and result["landmarks_ok"] and result["confirmed"]
    return result


# --------------------------------------------------------------------------------------------------
# The simulated annotator in the page
# --------------------------------------------------------------------------------------------------

class Annotator:
    """Drives one open annotation page; ``actions`` counts what is sent to it (rules: module docstring)."""

    def __init__(self, page):
        self.page = page
        self.actions = 0
        self.busy = 0.0         # seconds spent in actions sent to the page and waiting for its answers
        self.label_actions = 0  # of which for fingers and base/tip (the rest: outlines, deletions, zoom, tools)
        self.label_fixes = []   # what those were, in order: "G", "finger", "swap", "aim", "arrow", "base", "tip"
        self.zoomed = False

    def timed(self, work):
        started = time.perf_counter()
        try:
            return work()
        finally:
            self.busy += time.perf_counter() - started

    # -- the page's view and state
    def transform(self):
        view = self.page.evaluate("annotator.view.snapshot()")
        box = self.page.locator("#stage canvas.layer-ui").bounding_box()
        return view["scale"], view["tx"] + box["x"], view["ty"] + box["y"]

    def to_page(self, p):
        scale, x0, y0 = self.transform()
        return round(x0 + p[0] * scale), round(y0 + p[1] * scale)

    def landing(self, points):
        """Where clicks at image points land (whole screen pixels mapped back to the image)."""
        scale, x0, y0 = self.transform()
        return [[(round(x0 + x * scale) - x0) / scale, (round(y0 + y * scale) - y0) / scale] for x, y in points]

    def state(self, expression: str):
        return self.page.evaluate(f"JSON.parse(JSON.stringify({expression}))")

    def nails(self) -> list[dict]:
        return self.state("annotator.scene.geometry.nails")

    def proposed(self) -> list[dict]:
        """The proposed nails (a draft's unsure ones): ``[{"nail", "confidence", "source"}]``."""
        return self.state("annotator.proposed.nails")

    def index_of(self, nail_id) -> int:
        return next(i for i, n in enumerate(self.nails()) if n.get("id") == nail_id)

    def wait_proposal(self):
        return self.timed(self._wait_proposal)

    def _until(self, expression: str, what: str, timeout: float = 30) -> None:
        """Poll a JS expression of the page until it is true (the CSP forbids wait_for_function's eval)."""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(f"Boolean({expression})"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} in {timeout:g} s")
            time.sleep(0.01)

    def _wait_proposal(self):
        self._until("annotator.clicker.pending === null", "click-nail answer")
        return self.state("annotator.clicker.proposal && annotator.clicker.proposal.nail")

    def _wait_suggestions(self):
        """Until the ghosts are those of the nails as they are now (the tool asks 300 ms after an edit)."""
        self._until("annotator.suggestionsSettled()", "label suggestions")

    # -- actions (each one counted)
    def key(self, key: str):
        self.actions += 1
        self.timed(lambda: self.page.keyboard.press(key))

    def click(self, p, modifiers=None):
        self.actions += 1
        at = self.to_page(p)

        def send():
            for key in modifiers or []:
                self.page.keyboard.down(key)
            self.page.mouse.click(*at)
            for key in reversed(modifiers or []):
                self.page.keyboard.up(key)
        self.timed(send)

    def drag(self, start, end, modifiers=None):
        self.actions += 1
        a, b = self.to_page(start), self.to_page(end)

        def send():
            self.page.mouse.move(*a)
            for key in modifiers or []:
                self.page.keyboard.down(key)
            self.page.mouse.down()
            self.page.mouse.move(*b, steps=4)
            self.page.mouse.up()
            for key in reversed(modifiers or []):
                self.page.keyboard.up(key)
        self.timed(send)

    def pick_finger(self, finger: int):
        self.actions += 1
        self.timed(lambda: self.page.click(f"#hands .finger[data-finger='{finger}']"))

    def zoom_to(self, polygon):
        xs, ys = [p[0] for p in polygon], [p[1] for p in polygon]
        for _ in range(5):
            scale = self.transform()[0]
            if max(max(xs) - min(xs), max(ys) - min(ys)) * scale >= MIN_NAIL_PX:
                break
            self.page.mouse.move(*self.to_page([(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2]))
            self.actions += 1
            self.timed(lambda: self.page.mouse.wheel(0, -300))
            self.zoomed = True
            time.sleep(0.05)
        box = self.page.locator("#stage canvas.layer-ui").bounding_box()
        corners = [self.to_page(p) for p in ((min(xs), min(ys)), (max(xs), max(ys)))]
        if self.zoomed and not all(box["x"] + 10 <= x <= box["x"] + box["width"] - 10 and
                                   box["y"] + 10 <= y <= box["y"] + box["height"] - 10 for x, y in corners):
            centre = self.to_page([(min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2])  # a middle-drag pans it in view
            self.actions += 1

            def pan():
                self.page.mouse.move(*centre)
                self.page.mouse.down(button="middle")
                self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=4)
                self.page.mouse.up(button="middle")
            self.timed(pan)

    def fit(self):
        if self.zoomed:
            self.key("f")
            self.zoomed = False

    # -- rules
    def outline_clicks(self, answer: dict) -> list[list[float]]:
        """The fewest vertices (largest Douglas-Peucker tolerance) whose landed polygon has IoU >= BAR and keeps
        the answer's base and tip close enough to it (the tool snaps a landmark outside a nail to its edge)."""
        polygon = answer["polygon"]
        poly = shape(polygon)
        size = max(poly.bounds[2] - poly.bounds[0], poly.bounds[3] - poly.bounds[1])
        points = [Point(p) for p in (answer["base"], answer["tip"]) if p is not None]
        reach = 0.5 * LANDMARK_TOL * (np.hypot(*np.subtract(answer["tip"], answer["base"])) if len(points) == 2 else size)
        for tolerance in np.geomspace(size / 4, 0.1, 40):
            simple = poly.simplify(float(tolerance), preserve_topology=True)
            if simple.geom_type != "Polygon":
                continue
            vertices = [list(p) for p in simple.exterior.coords[:-1]]
            landed = self.landing(vertices)
            if (len(vertices) >= 3 and iou(landed, polygon) >= BAR + 0.005
                    and all(shape(landed).distance(p) <= reach for p in points)):
                return vertices
        return [list(p) for p in polygon]

    def draw(self, answer: dict) -> None:
        """The outline from scratch: N, one click per vertex, Enter (the new nail is selected)."""
        self.zoom_to(answer["polygon"])
        self.key("n")
        scale, _, _ = self.transform()
        vertices = self.outline_clicks(answer)
        first = vertices[0]
        for k, v in enumerate(vertices):  # a click within 9 screen px of the first vertex would close the outline
            if k >= 3 and np.hypot(v[0] - first[0], v[1] - first[1]) * scale <= 9.5:
                continue
            self.click(v)
        self.key("Enter")
        self.fit()

    def set_landmarks(self, answer: dict, nail: dict | None = None) -> None:
        """Base and tip where the answer has them: both to place, one Shift+drag from the answer's base to its tip
        (the tool's arrow stroke); one, the mouse on the point, then B (base) or T (tip): with the nail's present
        (confirmed) base and tip given, only the one(s) further off than the tolerance."""
        off = [key for key in ("base", "tip") if nail is None or not landmark_ok(nail.get(key), key, answer)]
        if len(off) == 2 and self.stroke_lands(answer):
            self.drag(answer["base"], answer["tip"], modifiers=["Shift"])
            self.label_fixes.append("arrow")
            return
        for key in off:
            at = self.to_page(answer[key])
            self.timed(lambda: self.page.mouse.move(*at))   # pointing is no action
            self.key(key[0])
            self.label_fixes.append(key)

    def stroke_lands(self, answer: dict) -> bool:
        """Whether a drag from the answer's base to its tip moves far enough on screen to be a drag (the tool's
        ``DRAG_THRESHOLD``, 3 px; else it is a click)."""
        a, b = self.to_page(answer["base"]), self.to_page(answer["tip"])
        return float(np.hypot(a[0] - b[0], a[1] - b[1])) >= DRAG_THRESHOLD_PX

    def aim_fixes(self, nail: dict, answer: dict, both_off: bool = False) -> bool:
        """Whether ``Shift+T`` at the answer's tip (as the mouse lands) puts both base and tip within the
        tolerance where both need placing (``both_off``: suggested landmarks are placed anew, both keys)."""
        if not both_off and (landmark_ok(nail.get("base"), "base", answer) or landmark_ok(nail.get("tip"), "tip", answer)):
            return False
        aimed = aimed_landmarks(nail["polygon"], self.landing([answer["tip"]])[0])
        return aimed is not None and landmarks_ok(*aimed, answer)

    def aim(self, nail_id, answer: dict) -> None:
        """``Shift+T`` with the mouse on the answer's tip; the scratch rule for what is still off after it."""
        at = self.to_page(answer["tip"])
        self.timed(lambda: self.page.mouse.move(*at))   # pointing is no action
        self.key("Shift+T")
        self.label_fixes.append("aim")
        nail = self.nails()[self.index_of(nail_id)]
        if not landmarks_ok(nail["base"], nail["tip"], answer):
            self.set_landmarks(answer, nail)

    def labels(self, nail_id, answer: dict) -> None:
        """Finger and base/tip of the selected nail: G when a suggestion is right, then fix what is wrong."""
        before = self.actions
        self._labels(nail_id, answer)
        self.label_actions += self.actions - before

    def _labels(self, nail_id, answer: dict) -> None:
        self.timed(self._wait_suggestions)
        index = self.index_of(nail_id)
        ghost = self.state(f"annotator.suggestions.ghost(annotator.scene.geometry, {index})") or {}
        good_finger = "finger" in ghost and finger_ok(ghost["finger"], answer) and ghost["finger"] is not None
        good_landmarks = bool(ghost.get("base")) and landmarks_ok(ghost.get("base"), ghost.get("tip"), answer)
        if good_finger or good_landmarks:
            self.key("g")
            self.label_fixes.append("G")
        nail = self.nails()[self.index_of(nail_id)]
        marks = nail.get("suggested") or {}
        if answer["finger"] is not None and (nail["finger"] != answer["finger"] or "finger" in marks):
            self.pick_finger(answer["finger"])
            self.label_fixes.append("finger")
        if answer["base"] is not None and (not landmarks_ok(nail["base"], nail["tip"], answer) or "landmarks" in marks):
            if nail["base"] and nail["tip"] and landmarks_ok(nail["tip"], nail["base"], answer):
                self.key("x")  # the arrow points the wrong way: swap base and tip
                self.label_fixes.append("swap")
            elif self.aim_fixes(nail, answer, both_off="landmarks" in marks):
                self.aim(nail_id, answer)
            else:
                self.set_landmarks(answer, None if "landmarks" in marks else nail)

    def scratch_nail(self, answer: dict) -> None:
        self.draw(answer)
        self.labels(self.nails()[-1]["id"], answer)

    def click_nail(self, answer: dict) -> dict:
        """Click-to-nail for one answer nail; returns what happened (proposal IoUs, fallback)."""
        self.click(pole(answer["polygon"]), modifiers=["Control"])
        proposal = self.wait_proposal()
        trace = {"proposal_ious": []}
        for _ in range(MAX_POINTS + 1):
            value = iou(proposal["polygon"], answer["polygon"]) if proposal else 0.0
            trace["proposal_ious"].append(round(value, 4))
            if not proposal or value >= BAR or len(trace["proposal_ious"]) > MAX_POINTS:
                break
            point = corrective_point(proposal["polygon"], answer["polygon"])
            if point is None:
                break
            self.click(point[:2], modifiers=["Alt" if point[2] else "Shift"])
            trace.setdefault("points", []).append("+" if point[2] else "-")
            proposal = self.wait_proposal() or proposal
        if proposal:  # what the last proposal got wrong, as shares of the answer's area
            truth, got = shape(answer["polygon"]), shape(proposal["polygon"])
            trace["missed"] = round(truth.difference(got).area / truth.area, 4)
            trace["extra"] = round(got.difference(truth).area / truth.area, 4)
        if proposal and trace["proposal_ious"][-1] >= 0.5:
            self.key("Enter")
            nail_id = self.nails()[-1]["id"]
            trace["outline"] = "proposal"
            if trace["proposal_ious"][-1] < BAR:  # corrected like a draft: vertex drags, else redrawn
                trace["drags"] = self.correct_draft(nail_id, answer)
                self.fit()
                trace["outline"] = "proposal+drags"
                if not trace["drags"]["reached"]:
                    self.delete(nail_id, selected=True)
                    self.scratch_nail(answer)
                    trace["outline"] = "scratch"
                    return trace
            self.labels(nail_id, answer)
        else:
            if self.page.evaluate("annotator.clicker.active"):
                self.key("Escape")
            self.scratch_nail(answer)
            trace["outline"] = "scratch"
        return trace

    def select_tool(self) -> None:
        """``V`` when another tool is on (drags and selecting clicks need the select tool)."""
        if self.page.evaluate("annotator.editor.tool") != "select":
            self.key("v")

    def select(self, nail_id) -> None:
        """A click at the pole of the part of the nail no other nail covers (Esc when it picked a vertex)."""
        self.select_tool()
        nails = self.nails()
        self.click(free_point(nails[self.index_of(nail_id)]["polygon"], [n["polygon"] for n in nails if n["id"] != nail_id]))
        selection = self.state("annotator.scene.selection") or {}
        if selection.get("index") != self.index_of(nail_id):  # it hit another nail's vertex: its row in the list, F
            self.actions += 1
            self.timed(lambda: self.page.click(f"#nails .nail-row[data-kind='nail'][data-index='{self.index_of(nail_id)}']"))
            self.zoomed = True
            self.fit()
        elif selection.get("vertex") is not None:
            self.key("Escape")

    def pick_proposed(self, nail_id) -> None:
        """Select a proposed nail: nothing when it is the selected proposal; ``P`` (``Shift+P``) when it is the
        next (previous) one round the list (from none selected: the first, the last); else a click at the pole of
        its part that no nail and no other proposal covers, and ``P`` until it is selected when that click missed
        it."""
        entries = self.proposed()
        k = next(k for k, e in enumerate(entries) if e["nail"]["id"] == nail_id)
        current = self.page.evaluate("annotator.proposed.current")
        if current == k and self.state("annotator.scene.selection") is None:
            return
        count = len(entries)
        if k == (0 if current is None else (current + 1) % count):
            return self.key("p")
        if k == (count - 1 if current is None else (current - 1) % count):
            return self.key("Shift+P")
        self.select_tool()
        self.click(free_point(entries[k]["nail"]["polygon"], [n["polygon"] for n in self.nails()] +
                              [e["nail"]["polygon"] for j, e in enumerate(entries) if j != k]))
        for _ in range(count):
            if self.page.evaluate("annotator.proposed.current") == k:
                return
            self.key("p")
        raise RuntimeError(f"proposed nail {nail_id} could not be selected")

    def reject(self, nail_id) -> None:
        """A proposed nail that matches no answer: selected, ``Delete``."""
        self.pick_proposed(nail_id)
        self.key("Delete")

    def accept(self, nail_id) -> bool:
        """A proposed nail that matches an answer: selected, ``Enter``; it is then a nail (selected)."""
        self.pick_proposed(nail_id)
        self.key("Enter")
        return True

    def delete(self, nail_id, selected: bool = False) -> None:
        if not selected:
            self.select(nail_id)
        elif (self.state("annotator.scene.selection") or {}).get("vertex") is not None:
            self.key("Escape")
        self.key("Delete")

    def correct_draft(self, nail_id, answer: dict) -> dict:
        """Vertex drags on a matched draft nail (IoU >= 0.5); True when it reached the bar."""
        self.select_tool()
        self.zoom_to(answer["polygon"])
        target = shape(answer["polygon"]).exterior
        drags = 0
        value = iou(self.nails()[self.index_of(nail_id)]["polygon"], answer["polygon"])
        while value < BAR and drags < MAX_DRAGS:
            polygon = self.nails()[self.index_of(nail_id)]["polygon"]
            best = None
            for k, v in enumerate(polygon):
                q = nearest_points(target, Point(v))[0]
                moved = polygon[:k] + self.landing([[q.x, q.y]]) + polygon[k + 1:]
                gain = iou(moved, answer["polygon"]) - value
                if best is None or gain > best[0]:
                    best = (gain, k, [q.x, q.y])
            if best is None or best[0] < MIN_GAIN:
                break
            self.drag(polygon[best[1]], best[2])
            drags += 1
            value = iou(self.nails()[self.index_of(nail_id)]["polygon"], answer["polygon"])
        return {"drags": drags, "iou_after": round(value, 4), "reached": value >= BAR}


# --------------------------------------------------------------------------------------------------
# One photo in one mode
# --------------------------------------------------------------------------------------------------

def open_photo(page, base_url: str, image_id: int) -> None:
    """The page ready, with pre-labeling's open call answered (a draft's unsure nails proposed)."""
    page.goto(f"{base_url}/annotate/{image_id}/")
    page.wait_for_selector("#app[data-ready='1']", state="attached", timeout=30_000)
    page.evaluate("window.prelabelOpen ? window.prelabelOpen.then(() => true) : true")


def saved_geometry(page, base_url: str, image_id: int, timeout: float = 30) -> dict:
    """After the autosave: the annotation as the API gives it back."""
    deadline = time.monotonic() + timeout
    while page.evaluate("annotator.autosaver.dirty || Boolean(annotator.autosaver.running)"):
        if time.monotonic() > deadline:
            raise TimeoutError("the autosave did not finish")
        time.sleep(0.1)
    answer = page.request.get(f"{base_url}/api/images/{image_id}/annotation/")
    assert answer.ok, answer.status
    return answer.json()["geometry"]


def checked(page, base_url: str, image_id: int, answers: list[dict], records: list[dict]) -> list[dict]:
    """The records of one photo's answer nails, each updated with its check (``check_nail``) against the saved
    labels (after the autosave, matched by IoU)."""
    saved = saved_geometry(page, base_url, image_id)["nails"]
    matched = match([n["polygon"] for n in saved], answers)
    for i, answer in enumerate(answers):
        j, value = matched.get(i, (None, 0.0))
        records[i].update(check_nail(saved[j] if j is not None else None, value, answer))
        records[i]["seconds"] = round(records[i]["seconds"], 3)
    return records


def label_photo(page, base_url: str, image_id: int, answers: list[dict], mode: str) -> list[dict]:
    """Label one photo in ``mode`` (scratch, drafts, click, click+model); one record per answer nail."""
    open_photo(page, base_url, image_id)
    bot = Annotator(page)
    records = [{"actions": 0, "seconds": 0.0} for _ in answers]
    order = sorted(range(len(answers)), key=lambda i: pole(answers[i]["polygon"])[0])  # left to right

    for record in records:
        record["label_actions"] = 0

    def timed(i, work):
        before, busy, labelling, fixes = bot.actions, bot.busy, bot.label_actions, len(bot.label_fixes)
        out = work()
        records[i]["label_actions"] += bot.label_actions - labelling
        records[i].setdefault("label_fixes", []).extend(bot.label_fixes[fixes:])
        records[i]["actions"] += bot.actions - before
        records[i]["seconds"] += bot.busy - busy
        return out

    if mode == "drafts":
        drafts = bot.nails() + [entry["nail"] for entry in bot.proposed()]
        proposed = {d["id"] for d in drafts[len(bot.nails()):]}
        matched = match([d["polygon"] for d in drafts], answers)
        keep = {drafts[j]["id"]: (i, value) for i, (j, value) in matched.items() if value >= 0.5}
        spurious = [d["id"] for d in drafts if d["id"] not in keep]
        if spurious and order:
            timed(order[0], lambda: [bot.reject(nail_id) if nail_id in proposed else bot.delete(nail_id) for nail_id in spurious])
        by_answer = {i: (nail_id, value) for nail_id, (i, value) in keep.items()}
        for i in order:
            records[i]["draft_iou"] = round(by_answer[i][1], 4) if i in by_answer else None
            records[i]["proposed"] = i in by_answer and by_answer[i][0] in proposed

            def work(i=i):
                if i not in by_answer:
                    return bot.scratch_nail(answers[i])
                nail_id, value = by_answer[i]
                accepted = nail_id in proposed and bot.accept(nail_id)
                if value < BAR:
                    records[i]["drags"] = bot.correct_draft(nail_id, answers[i])
                    bot.fit()
                    if not records[i]["drags"]["reached"]:
                        bot.delete(nail_id, selected=True)
                        return bot.scratch_nail(answers[i])
                elif not accepted:
                    bot.select(nail_id)
                bot.labels(nail_id, answers[i])
            timed(i, work)
    elif mode in ("click", "click+model"):
        for i in order:
            records[i]["click"] = timed(i, lambda i=i: bot.click_nail(answers[i]))
    elif mode == "scratch":
        for i in order:
            timed(i, lambda i=i: bot.scratch_nail(answers[i]))
    else:
        raise ValueError(f"unknown mode {mode!r}")
    return checked(page, base_url, image_id, answers, records)


# --------------------------------------------------------------------------------------------------
# The scratch instance: Django in this process, its live-server thread, the photos per mode
# --------------------------------------------------------------------------------------------------

def start_instance(var_dir: Path):
    """Django on a fresh SQLite database under ``var_dir``, served by a live-server thread; the base URL."""
    os.environ.update(NAILSET_VAR_DIR=str(var_dir), DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}",
                      DJANGO_SETTINGS_MODULE="annotation_site.settings",
                      DJANGO_ALLOW_ASYNC_UNSAFE="true")  # the ORM is called beside Playwright's event loop
    import django
    from django.contrib.staticfiles.handlers import StaticFilesHandler
    from django.core.management import call_command
    from django.test.testcases import LiveServerThread

    django.setup()
    call_command("migrate", verbosity=0)
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(USER, password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="annotator")[0])
    server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    return f"http://127.0.0.1:{server.port}"


def add_photos(mode: str, photos: list) -> list[int]:
    """Each photo (a path or a PIL image) stored through intake for this mode's own participant."""
    from django.conf import settings
    from django.utils import timezone
    from PIL import Image as PILImage

    from labeling.intake import create_image
    from labeling.models import Participant

    participant = Participant.objects.create(code=f"EFFORT-{mode.replace('+', '-')}", consent_at=timezone.now(),
                                             consent_version=settings.NAILSET_CONSENT_VERSION)
    ids = []
    for photo in photos:
        picture = PILImage.open(photo).convert("RGB") if isinstance(photo, (str, Path)) else photo
        ids.append(create_image(participant, picture, "JPEG")[0].pk)
    return ids


def activate_model(checkpoint: Path):
    """The checkpoint as the active ModelVersion (what click-to-nail's model mode and pre-labeling use)."""
    import torch
    from django.core.files import File

    from training.models import ModelVersion

    config = torch.load(checkpoint, map_location="cpu", weights_only=True)["config"]
    version = ModelVersion(name="effort-bench", config=config, metrics={}, snapshot_content_hash="bench", is_active=True)
    with open(checkpoint, "rb") as handle:
        version.weights.save("model.pt", File(handle), save=False)
    version.save()
    return version


def write_drafts(image_ids: list[int], checkpoint: Path, version, size: int = 480) -> None:
    """Pre-labeling's draft of each image by the model ``version`` (the prelabel job's steps, in this process): the
    prediction is kept with its nails' confidences (the page proposes the unsure ones) and written as the draft."""
    from PIL import Image as PILImage

    from labeling.models import Image
    from prelabel.drafts import save_prediction
    from ml.predict import Predictor
    from training.serving import predict_picture

    predictor = Predictor.from_checkpoint(checkpoint, size=size, threads=2)
    for image in Image.objects.filter(pk__in=image_ids):
        with image.file.open("rb") as handle, PILImage.open(handle) as picture:
            rgb = np.asarray(picture.convert("RGB"))
        save_prediction(image, version, predict_picture(predictor, rgb, size, votes=True), photo=rgb)



def synthetic_photo(seed: int = 0):
    """A 640x480 picture of two fingers with a nail each (quick mode and the test): (PIL image, answers)."""
    import cv2
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    img = np.empty((480, 640, 3), np.uint8)
    img[:] = (205, 160, 140)
    answers = []
    for cx, cy, angle, finger in ((220, 230, 10, 3), (430, 250, -15, 4)):
        cv2.ellipse(img, (cx, cy + 60), (75, 190), angle, 0, 360, (190, 140, 120), -1)
        cv2.ellipse(img, (cx, cy), (42, 62), angle, 0, 360, (205, 95, 120), -1)
        polygon = cv2.ellipse2Poly((cx, cy), (42, 62), angle, 0, 360, 10)[:-1].astype(float).tolist()
        ux, uy = -np.sin(np.radians(angle)), np.cos(np.radians(angle))   # the ellipse's long axis, downwards
        base = [round(cx + 55 * ux, 2), round(cy + 55 * uy, 2)]
        tip = [round(cx - 55 * ux, 2), round(cy - 55 * uy, 2)]
        answers.append({"polygon": polygon, "finger": finger, "base": base, "tip": tip})
    noise = rng.normal(0, 5, img.shape)
    return PILImage.fromarray(np.clip(img + noise, 0, 255).astype(np.uint8)), answers


def login(page, base_url: str, username: str = USER, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/")


def run_mode(browser, base_url: str, mode: str, photos: list, answers: list[list[dict]], names: list[str],
             held_out: list[bool], ids: list[int] | None = None) -> list[dict]:
    """Every photo in one mode (fresh copies unless ``ids``); one record per answer nail."""
    ids = ids or add_photos(mode, photos)
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, base_url)
    out = []
    for image_id, nails, name, held in zip(ids, answers, names, held_out):
        try:
            records = label_photo(page, base_url, image_id, nails, mode)
        except Exception as error:  # noqa: BLE001  (the photo counts as not finished, with the reason; the run goes on)
            log(f"{mode}: {name} failed: {error!r}")
            records = [{"actions": 0, "label_actions": 0, "seconds": 0.0, "finished": False, "error": repr(error)[:300]}
                       for _ in nails]
        for k, record in enumerate(records):
            out.append({"mode": mode, "photo": name, "nail": k, "held_out": held, **record})
        done = sum(r["finished"] for r in records)
        log(f"{mode}: {name} {done}/{len(records)} finished, {sum(r['actions'] for r in records)} actions")
    context.close()
    if errors:
        raise RuntimeError(f"script errors on the page: {errors[:3]}")
    return out


def summarize(records: list[dict]) -> dict:
    """Per mode and set: nails, finished, actions per finished nail (median, mean), seconds per nail."""
    out = {}
    for subset, keep in (("held_out", lambda r: r["held_out"]), ("all", lambda r: True)):
        rows = {}
        for mode in MODES:
            mine = [r for r in records if r["mode"] == mode and keep(r)]
            if not mine:
                continue
            done = [r for r in mine if r["finished"]]
            actions = [r["actions"] for r in done]
            rows[mode] = {"nails": len(mine), "finished": len(done), "errors": sum("error" in r for r in mine),
                          "actions_median": statistics.median(actions) if actions else None,
                          "actions_mean": round(statistics.fmean(actions), 2) if actions else None,
                          "seconds_median": round(statistics.median(r["seconds"] for r in mine), 3),
                          "label_actions_mean": round(statistics.fmean(r["label_actions"] for r in done), 2) if done else None,
                          "label_fixes": dict(sorted(Counter(f for r in mine for f in r.get("label_fixes", [])).items())),
                          "nails_without_label_actions": sum(r.get("label_actions", 0) == 0 for r in mine),
                          "outline_from_proposal": sum(r.get("click", {}).get("outline") == "proposal" for r in mine),
                          "outline_from_proposal_and_drags": sum(r.get("click", {}).get("outline") == "proposal+drags"
                                                                 for r in mine),
                          "proposal_mostly_missed": sum(r.get("click", {}).get("outline", "proposal") != "proposal" and
                                                        r["click"].get("missed", 0) > r["click"].get("extra", 0) for r in mine),
                          "unfinished": {"not_saved": sum(not r["finished"] and r.get("iou", 0) == 0 for r in mine),
                                         "outline": sum(not r["finished"] and 0 < r.get("iou", 0) < BAR for r in mine),
                                         "labels": sum(not r["finished"] and r.get("iou", 0) >= BAR for r in mine)},
                          "kept_drafts": sum(r.get("draft_iou") is not None and r.get("draft_iou") >= BAR for r in mine),
                          "proposed_drafts": sum(r.get("proposed") is True for r in mine)}
        scratch = rows.get("scratch", {}).get("actions_median")
        for row in rows.values():
            row["ratio_to_scratch"] = round(scratch / row["actions_median"], 2) if scratch and row["actions_median"] else None
        out[subset] = rows
    return out


def section(report: dict) -> str:
    start, end = markers(SECTION)
    m = report["machine"]
    labels = {"scratch": "from scratch", "drafts": "correcting model drafts", "click": "click-to-nail, image only",
              "click+model": "click-to-nail + model"}
    named = lambda mode, row: labels[mode] + (" (earlier run)" if row.get("earlier") else "")  # noqa: E731
    lines = []
    for subset, title in (("held_out", "held-out participants"), ("all", "all photos")):
        for mode, row in report["summary"].get(subset, {}).items():
            f = lambda v: "-" if v is None else f"{v:g}"  # noqa: E731
            lines.append(f"| {title} | {named(mode, row)} | {row['nails']} | {row['finished']} | {f(row['actions_median'])} | "
                         f"{f(row['actions_mean'])} | {f(row['label_actions_mean'])} | {f(row['ratio_to_scratch'])} | {row['seconds_median']:.2f} |")
    model = report.get("model")
    model_text = ("Model modes were not run (no model)." if not model else
                  f"Model (drafts and click+model): `{model['checkpoint']}`, its training not recorded."
                  if not model.get("budget") else
                  f"Model (drafts and click+model): `ml.train.train`, {describe_budget(model)} "
                  f"({model.get('wall_s', '?')} s), on the "
                  f"{model['photos']} photos ({model['nails']} nails, fingers and base/tip) of the participants not held out; "
                  f"no val split (train mIoU picks the epoch; last epoch: train mIoU {model.get('train_miou', '?')}, train nail "
                  f"IoU {model.get('train_nail_iou', '?')}, on augmented crops)."
                  + (" A weak model: the model modes' figures are a floor, not what a model trained on a real dataset "
                     "gives." if model["budget"].get("device", "cpu") == "cpu" else ""))
    outlines = []
    for mode, row in report["summary"].get("all", {}).items():
        if mode.startswith("click"):
            other = row["nails"] - row["outline_from_proposal"] - row["outline_from_proposal_and_drags"]
            outlines.append(f"{named(mode, row)}: of {row['nails']} outlines {row['outline_from_proposal']} were the proposal as it "
                            f"came, {row['outline_from_proposal_and_drags']} the proposal with vertex drags, {other} drawn "
                            f"(of the proposals not good as they came, {row['proposal_mostly_missed']} had more missed than "
                            "extra area)")
        elif mode == "drafts":
            outlines.append(f"{named(mode, row)}: {row['kept_drafts']} of {row['nails']} draft outlines good as they were (IoU >= 0.9), "
                            f"{row.get('proposed_drafts', 0)} matched draft nails proposed (unsure) and accepted with Enter")
    for mode, row in report["summary"].get("all", {}).items():
        u = row["unfinished"]
        if sum(u.values()):
            outlines.append(f"not finished, {named(mode, row)}: {u['not_saved']} not in the saved labels, {u['outline']} outline "
                            f"under the bar as saved, {u['labels']} finger or base/tip wrong")
    held = report["summary"].get("held_out", {})
    clicks = {m: held[m] for m in ("click", "click+model") if held.get(m) and held[m].get("actions_median") is not None}
    best_mode = min(clicks, key=lambda m: (clicks[m]["actions_median"], clicks[m]["actions_mean"])) if clicks else None
    best = clicks.get(best_mode, {})
    met = bool(best) and best["actions_median"] <= 3 and (best.get("ratio_to_scratch") or 0) >= 3
    verdict = (f"Issue #18's bar (median <= 3 actions per finished nail, >= 3x fewer than from scratch, held out): "
               f"{'met' if met else 'not met'}" + (f"; best: {labels[best_mode]}, median {best['actions_median']:g} "
                                                   f"({best['ratio_to_scratch']:g}x fewer than from scratch)." if best else "."))
    scratch_row = report["summary"].get("all", {}).get("scratch")
    f_scratch = (f"{scratch_row['actions_mean'] - scratch_row['label_actions_mean'] - 3:.0f}"
                 if scratch_row and scratch_row["actions_mean"] is not None else "?")  # less N, Enter and fit/zoom share
    f_labels = (f"{scratch_row['label_actions_mean']:.1f}" if scratch_row and scratch_row.get("label_actions_mean") is not None
                else "?")
    held = report["summary"].get("held_out", {})
    image_click = held.get("click")
    click_as_it_came = (f"of the held-out nails, {image_click['outline_from_proposal']} of {image_click['nails']} image-only "
                        "click proposals were good to 0.9 IoU as they came (with their corrective points; `click_nail` "
                        "section: one click's IoU)" if image_click and image_click.get("outline_from_proposal") is not None
                        else "a click proposal's outline may need corrective points, drags or a redraw")

    def against_scratch(mode: str) -> str:
        row, base = held.get(mode), held.get("scratch")
        if not row or not base or row.get("actions_median") is None or base.get("actions_median") is None:
            return ""
        a, b = row["actions_median"], base["actions_median"]
        return f"{labels[mode]} {'more than' if a > b else 'as much as' if a == b else 'less than'} drawing ({a:g} vs {b:g})"

    compared = [text for text in (against_scratch("drafts"), against_scratch("click+model")) if text]
    model_vs_scratch = ("With this model, held out, the median finished nail costs " + "; ".join(compared)
                        + " (spurious draft nails to delete, outlines to redraw)." if compared else "")
    rerun = report.get("rerun")
    rerun_text = "" if not rerun else (
        f" Rerun {rerun['when']} in {rerun['wall_s']:.0f} s with `{rerun['command']}` (commit "
        f"{rerun['machine'].get('commit', '?')}, load average {rerun['machine']['load'][0]:.2f}, shared machine)"
        + (f", {rerun['what']}" if rerun.get("what") else "") + f": modes {', '.join(rerun['modes'])} on {rerun['photos']} photos"
        + ("; rows and counts of those modes over photos the rerun did not label are the earlier run's, marked "
           "\"(earlier run)\" (in the sentences on all photos below too)"
           if any(row.get("earlier") for rows in report["summary"].values() for row in rows.values()) else "")
        + "; the other modes' rows are the earlier run's" + (f" ({rerun['kept']})" if rerun.get("kept") else "") + ".")
    changes = []
    for mode in (rerun or {}).get("modes", []):
        for subset, title in (("held_out", "held out"), ("all", "all photos")):
            before = rerun.get("earlier", {}).get(subset, {}).get(mode)
            now = report["summary"].get(subset, {}).get(mode)
            if before and now and not now.get("earlier") and before.get("actions_median") is not None:
                changes.append(f"{labels[mode]}, {title}: median {before['actions_median']:g} -> {now['actions_median']:g} "
                               f"actions per finished nail (mean {before['actions_mean']:g} -> {now['actions_mean']:g})")
    positive = ""
    if rerun and rerun.get("positive_points"):
        previous = rerun.get("positive_before")
        positive = (f" Positive corrective points in the rerun (image only): of {rerun['positive_points']}, "
                    f"{rerun['positive_gained']} raised the proposal's IoU and {rerun['positive_leaked']} dropped it from "
                    ">= 0.5 to below 0.5" + (f" (the earlier run: of {previous['points']}, {previous['gained']} raised it and "
                                             f"{previous['leaked']} dropped it)" if previous else "") + ".")
    rerun_finding = ("" if not changes else f" Rerun against the earlier run: {'; '.join(changes)}.") + positive
    return f"""{start}
## Annotator effort (`bench/annotation_effort.py`, issue #18)

Measured {report['when']} in {report['wall_s']:.0f} s with `{report['command']}` (commit {m.get('commit', '?')}); {m['nproc']} CPUs ({m['cpu']}), load average {m['load'][0]:.2f} at the start (shared machine).{rerun_text}

A simulated annotator labels the shared photos (answers: nails-cc0 polygons + the project's confirmed fingers and base/tip) in the real tool in headless Chromium, until each nail has IoU >= 0.9 with the answer, the right finger and base/tip within 5 % of the nail's base-tip length, read back through the API. Its rules are fixed and written in the script's docstring: outlines from scratch are the answer simplified (Douglas-Peucker) to the fewest clicks that keep IoU >= 0.9, zooming in (wheel) on nails under {MIN_NAIL_PX} px on screen; drafts are kept (IoU >= 0.9), corrected with vertex drags (at most {MAX_DRAGS}, else redrawn) or redrawn (IoU < 0.5), and a draft nail the model is unsure of (outline confidence under {PROPOSE_BELOW:g}) is proposed: accepted with Enter when it matches an answer (IoU >= 0.5; unless it is the selected proposal, P / Shift+P select it when it is the next / previous one, else a click), then treated as a draft nail, else rejected with Delete; click-to-nail is a Ctrl+click at the nail's pole of inaccessibility with up to {MAX_POINTS} corrective points (an Alt+click, positive, at the pole of the biggest region the proposal missed, else a Shift+click, negative, in the biggest region it has too much), then accepted (IoU >= 0.9), corrected like a draft (IoU >= 0.5) or drawn; G accepts a suggestion when its finger or base/tip is right, then what is wrong is fixed (finger: 1 click in the panel; base/tip: X when the arrow points the wrong way, else Shift+T with the mouse on the answer's tip when aiming the arrow there puts both ends right, else one Shift+drag from the answer's base to its tip when both are off (since 2026-12-06 noon; B and T before), else B or T with the mouse on the one that is off). The annotator reads a nail's suggestion once the page's suggestions are those of the nails as they are (the tool asks 300 ms after an edit). Every click, drag, wheel notch and key press counts. Seconds are the tool's and server's latency only (the annotator does not think), per nail.

| set | mode | nails | finished | actions per finished nail (median) | mean | of which finger + base/tip (mean) | scratch / mode (median) | seconds per nail (median) |
| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(lines)}

{model_text}

All photos: {"; ".join(outlines) or "-"}. (A nail not in the saved labels: the page flagged its shape, e.g. self-crossing after vertex drags, and the save kept it apart; the simulated annotator does not repair flagged shapes.)

Where the actions go: a finished nail from scratch costs about {f_scratch} clicks for its outline plus {f_labels} (mean) for the finger and base/tip (2 without a right suggestion: a finger click, one Shift+drag from base to tip); {click_as_it_came}, and a proposal's finger and base/tip suggestions are often wrong (then 1 action for the finger, 1 for base/tip: Shift+T, a Shift+drag, B or T, or X for an arrow pointing the wrong way), so the floor of 2 actions (Ctrl+click, Enter: the proposal's finger and base/tip come confirmed) is reached by few nails. {model_vs_scratch} Proposing a draft's unsure nails changes little with such a model: a spurious one costs one key (Delete) instead of a click and Delete only while it is the selected proposal, else a click and Delete as before, and an accepted one still needs drags or a redraw like any draft nail below the bar.

{verdict} Positive corrective points: an Alt+click adds one anywhere, also outside the proposal, so a region the proposal missed can be pointed at; proposals still short of the bar after {MAX_POINTS} points are corrected with vertex drags or drawn.{rerun_finding} Per nail: `docs/results/annotation_effort.json`.
{end}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 synthetic photo, 2 nails, scratch and click modes")
    parser.add_argument("--work", default=None, help="folder for the model and the scratch instance")
    parser.add_argument("--train-only", action="store_true", help="train the model into WORK/model and stop")
    parser.add_argument("--device", default="cpu", help="with --train-only: where TRAIN_BUDGET trains (cpu, cuda)")
    parser.add_argument("--model", default=None, help="checkpoint for the model modes (default: WORK/model's, if trained)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ", ".join(MODES))
    parser.add_argument("--photos", type=int, default=0, help="only the first N photos (0: all)")
    parser.add_argument("--held-out", action="store_true", help="only the photos of the held-out participants")
    parser.add_argument("--merge", nargs="+", default=None, metavar="REPORT",
                        help="write the docs from these runs' WORK/report.json files (modes run in separate processes)")
    parser.add_argument("--update", nargs=2, default=None, metavar=("EARLIER", "RERUN"),
                        help="write the docs from an earlier report with the modes of a later run (WORK/report.json, "
                             "e.g. --held-out) in place of its own on the rerun's photos")
    parser.add_argument("--what", default="", help="with --update: what changed since the earlier run (for the docs)")
    parser.add_argument("--kept", default="", help="with --update: what the rows not rerun are (for the docs)")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    if args.merge:
        return merge_reports([Path(p) for p in args.merge], argv)
    if args.update:
        return update_report(Path(args.update[0]), Path(args.update[1]), args.what, args.kept)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="annotation-effort-"))
    if args.train_only:
        print(json.dumps(train_model(work / "model", {**TRAIN_BUDGET, "device": args.device}), indent=1))
        return 0
    started = time.monotonic()
    if args.quick:
        picture, nails = synthetic_photo()
        photos, answers, names, held = [picture], [nails], ["synthetic"], [True]
        modes = ["scratch", "click"]
    else:
        items = [it for it in load_answers() if it["held_out"] or not args.held_out][: args.photos or None]
        photos, answers = [it["path"] for it in items], [it["nails"] for it in items]
        names, held = [it["file_name"] for it in items], [it["held_out"] for it in items]
        modes = [m for m in args.modes.split(",") if m]
    trained = work / "model" / "training.json"
    model = json.loads(trained.read_text()) if trained.is_file() and not args.model else None
    checkpoint = Path(args.model) if args.model else Path(model["checkpoint"]) if model else None
    if model is None and checkpoint is not None:  # a given checkpoint: train_model's record beside it, if any
        model = training_info(checkpoint) or None
    history = checkpoint.parent / "history.json" if checkpoint else None
    if model and history.is_file():  # the last epoch's train figures (on augmented crops; no val split)
        last = json.loads(history.read_text())[-1]
        model.update(train_miou=round(last["train_miou"], 3), train_nail_iou=round(last["train_nail_iou"], 3))
    if checkpoint is None:
        modes = [m for m in modes if m in ("scratch", "click")]
    instance = work / f"instance-{int(time.time())}"
    instance.mkdir(parents=True)
    base_url = start_instance(instance)
    from playwright.sync_api import sync_playwright

    records = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        for mode in [m for m in MODES if m in modes and m in ("scratch", "click")]:
            records += run_mode(browser, base_url, mode, photos, answers, names, held)
        if checkpoint is not None and any(m in modes for m in ("drafts", "click+model")):
            version = activate_model(checkpoint)
            if "drafts" in modes:
                ids = add_photos("drafts", photos)
                log("pre-labeling the drafts' photos")
                write_drafts(ids, checkpoint, version)
                records += run_mode(browser, base_url, "drafts", photos, answers, names, held, ids)
            if "click+model" in modes:
                records += run_mode(browser, base_url, "click+model", photos, answers, names, held)
        browser.close()
    report = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "wall_s": time.monotonic() - started,
              "command": "python bench/annotation_effort.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": {**machine_info(), "commit": git_commit() or "?"},
              "rules": {"bar": BAR, "landmark_tol": LANDMARK_TOL, "min_nail_px": MIN_NAIL_PX, "max_drags": MAX_DRAGS,
                        "min_gain": MIN_GAIN, "max_points": MAX_POINTS, "viewport": VIEWPORT},
              "model": ({**(model or {}), "checkpoint": str(checkpoint)} if checkpoint else None),
              "summary": summarize(records), "nails": records}
    print(json.dumps(report["summary"], indent=1))
    text = report_text(report, records)
    (work / "report.json").write_text(text)
    if not args.no_docs and not args.quick:
        RESULTS.write_text(text)
        write_section(SECTION, section(report))
    return 0


def report_text(report: dict, records: list[dict]) -> str:
    """The report as JSON, a nail a line."""
    head = json.dumps({k: v for k, v in report.items() if k != "nails"}, indent=1)
    return head[:-2] + ',\n "nails": [\n' + ",\n".join(json.dumps(r) for r in records) + "\n ]\n}\n"


def merge_reports(paths: list[Path], argv) -> int:
    """One report from runs of separate modes (run at the same time: their seconds share the machine)."""
    reports = [json.loads(p.read_text()) for p in paths]
    records = [r for report in reports for r in report["nails"]]
    first = reports[0]
    report = {**first, "wall_s": max(r["wall_s"] for r in reports),
              "command": " & ".join(r["command"] for r in reports) + " (at the same time), then --merge",
              "model": next((r["model"] for r in reports if r.get("model")), None), "summary": summarize(records)}
    print(json.dumps(report["summary"], indent=1))
    RESULTS.write_text(report_text(report, records))
    write_section(SECTION, section(report))
    return 0



def updated(earlier: dict, rerun: dict, what: str = "", kept_note: str = "") -> tuple[dict, list[dict]]:
    """An earlier report with a later run's modes in place of its own on the photos the rerun labelled (each
    nail tagged ``run``: ``earlier`` or ``rerun``). A summary row that would mix the two runs' rules (a set with
    photos the rerun did not label) keeps the earlier run's figures and says so (``earlier``). Also counts what
    the rerun's positive corrective points did to the proposal's IoU (beside the earlier run's counts, when it was a
    rerun too). The model described is the rerun's when it ran a model mode. ``what``: what changed since the
    earlier run; ``kept_note``: what the rows not rerun are (say which model they had)."""
    redone = {(r["mode"], r["photo"]) for r in rerun["nails"]}
    modes = {mode for mode, _ in redone}
    kept = [{**r, "run": "earlier"} for r in earlier["nails"] if (r["mode"], r["photo"]) not in redone]
    records = kept + [{**r, "run": "rerun"} for r in rerun["nails"]]
    summary = summarize(records)
    for subset, rows in summary.items():
        for mode in modes & set(rows):
            if any(r["mode"] == mode and (subset == "all" or r["held_out"]) for r in kept):
                rows[mode] = {**earlier["summary"][subset][mode], "earlier": True}
        for mode in set(rows) - modes:  # a row the earlier report already kept from a run before it stays so
            if earlier["summary"].get(subset, {}).get(mode, {}).get("earlier"):
                rows[mode] = earlier["summary"][subset][mode]
    steps = []  # (IoU before, IoU after) of each positive point
    for r in (r for r in rerun["nails"] if r["mode"] == "click"):  # image only, as the docs say
        ious = r.get("click", {}).get("proposal_ious", [])
        steps += [(ious[k], ious[k + 1]) for k, sign in enumerate(r.get("click", {}).get("points", []))
                  if sign == "+" and k + 1 < len(ious)]
    report = {**earlier, "summary": summary, "model": rerun.get("model") or earlier.get("model"),  # the rerun's, if it had one
              "rerun": {"modes": sorted(modes), "photos": len({p for _, p in redone}), "when": rerun["when"],
                        "wall_s": rerun["wall_s"], "command": rerun["command"], "machine": rerun["machine"],
                        "rules": rerun["rules"],
                        "earlier": {subset: {m: rows[m] for m in sorted(modes) if m in rows}
                                    for subset, rows in earlier["summary"].items()},
                        "positive_points": len(steps), "positive_gained": sum(b > a for a, b in steps),
                        "positive_leaked": sum(a >= 0.5 > b for a, b in steps), "what": what, "kept": kept_note}}
    before = earlier.get("rerun") or {}
    if before.get("positive_points"):
        report["rerun"]["positive_before"] = {"points": before["positive_points"], "gained": before["positive_gained"],
                                              "leaked": before["positive_leaked"]}
    return report, records


def update_report(earlier_path: Path, rerun_path: Path, what: str = "", kept_note: str = "") -> int:
    """Writes the docs from an earlier report updated by a rerun (``updated``)."""
    report, records = updated(json.loads(earlier_path.read_text()), json.loads(rerun_path.read_text()), what, kept_note)
    print(json.dumps(report["summary"], indent=1))
    RESULTS.write_text(report_text(report, records))
    write_section(SECTION, section(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
