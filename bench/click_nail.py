"""Click a nail, get the nail (issue #18): how good one click's polygon is, how many vertices, how fast.

    python bench/click_nail.py [--data ../shared/data/nails-cc0] [--model CHECKPOINT] [--no-docs]
                               [--no-12mp] [--only NAME ...] [--json PATH]
    python bench/click_nail.py --from-json PATH         # the docs of a run made elsewhere (bench/gpu_session.py)

On each shared photo (COCO polygons as the answers), one positive click at each nail's pole of
inaccessibility (``shapely.ops.polylabel``: the inside point furthest from the outline) goes into
:func:`ml.click_segmentation.segment_click`; the polygon's IoU with the answer (both rasterized by
``dataset.raster.rasterize``) and its vertex count are recorded, twice: with the nail-size prior of a photo
without labels (the first nail of an image) and with the nail size from the photo's other nails (what the
tool sends once an image has nails). Latency: per photo, the first click (the photo's decoding included, as
the endpoint's first call) and the later clicks (median of each), at the photo's size and on the photo
upscaled to 12 MP.

Two clicks: for each nail whose first proposal (``prior`` and ``others``) has IoU < 0.9, one corrective point
placed by the effort bench's annotator rule (:func:`corrective_point`: positive at the pole of the biggest
region the proposal missed when it is at least 2 % of the nail, else negative at the pole of the biggest
region it has too much) goes in with the first click; the IoU before and after are recorded, and how often
the point raised it and dropped it from >= 0.5 to < 0.5, per point sign.

Image-only unless ``--model CHECKPOINT``: then the model's probability map, made as the endpoint makes it (the
network's outputs at its input size, ``ml.nail_votes.shrunk_prediction``, brought to the photo's size by
``ml.predict.foreground_at``; once per photo, its time reported apart, as the endpoint caches it), is given as
``fg_prob`` as well, and both are reported. The method's numbers (``ml.click_segmentation.ClickRules``) were
tuned on the photos of ``TUNED_ON`` only; the other photos are reported apart. Writes ``docs/results/click_nail.json`` and the
``click_nail`` section of ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from shapely.geometry import Polygon  # noqa: E402
from shapely.ops import polylabel  # noqa: E402

from dataset.raster import rasterize  # noqa: E402
from ml.click_segmentation import DEFAULT_RULES, nail_size_from_polygons, segment_click  # noqa: E402
from ml.nail_votes import shrunk_prediction  # noqa: E402

from bench.benchdoc import fmt, machine_info, markers, write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "nails-cc0"
RESULTS = ROOT / "docs" / "results" / "click_nail.json"
SECTION = "click_nail"
# The photos looked at while ClickRules were tuned (the first five by name); reported apart from the rest.
TUNED_ON = ("09aefeec-e05f-11e8-87a6-0242ac1c0002.jpg", "1eecab90-1a92-43a7-b952-0204384e1fae.jpg",
            "2c376c66-9823-4874-869e-1e7f5c54ec7b.jpg", "34404E67-4BB8-432E-863E-C1BEF5EB37E0.jpg",
            "3493127D-7B19-4E50-94AE-2401BD2A91C8.jpg")
# The photos the corrective point's seed (ClickRules.later_*) was chosen on: TUNED_ON and the next five by name
# whose participant is not held out (bench/complete_labels.py); the second-point rows report them apart.
SECOND_TUNED_ON = TUNED_ON + ("4252e46c-e40f-4543-91ab-031917d46c5c.jpg", "54108996-6DA8-48F9-93DF-7ABB92F64E03.jpg",
                              "5CBCC5AC-B638-4DFA-AA7B-2464FADFF2F7.jpg", "5fad3947-76d7-4352-9329-4a92f898dd59.jpg",
                              "7e9f5818-4425-4d8a-808a-4673d96fa250.jpg")
TWELVE_MP = 12_000_000
BAR = 0.9               # a proposal below this IoU gets a corrective point (the effort bench's bar)
MIN_REGION = 0.02       # a corrective point marks a region of at least this share of the nail
# The baseline of the two-click rows, measured in the same run: the earlier rule, every positive point seeded
# as the first one.
SAME_SEED = dataclasses.replace(DEFAULT_RULES, later_sure_radius=DEFAULT_RULES.sure_radius,
                                later_probable_radius=DEFAULT_RULES.probable_radius)
# GrabCut alone (the image-only method before ml.click_outline's network), beside it.
GRABCUT = dataclasses.replace(DEFAULT_RULES, outline_net=False)
# A model's probability alone (before it was averaged with the network's), beside it.
MODEL_ALONE = dataclasses.replace(DEFAULT_RULES, model_with_outline_net=False)
# With a model, a negative point read by GrabCut on the mean of the model's and the network's probability (before
# 2026-12-06 noon; now the network's alone, ClickRules.negatives_by_outline_net) -- and, the variant tried and not
# kept, positive corrective points read by the network alone
MEAN_CORRECTIONS = dataclasses.replace(DEFAULT_RULES, negatives_by_outline_net=False)
NETWORK_POSITIVES = dataclasses.replace(DEFAULT_RULES, positives_by_outline_net=True)


def load_answers(data_dir: Path) -> dict[str, list[list[list[float]]]]:
    """``{file_name: [polygon, ...]}`` from the COCO file (crowd regions skipped; the largest ring of each)."""
    data = json.loads((data_dir / "annotations.coco.json").read_text())
    names = {img["id"]: img["file_name"] for img in data["images"]}
    out: dict[str, list] = {name: [] for name in names.values()}
    for ann in data["annotations"]:
        if ann.get("iscrowd"):
            continue
        rings = [np.asarray(r, float).reshape(-1, 2) for r in ann["segmentation"] if len(r) >= 6]
        if rings:
            out[names[ann["image_id"]]].append(max(rings, key=lambda r: Polygon(r).area).tolist())
    return out


def shape(polygon) -> Polygon:
    """A polygon as shapely's, made valid (``buffer(0)``) when it is not."""
    poly = Polygon(polygon)
    return poly if poly.is_valid else poly.buffer(0)


