#!/usr/bin/env python
"""Post-processing and rendering time per 640x480 frame in Python (``ml.postprocess``, ``ml.render``).

    .venv/bin/python bench/postprocess_render.py              # ~1 min; writes docs/benchmarks.md
    .venv/bin/python bench/postprocess_render.py --runs 10 --no-docs

What it measures (wall time of each call, median and p90 of ``--runs`` after ``--warmup``; the cases take
turns run by run so that a change of load on a shared machine hits them alike):

* post-processing of one frame of model output (fg probability, 10 class probabilities, field, all at
  640x480 float32) holding 5 nails: with the class and field heads; binary (no class head) with the field;
  binary without a field (principal axes) and the same oriented from the photo;
* rendering of a real photo (``../shared/data/nails-cc0``, ``d6303a64...jpg`` resized to 640x480, its 5
  labelled nails; a synthetic frame when the folder is missing) in each finish; the labels have no base/tip
  landmarks, so the axes are found from the photo; "with landmarks" gives them (the same axes) to isolate
  that cost;
* the whole per-frame tail of the try-on (post-processing + rendering) from a prediction.

Browser (JavaScript) times of the same steps: ``bench/tryon_browser.py`` (Python is rerun there as the baseline).
Every number written is measured by the run; nothing is hard-coded.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from dataset.raster import rasterize  # noqa: E402
from ml.data import simulated_prediction  # noqa: E402
from ml.postprocess import nail_axis, orient_from_image, postprocess  # noqa: E402
from ml.render import FINISHES, render  # noqa: E402

from benchdoc import DOC, add_timing_arguments, git_commit, machine_info, markers, wait_for_quiet, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

SECTION_START, SECTION_END = markers("postprocess_render")
SHARED = ROOT.parent / "shared" / "data" / "nails-cc0"
PHOTO = "d6303a64-db67-11e8-9658-0242ac1c0002.jpg"
H, W = 480, 640


# --------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------


def load_photo() -> tuple[np.ndarray, dict, str]:
    """(640x480 RGB, its labels scaled to it, a description)."""
    coco = SHARED / "annotations.coco.json"
    if coco.is_file() and (SHARED / "images" / PHOTO).is_file():
        data = json.loads(coco.read_text())
        info = next(i for i in data["images"] if i["file_name"] == PHOTO)
        bgr = cv2.imread(str(SHARED / "images" / PHOTO))
        rgb = cv2.cvtColor(cv2.resize(bgr, (W, H), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        sx, sy = W / info["width"], H / info["height"]
        nails = []
        for ann in data["annotations"]:
            if ann["image_id"] == info["id"]:
                ring = ann["segmentation"][0]
                nails.append({"polygon": [[ring[i] * sx, ring[i + 1] * sy] for i in range(0, len(ring), 2)],
                              "finger": None, "base": None, "tip": None})
        return rgb, {"nails": nails}, (f"`../shared/data/nails-cc0/images/{PHOTO}` ({info['width']}x{info['height']}, "
                                       f"CC0) resized to {W}x{H}, its {len(nails)} labelled nails")
    rng = np.random.default_rng(0)
    rgb = rng.integers(40, 90, (H, W, 3), dtype=np.uint8)
    nails = []
    for k in range(5):
        cx, cy = 140 + 90 * k, 200 + 10 * k
        cv2.rectangle(rgb, (cx - 25, cy - 10), (cx + 25, H - 1), (222, 172, 150), -1)
        nails.append({"polygon": [[cx + 18 * math.cos(a), cy + 26 * math.sin(a)]
                                  for a in np.linspace(0, 2 * math.pi, 32, endpoint=False)],
                      "finger": None, "base": None, "tip": None})
    return rgb, {"nails": nails}, f"a synthetic {W}x{H} frame with 5 nails (the shared photos were not found)"


def with_landmarks(rgb: np.ndarray, geometry: dict) -> dict:
    """The labels with base/tip set along the axes the photo gives (so the two renders paint the same)."""
    nails = []
    allm = rasterize(geometry, W, H).foreground > 0
    for nail in geometry["nails"]:
        pts = np.asarray(nail["polygon"], float)
        centre, axis = nail_axis(pts)
        x0, y0 = np.floor(pts.min(0)).astype(int).clip(0)
        x1, y1 = np.ceil(pts.max(0)).astype(int)
        x1, y1 = min(W, x1), min(H, y1)
        mask = rasterize({"nails": [{"polygon": (pts - (x0, y0)).tolist()}]}, x1 - x0, y1 - y0).foreground > 0
        u, _ = orient_from_image(rgb, mask, (x0, y0), centre, axis, allm)
        t = (pts - centre) @ u
        nails.append(dict(nail, base=(centre + u * t.min() * 0.9).tolist(), tip=(centre + u * t.max() * 0.9).tolist()))
    return {"nails": nails}


def prediction(geometry: dict, seed: int = 0):
    """Model output of a frame whose nails are ``geometry``'s, with fingers 2..6 (``ml.data.simulated_prediction``)."""
    return simulated_prediction({"nails": [dict(n, finger=2 + i) for i, n in enumerate(geometry["nails"])]}, W, H, seed)


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------


