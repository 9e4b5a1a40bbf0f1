#!/usr/bin/env python
"""Click a nail, get the nail: the endpoint's own latency on 12 MP photos (issue #18).

    python bench/click_endpoint.py [--model CHECKPOINT] [--photos N] [--work DIR] [--no-docs]

``bench/click_nail.py`` times :func:`ml.click_segmentation.segment_click` alone; this times the whole
``POST /api/images/{id}/click-nail/`` as the annotation tool sends it (``labeling/click_nail.py``: the photo
decoded once per image and kept, the outline, the finger and base/tip from the label suggestions with the
page's nails and, with a model, its probability map (once per image and version) and its context nails and
votes). A scratch instance (SQLite) gets the held-out participants' photos (``--photos N``: the first N)
upscaled to 12 MP and stored as JPEG through intake; an annotator's session (Django's test client, in process:
no HTTP server in the times) clicks each photo's nails left to right at their pole of inaccessibility, sending
the nails clicked before as the page's nails (with their answers' finger and base/tip). The first call on a
photo (decoding, and with a model its map) and the later ones are reported apart: median, 90th percentile,
max (ms). With ``--model`` the same again on fresh copies with the checkpoint as the active model. Writes
``docs/results/click_endpoint.json`` and the ``click_endpoint`` section of ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from bench.annotation_effort import USER, activate_model, add_photos, iou, load_answers, pole, start_instance  # noqa: E402
from bench.benchdoc import git_commit, log, machine_info, markers, measured_line, publish_report  # noqa: E402
from bench.click_nail import TWELVE_MP  # noqa: E402

SECTION = "click_endpoint"
RESULTS = ROOT / "docs" / "results" / "click_endpoint.json"


def upscaled(path: Path, nails: list[dict], pixels: int = TWELVE_MP):
    """The photo resized to about ``pixels`` (PIL, bicubic) and its answers scaled with it."""
    from PIL import Image as PILImage

    picture = PILImage.open(path).convert("RGB")
    scale = (pixels / (picture.width * picture.height)) ** 0.5
    big = picture.resize((round(picture.width * scale), round(picture.height * scale)), PILImage.BICUBIC)
    grow = lambda p: None if p is None else [float(v) * scale for v in p]  # noqa: E731
    return big, [{"polygon": [grow(p) for p in n["polygon"]], "finger": n["finger"], "base": grow(n["base"]),
                  "tip": grow(n["tip"])} for n in nails]


def click_photo(client, image_id: int, nails: list[dict]) -> list[dict]:
    """Every nail of one photo clicked left to right; one record per call."""
    records = []
    order = sorted(range(len(nails)), key=lambda i: pole(nails[i]["polygon"])[0])
    for k, i in enumerate(order):
        page = [{"polygon": nails[j]["polygon"], "finger": nails[j]["finger"], "base": nails[j]["base"],
                 "tip": nails[j]["tip"]} for j in order[:k]]
        x, y = pole(nails[i]["polygon"])
        started = time.perf_counter()
        response = client.post(f"/api/images/{image_id}/click-nail/", {"points": [[x, y, 1]], "nails": page},
                               format="json")
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"click-nail answered {response.status_code}: {response.content[:300]!r}")
        data = response.json()
        polygon = (data.get("nail") or {}).get("polygon") or []
        records.append({"image": image_id, "call": k, "ms": round(1000 * seconds, 2), "source": data.get("source"),
                        "iou": round(iou(polygon, nails[i]["polygon"]), 4) if polygon else 0.0})
    return records


def summary(records: list[dict]) -> dict:
    def stats(values):
        if not values:
            return None
        return {"calls": len(values), "median_ms": round(statistics.median(values), 1),
                "p90_ms": round(float(np.percentile(values, 90)), 1), "max_ms": round(max(values), 1)}
    return {"first": stats([r["ms"] for r in records if r["call"] == 0]),
            "later": stats([r["ms"] for r in records if r["call"] > 0]),
            "iou_median": round(statistics.median(r["iou"] for r in records), 4) if records else None,
            "sources": sorted({r["source"] for r in records})}


def measure(photos: list[dict], checkpoint: Path | None, work: Path) -> dict:
    start_instance(work / f"instance-{int(time.time())}")   # Django set up on a scratch SQLite database
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(User.objects.get(username=USER))
    pictures = [upscaled(Path(p["path"]), p["nails"]) for p in photos]
    log(f"{len(pictures)} photos at {pictures[0][0].width}x{pictures[0][0].height}")
    results = {}
    for mode in ["image"] + (["model"] if checkpoint else []):
        if mode == "model":
            activate_model(checkpoint)
        ids = add_photos(f"endpoint-{mode}", [picture for picture, _ in pictures])
        records = []
        for image_id, (_, nails) in zip(ids, pictures):
            records += click_photo(client, image_id, nails)
        results[mode] = {"summary": summary(records), "records": records}
        log(f"{mode}: {json.dumps(results[mode]['summary'])}")
    return {"size": [pictures[0][0].width, pictures[0][0].height], "photos": len(pictures), "modes": results}


def render(report: dict) -> str:
    start, end = markers(SECTION)
    lines = [start, "## Click a nail: the endpoint at 12 MP (`bench/click_endpoint.py`, issue #18)", "",
             f"{measured_line(report)} `POST "
             "/api/images/{id}/click-nail/` through Django's test client in one process (no HTTP server), an "
             f"annotator's session, on {report['photos']} held-out photos upscaled to about 12 MP (the first to "
             f"{report['size'][0]}x{report['size'][1]}) and stored as JPEG; each photo's nails clicked left to right at their pole, the "
             "nails before sent as the page's. The first call on a photo decodes it (and, with a model, makes its "
             "probability map); the later calls reuse both, as the endpoint's caches do.", "",
             "| mode | first call: median (ms) | calls | later calls: median (ms) | p90 | max | calls | one click's IoU (median) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode, result in report["modes"].items():
        s = result["summary"]
        first, later = s["first"], s["later"]
        lines.append(f"| {mode} ({', '.join(s['sources'])}) | {first['median_ms']} | {first['calls']} | {later['median_ms']} "
                     f"| {later['p90_ms']} | {later['max_ms']} | {later['calls']} | {s['iou_median']} |")
    if report.get("model"):
        lines += ["", f"Model: `{report['model']}` active (its probability map, context nails and votes)."]
    lines += ["", "Target (issue #18): later calls under ~150 ms on 2 CPU cores for a 12 MP photo. Per call: "
              f"`{RESULTS.relative_to(ROOT)}`.", end, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="a checkpoint: also measured with it as the active model")
    parser.add_argument("--photos", type=int, default=0, help="only the first N held-out photos (0: all)")
    parser.add_argument("--work", default=None, help="folder for the scratch instance")
    parser.add_argument("--json", default=str(RESULTS), help="where the per-call figures go")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="click-endpoint-"))
    photos = [p for p in load_answers() if p["held_out"]][: args.photos or None]
    report = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "machine": {**machine_info(), "commit": git_commit() or "?"}, "model": args.model}
    started = time.perf_counter()
    report.update(measure(photos, Path(args.model) if args.model else None, work))
    publish_report(report, started, "bench/click_endpoint.py", argv, render, SECTION, args.json, args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