def biggest_part(region):
    """The largest polygon of a (multi)polygon region, or None when it has no area."""
    parts = [g for g in getattr(region, "geoms", [region]) if g.geom_type == "Polygon" and g.area > 0]
    return max(parts, key=lambda g: g.area) if parts else None


def click_point(polygon) -> tuple[float, float]:
    """The pole of inaccessibility: the inside point furthest from the outline (of the largest part)."""
    point = polylabel(biggest_part(shape(polygon)), tolerance=0.5)
    return float(point.x), float(point.y)


def corrective_point(proposal, answer, min_share: float = MIN_REGION) -> tuple[float, float, int] | None:
    """The simulated annotator's corrective point on a proposal (bench/annotation_effort.py's rule): positive
    (label 1) at the pole of the biggest region of the answer the proposal missed when it is at least
    ``min_share`` of the answer's area, else negative (0) at the pole of the biggest region the proposal has
    too much (same floor); None when neither is."""
    truth, got = shape(answer), shape(proposal)
    for region, label in ((truth.difference(got), 1), (got.difference(truth), 0)):
        biggest = biggest_part(region)
        if biggest is not None and biggest.area >= min_share * truth.area:
            p = polylabel(biggest, tolerance=0.5)
            return float(p.x), float(p.y), label
    return None