def time_cases(cases: dict, runs: int, warmup: int) -> dict[str, dict]:
    for fn in cases.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(runs):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) * 1000)
    return {name: {"median": statistics.median(v), "p90": float(np.percentile(v, 90)), "min": min(v), "runs": len(v)}
            for name, v in times.items()}


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def build_section(r: dict) -> str:
    info = r["machine"]
    lines = [SECTION_START, "## Post-processing and rendering per 640x480 frame, Python (`bench/postprocess_render.py`)", ""]
    lines.append(f"Measured {r['date']} in {r['total_s']:.0f} s with `{r['command']}`"
                 + (f" (commit {info['commit']})" if info["commit"] else "") + ".")
    lines.append("")
    lines += ["### Set-up", ""]
    lines.append(f"- **Machine**: {info['nproc']} CPUs ({info['cpu']}), load average {info['load'][0]:.2f} before "
                 f"the run (the machine is shared: other processes may have run meanwhile).")
    lines.append(f"- **Software**: Python {info['python']}, " + ", ".join(f"{k} {v}" for k, v in info["versions"].items())
                 + "; OpenCV threads: " + ", ".join(str(t) for t in r["threads"]) + " (one table each).")
    lines.append(f"- **Frame**: {r['photo']}. Post-processing input: a prediction of those nails at full "
                 "resolution (fg probability, 10 class probabilities, field; float32, soft edges, noise), what "
                 "`ml.predict.Predictor` hands over after upsampling; model inference itself is in the model "
                 "latency section.")
    lines.append(f"- **Timing**: wall time per call, {r['runs']} runs after {r['warmup']} warm-up runs, cases "
                 "interleaved run by run; median, p90 and best in ms.")
    lines.append("")
    for threads, results in r["results"].items():
        lines += [f"### OpenCV threads: {threads}", "", "| step | median ms | p90 ms | best ms |",
                  "| --- | ---: | ---: | ---: |"]
        for name, v in results.items():
            lines.append(f"| {name} | {v['median']:.1f} | {v['p90']:.1f} | {v['min']:.1f} |")
        lines.append("")
    lines.append("Post-processing scales with the nail pixels and the number of blobs (connected components on "
                 "the whole frame are well under a millisecond); rendering works in each nail's box, "
                 "at 4x supersampling for the anti-aliased mask, so it scales with the painted area. Orienting "
                 "nails without landmarks or field from the photo is the difference between the two label rows.")
    lines.append("")
    lines.append("**Browser**: the JavaScript ports of these steps (the try-on page's in-browser path) are "
                 "measured beside Python in the `tryon_browser` section (`bench/tryon_browser.py`).")
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_arguments(parser, runs=50)
    parser.add_argument("--threads", type=int, nargs="*", default=None,
                        help="OpenCV thread counts to measure (default: OpenCV's default, then 1)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    wait_for_quiet(args.wait_idle, threshold=0.5 * (os.cpu_count() or 1))
    import shapely

    info = {**machine_info(),  # load average before the measurements
            "commit": git_commit(("ml/postprocess.py", "ml/render.py", "bench/postprocess_render.py"),
                                 "ml/postprocess.py, ml/render.py or this script"),
            "versions": {"numpy": np.__version__, "opencv": cv2.__version__, "shapely": shapely.__version__}}
    default_threads = cv2.getNumThreads()
    threads = args.threads or sorted({default_threads, 1}, reverse=True)

    rgb, labels, photo = load_photo()
    landmarks = with_landmarks(rgb, labels)
    fg, cls, field = prediction(landmarks)
    nails = postprocess(fg, cls, field)
    assert len(nails) == len(labels["nails"]), f"expected {len(labels['nails'])} nails, got {len(nails)}"

    cases = {
        "post-processing, classes + field": lambda: postprocess(fg, cls, field),
        "post-processing, binary + field": lambda: postprocess(fg, None, field),
        "post-processing, binary, no field (principal axes)": lambda: postprocess(fg),
        "post-processing, binary, no field, axes oriented from the photo": lambda: postprocess(fg, image=rgb),
    }
    for finish in FINISHES:
        cases[f"render {finish}, labels with landmarks"] = lambda f=finish: render(rgb, landmarks, "#C8102E", f)
    cases["render glossy, labels without landmarks (axes from the photo)"] = lambda: render(rgb, labels, "#C8102E")
    cases["post-processing + render glossy (the try-on's per-frame tail)"] = \
        lambda: render(rgb, postprocess(fg, cls, field), "#C8102E")

    results = {}
    for n in threads:
        cv2.setNumThreads(n)
        results[str(n)] = time_cases(cases, args.runs, args.warmup)
        for name, v in results[str(n)].items():
            print(f"threads {n:>2}  {name:<70} median {v['median']:7.2f} ms  p90 {v['p90']:7.2f} ms")
    cv2.setNumThreads(default_threads)

    report = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": ".venv/bin/python bench/postprocess_render.py" + (" " + shlex.join(argv or sys.argv[1:])
                                                                          if (argv or sys.argv[1:]) else ""),
              "machine": info, "threads": threads, "runs": args.runs, "warmup": args.warmup, "photo": photo,
              "results": results, "total_s": time.monotonic() - started}
    if not args.no_docs:
        write_section("postprocess_render", build_section(report))
        print(f"wrote the postprocess_render section of {DOC.relative_to(ROOT)}")
    return report


if __name__ == "__main__":
    main()