def iou(polygon, answer, width: int, height: int) -> float:
    if len(polygon) < 3:
        return 0.0
    a = rasterize({"nails": [{"polygon": polygon}]}, width, height).foreground > 0
    b = rasterize({"nails": [{"polygon": answer}]}, width, height).foreground > 0
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def measure_photo(path: Path, answers: list, predictor=None, scale: float = 1.0, two_clicks: bool = True) -> list[dict]:
    """One record per nail of the photo: IoU, vertices, confidence, seconds (with the prior, then with the other
    nails' size; with the model too when given), and the IoU after a corrective point (``second``) when the
    first was under the bar. ``scale`` upscales the photo (and the answers) first."""
    started = time.perf_counter()
    rgb = read_rgb(path)
    if scale != 1.0:
        rgb = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)), interpolation=cv2.INTER_LINEAR)
        answers = [(np.asarray(a) * scale).tolist() for a in answers]
    decode = time.perf_counter() - started
    height, width = rgb.shape[:2]
    fg_prob, model_seconds = None, None
    if predictor is not None:
        from ml.predict import foreground_at  # torch: only with a model

        started = time.perf_counter()
        prediction, _ = shrunk_prediction(predictor, rgb)     # as the endpoint: the outputs it keeps per photo ...
        fg_prob = foreground_at(prediction.fg_prob.astype(np.float16), height, width)  # ... brought to the photo's size
        model_seconds = time.perf_counter() - started
    records = []
    for index, answer in enumerate(answers):
        x, y = click_point(answer)
        others = nail_size_from_polygons([a for j, a in enumerate(answers) if j != index])
        record = {"photo": path.name, "nail": index, "click": [round(x, 1), round(y, 1)], "width": width, "height": height}
        for key, size, prob in (("prior", None, None), ("others", others, None), ("grabcut", others, None),
                                ("model", others, fg_prob), ("model_alone", others, fg_prob)):
            if key.startswith("model") and prob is None:
                continue
            first_rules = {"grabcut": GRABCUT, "model_alone": MODEL_ALONE}.get(key, DEFAULT_RULES)
            t0 = time.perf_counter()
            result = segment_click(rgb, [(x, y, 1)], nail_size=size, fg_prob=prob, rules=first_rules)
            seconds = time.perf_counter() - t0
            record[key] = {"iou": round(iou(result.polygon, answer, width, height), 4), "vertices": len(result.polygon),
                           "confidence": result.confidence, "seconds": round(seconds, 5), "source": result.source}
            if two_clicks and key in ("prior", "others", "model") and result.polygon and record[key]["iou"] < BAR:
                point = corrective_point(result.polygon, answer)
                if point is not None:
                    second = {"point": [round(point[0], 1), round(point[1], 1), point[2]]}
                    for suffix in sorted({suffix for label, suffix, _ in point_kinds(key).values() if label == point[2]}):
                        rules = RULES_OF_SUFFIX[suffix]
                        proposal = segment_click(rgb, [(x, y, 1), point], nail_size=size, fg_prob=prob, rules=rules)
                        second["iou" + suffix] = round(iou(proposal.polygon, answer, width, height), 4)
                    record[key]["second"] = second
        records.append(record)
    if records:
        records[0]["decode_seconds"] = round(decode, 5)
        if model_seconds is not None:
            records[0]["model_seconds"] = round(model_seconds, 4)
    return records


def _quantile(values, q):
    values = sorted(values)
    if not values:
        return None
    return float(np.quantile(values, q))


def summarize(records: list[dict], key: str) -> dict:
    rows = [r[key] for r in records if key in r]
    if not rows:
        return {"nails": 0}
    ious = [r["iou"] for r in rows]
    confidences = [r["confidence"] for r in rows]
    low = [r["iou"] for r in rows if r["confidence"] < 0.5]
    high = [r["iou"] for r in rows if r["confidence"] >= 0.5]
    return {"nails": len(rows), "iou_median": round(_quantile(ious, 0.5), 4), "iou_p25": round(_quantile(ious, 0.25), 4),
            "iou_mean": round(float(np.mean(ious)), 4), "share_iou_075": round(float(np.mean([v >= 0.75 for v in ious])), 3),
            "vertices_median": _quantile([r["vertices"] for r in rows], 0.5),
            "confidence_median": round(_quantile(confidences, 0.5), 3),
            "iou_median_confidence_below_05": round(_quantile(low, 0.5), 4) if low else None,
            "iou_median_confidence_above_05": round(_quantile(high, 0.5), 4) if high else None,
            "nails_confidence_below_05": len(low)}


# The corrective points scored per mode: name -> (the point's label, the suffix of its IoU in a record, what the
# docs call it). Image only, the positive point's seed both ways; with a model, the other rule for each sign.
POINT_KINDS = {
    "image": {"+": (1, "", "positive, small seed (now)"),
              "+_same_seed": (1, "_same_seed", "positive, seeded as the first point (earlier rule)"),
              "-": (0, "", "negative")},
    "model": {"+": (1, "", "positive, read by the mean of model and network (now)"),
              "+_network": (1, "_network", "positive, read by the network alone (tried, not kept)"),
              "-": (0, "", "negative, read by the network alone (now)"),
              "-_mean": (0, "_mean", "negative, GrabCut on the mean of model and network (earlier rule)")},
}


RULES_OF_SUFFIX = {"": DEFAULT_RULES, "_same_seed": SAME_SEED, "_network": NETWORK_POSITIVES, "_mean": MEAN_CORRECTIONS}


def point_kinds(key: str) -> dict:
    return POINT_KINDS["model" if key == "model" else "image"]


def summarize_second(records: list[dict], key: str) -> dict:
    """What one corrective point did to the proposals under the bar: per kind of point (``point_kinds``) the
    IoU before and after."""
    out = {}
    for name, (label, suffix, _) in point_kinds(key).items():
        steps = [(r[key]["iou"], r[key]["second"]["iou" + suffix]) for r in records
                 if "second" in r.get(key, {}) and r[key]["second"]["point"][2] == label]
        if not steps:
            out[name] = {"points": 0}
            continue
        out[name] = {"points": len(steps), "iou_before_median": round(_quantile([a for a, _ in steps], 0.5), 4),
                     "iou_after_median": round(_quantile([b for _, b in steps], 0.5), 4),
                     "raised": sum(b > a for a, b in steps), "reached_bar": sum(b >= BAR for _, b in steps),
                     "dropped_below_05": sum(a >= 0.5 > b for a, b in steps)}
    return out


def latency(records: list[dict], key: str = "others") -> dict:
    """Median first call per photo (decoding + first click) and median later call."""
    first, later = [], []
    by_photo: dict[str, list[dict]] = {}
    for r in records:
        by_photo.setdefault(r["photo"], []).append(r)
    for rows in by_photo.values():
        rows = sorted(rows, key=lambda r: r["nail"])
        first.append(rows[0].get("decode_seconds", 0.0) + rows[0][key]["seconds"])
        later += [r[key]["seconds"] for r in rows[1:]]
    return {"first_ms_median": round(1000 * statistics.median(first), 1) if first else None,
            "later_ms_median": round(1000 * statistics.median(later), 1) if later else None,
            "later_ms_p90": round(1000 * _quantile(later, 0.9), 1) if later else None}


def held_out_photos(data_dir: Path) -> set[str]:
    """The photos of ``bench.complete_labels.HELD_OUT``'s participants: ``bench.annotation_effort.train_model``
    does not train on them (the fair set for its model) and the label suggestions were not tuned on them."""
    from bench.complete_labels import HELD_OUT

    with open(data_dir / "participants.csv", newline="", encoding="utf-8") as f:
        return {row["file_name"] for row in csv.DictReader(f) if row["participant"] in HELD_OUT}


def evaluate(data_dir: Path, predictor=None, only=(), twelve_mp: bool = True) -> dict:
    answers = load_answers(data_dir)
    names = sorted(n for n in answers if answers[n] and (not only or n in only))
    records = []
    for name in names:
        records += measure_photo(data_dir / "images" / name, answers[name], predictor)
    tuned = [r for r in records if r["photo"] in TUNED_ON]
    rest = [r for r in records if r["photo"] not in TUNED_ON]
    held_names = held_out_photos(data_dir)
    held = [r for r in records if r["photo"] in held_names]
    keys = ["prior", "others", "grabcut"] + (["model", "model_alone"] if predictor is not None else [])
    result = {"data": str(data_dir), "photos": len(names), "tuned_on": list(TUNED_ON), "machine": machine_info(),
              "summary": {key: {"all": summarize(records, key), "tuned_on": summarize(tuned, key),
                                "rest": summarize(rest, key), "held_out": summarize(held, key)}
                          for key in keys},
              "second_tuned_on": list(SECOND_TUNED_ON),
              "second_point": {key: {"all": summarize_second(records, key),
                                     "tuned_on": summarize_second([r for r in records if r["photo"] in SECOND_TUNED_ON], key),
                                     "rest": summarize_second([r for r in records if r["photo"] not in SECOND_TUNED_ON], key),
                                     "held_out": summarize_second(held, key)}
                               for key in ("prior", "others") + (("model",) if predictor is not None else ())},
              "latency": {key: latency(records, key) for key in keys}}
    if predictor is not None:
        seconds = [r["model_seconds"] for r in records if "model_seconds" in r]
        result["model_ms_median"] = round(1000 * statistics.median(seconds), 1) if seconds else None
    if twelve_mp:
        big = []
        sizes = {r["photo"]: (r["height"], r["width"]) for r in records}  # measured above: no second decode
        for name in names[:: max(1, len(names) // 8)]:  # about one photo in eight: upscaled to 12 MP
            height, width = sizes[name]
            scale = (TWELVE_MP / (height * width)) ** 0.5
            big += measure_photo(data_dir / "images" / name, answers[name], None, scale, two_clicks=False)
        result["twelve_mp"] = {"photos": len({r["photo"] for r in big}), "size": [big[0]["width"], big[0]["height"]] if big else None,
                               "summary": summarize(big, "others"), "latency": latency(big, "others")}
    result["records"] = records
    return result


def section(result: dict, command: str) -> str:
    start, end = markers(SECTION)
    lines = [start, "## Click a nail, get the nail (`bench/click_nail.py`, issue #18)", "",
             f"Command: `{command}`. Machine: {result['machine']['cpu']}, {result['machine']['nproc']} CPUs, load average "
             f"{result['machine']['load'][0]:.2f} at the start (a shared machine: other work running, which inflates the "
             f"latencies). {result['photos']} shared photos, one click per "
             "nail at its pole of inaccessibility (shapely `polylabel`), the polygon of "
             "`ml.click_segmentation.segment_click` against the answer (both rasterized by `dataset/raster.py`). "
             "`prior`: the nail size a photo without labels gets (the image's first nail); `others`: the size from the "
             "photo's other nails (what the tool sends once the image has some). Both use `ml.click_outline`'s network "
             "(the image-only prior since 2026-12-06), trained on the tuning participants' photos: for it only "
             "`held_out` is fair. `grabcut`: the size from the other nails and GrabCut alone (the method before the "
             "network, `ClickRules(outline_net=False)`). `model`: a trained model's probability averaged with the "
             "network's; `model_alone`: the model's alone (before 2026-12-06).",
             f"`ClickRules` were tuned on {len(result['tuned_on'])} photos only ({', '.join(n[:8] for n in result['tuned_on'])}…); "
             "`rest` is the other photos; `held_out`: the photos of the participants `bench/annotation_effort.py`'s model "
             "does not train on (`bench/complete_labels.py`'s `HELD_OUT`), the only fair set for that model (one of "
             "them, 09aefeec, is among the photos `ClickRules` were tuned on).", "",
             "| mode | set | nails | IoU median | IoU p25 | IoU >= 0.75 | vertices (median) | confidence median | "
             "IoU median, confidence < 0.5 (nails) | IoU median, confidence >= 0.5 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, sets in result["summary"].items():
        for name in ("all", "tuned_on", "rest", "held_out"):
            m = sets.get(name) or {}
            if not m.get("nails"):
                continue
            lines.append(f"| {key} | {name} | {m['nails']} | {fmt(m['iou_median'], 3)} | {fmt(m['iou_p25'], 3)} | "
                         f"{fmt(100 * m['share_iou_075'], 0)} % | {fmt(m['vertices_median'], 0)} | {fmt(m['confidence_median'], 2)} | "
                         f"{fmt(m['iou_median_confidence_below_05'], 3)} ({m['nails_confidence_below_05']}) | "
                         f"{fmt(m['iou_median_confidence_above_05'], 3)} |")
    lines += ["", f"Two clicks: each proposal under IoU {BAR:g} gets one corrective point by the effort bench's annotator rule "
              "(positive at the pole of the biggest region the proposal missed, if at least 2 % of the nail; else negative at "
              "the pole of the biggest region it has too much), sent with the first click. The corrective positive point's seed "
              f"(`ClickRules.later_*`) was chosen on {len(result['second_tuned_on'])} photos (the 5 above and the next 5 by name "
              "not held out); `rest` is the other photos. `model`: with the model's probability, a negative point read by the "
              "network alone where its crop reaches, taken as it is (`ClickRules.negatives_by_outline_net`, since 2026-12-06 noon; "
              "the earlier rule: GrabCut on the mean of the model's and the network's probability), a positive one by the mean "
              "(the network alone, `positives_by_outline_net`, was tried and not kept).", "",
              "| mode | set | point | points | IoU before (median) | IoU after (median) | raised | reached 0.9 | dropped from >= 0.5 to < 0.5 |",
              "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, sets in result.get("second_point", {}).items():
        for name in ("all", "tuned_on", "rest", "held_out"):
            for kind, m in sets.get(name, {}).items():
                if m["points"]:
                    lines.append(f"| {key} | {name} | {point_kinds(key)[kind][2]} | {m['points']} | "
                                 f"{fmt(m['iou_before_median'], 3)} | {fmt(m['iou_after_median'], 3)} | {m['raised']} | "
                                 f"{m['reached_bar']} | {m['dropped_below_05']} |")
    lines += ["", "Latency of `segment_click` in one process (first: the photo's decoding + the first click, median over "
              "photos; later: the next clicks on the same photo, as the endpoint's cache makes them):", "",
              "| photos | mode | first call (ms) | later calls median (ms) | later p90 (ms) |", "| --- | --- | --- | --- | --- |"]
    for key, lat in result["latency"].items():
        lines.append(f"| shared, own size | {key} | {fmt(lat['first_ms_median'])} | {fmt(lat['later_ms_median'])} | "
                     f"{fmt(lat['later_ms_p90'])} |")
    big = result.get("twelve_mp")
    if big and big["size"]:
        lat, m = big["latency"], big["summary"]
        lines.append(f"| {big['photos']} upscaled to 12 MP ({big['size'][0]}x{big['size'][1]}) | others | "
                     f"{fmt(lat['first_ms_median'])} | {fmt(lat['later_ms_median'])} | {fmt(lat['later_ms_p90'])} |")
        lines += ["", "(12 MP first call: the small photo's decoding and upscaling, not a 12 MP JPEG's decoding, which "
                  "the endpoint does once per image.)", "", f"At 12 MP the IoU median is {fmt(m['iou_median'], 3)} and the median vertex count "
                  f"{fmt(m['vertices_median'], 0)} (the polygon is simplified within 1 px at full resolution)."]
    if "model" in result["summary"]:
        lines += ["", f"Model mode: the probability map took {fmt(result.get('model_ms_median'))} ms per photo (once per "
                  "image and model version; the endpoint caches it)."]
    else:
        lines += ["", "Model mode was not measured in this run (no trained model at hand): "
                  "`python bench/click_nail.py --model CHECKPOINT` adds it (target: IoU median >= 0.85 with a model "
                  "trained on the shared set, on photos it did not train on)."]
    lines += ["", f"Targets (issue #18): median IoU >= 0.75 image-only; later calls under ~150 ms on 2 CPU cores for a 12 MP "
              f"photo. Written {time.strftime('%Y-%m-%d')}; per-nail figures in `docs/results/click_nail.json`.", end, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(SHARED), help="folder with annotations.coco.json and images/")
    parser.add_argument("--model", help="a checkpoint (ml/checkpoint.py) whose probability map is used as well")
    parser.add_argument("--only", nargs="*", default=(), help="only these photos (file names), e.g. while tuning")
    parser.add_argument("--no-12mp", action="store_true", help="skip the photos upscaled to 12 MP")
    parser.add_argument("--no-docs", action="store_true", help="print only; write neither the JSON nor the doc")
    parser.add_argument("--json", help="also write the full result here (with its command), e.g. on the GPU machine")
    parser.add_argument("--from-json", help="measure nothing: write docs/results/click_nail.json and the doc section "
                                            "of a result that --json saved (elsewhere)")
    args = parser.parse_args(argv)
    if args.from_json:
        result = json.loads(Path(args.from_json).read_text())
    else:
        predictor = None
        if args.model:
            from ml.predict import Predictor

            predictor = Predictor.from_checkpoint(args.model, threads=2)
        result = evaluate(Path(args.data), predictor, tuple(args.only), twelve_mp=not args.no_12mp)
        result["command"] = "python bench/click_nail.py " + " ".join(argv if argv is not None else sys.argv[1:])
    summary = {k: v for k, v in result.items() if k != "records"}
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
