#!/usr/bin/env python
"""Post-processing and rendering time per 640x480 frame in the browser (the try-on page's
tryon/static/tryon/postprocess.js with the modules it imports, and render.js, in headless Chromium), with
Python's (ml.postprocess, ml.render) measured in the same run on the same frames as the baseline.

    .venv/bin/python bench/tryon_browser.py              # ~2 min; writes docs/benchmarks.md
    .venv/bin/python bench/tryon_browser.py --runs 10 --no-docs

Frames (640x480):

* **photo, 5 nails**: exactly ``bench/postprocess_render.py``'s frame: the CC0 photo
  ``../shared/data/nails-cc0/images/d6303a64...jpg`` resized to 640x480 with its 5 labelled nails (base/tip
  set from the photo), and a model output of those nails (fg probability, 10 class probabilities, field;
  float32, soft edges, noise) from that script's ``prediction``; a synthetic frame when the folder is missing;
* **synthetic, 10 nails**: ten nails of two hands (fingers 1..10, several angles) on a textured frame, the
  model output made the same way.

Cases (each timed per call, ``--runs`` runs after ``--warmup``, interleaved run by run; median, p90, best):
post-processing with classes + field / binary + field / binary without field, and with the integer class map
that the page hands over (the argmax comes from the GPU); rendering of the labels (with landmarks) in each
finish; post-processing + rendering glossy (the try-on's per-frame tail); in the browser also the tail plus
``putImageData`` on a canvas, which is what the page does per frame. Python's cases are Python's own calls
on the same arrays. Chromium: Debian's ``/usr/bin/chromium`` through Playwright's Python package (never
``playwright install``), headless, ``--no-sandbox --disable-gpu --disable-background-networking
--disable-component-update --disable-sync --no-first-run`` (tests/browser.py); the page and the modules are
served to it by Playwright's request routing from the working tree, the arrays as binary files.
Model inference is not part of this (the model latency and export sections have it).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import math
import shlex
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from ml.data import simulated_prediction  # noqa: E402
from ml.postprocess import postprocess  # noqa: E402
from ml.render import FINISHES, render  # noqa: E402
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

from benchdoc import DOC, add_timing_arguments, fmt, git_commit, loadavg, log, machine_info, markers, wait_for_quiet, write_section  # noqa: E402  (bench/ is on sys.path)
from postprocess_render import H, W, load_photo, prediction, time_cases, with_landmarks  # noqa: E402

SECTION = "tryon_browser"
SECTION_START, SECTION_END = markers(SECTION)
STATIC = ROOT / "tryon" / "static" / "tryon"
ORIGIN = "http://bench.nailset.invalid"


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------


def ten_nail_frame(seed: int = 0) -> tuple[np.ndarray, dict]:
    """A textured 640x480 frame with two hands' fingers (5 from the bottom, 5 from the top) and their 10
    nails (fingers 1..10, base/tip landmarks)."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(40, 90, (H, W, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    nails = []
    for k in range(10):
        bottom = k < 5
        x = 90 + 115 * (k % 5) + (0 if bottom else 40)
        y = 300 - 12 * abs(k % 5 - 2) if bottom else 170 + 10 * abs(k % 5 - 2)
        angle = (-90 + 9 * (k % 5 - 2)) if bottom else (90 + 9 * (k % 5 - 2))
        a, b = (30, 17) if k % 5 else (34, 20)  # thumbs are larger
        u = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
        perp = np.array([-u[1], u[0]])
        t, s = (xx - x) * u[0] + (yy - y) * u[1], (xx - x) * perp[0] + (yy - y) * perp[1]
        rgb[(np.abs(s) < b + 6) & (t < a - 4)] = (218, 168, 148)
        inside = (t / a) ** 2 + (s / b) ** 2 <= 1
        rgb[inside] = np.stack([232 - 25 * np.abs(s[inside]) / b] * 3, -1) * (1, 0.87, 0.87) + (t[inside] > 0.7 * a)[:, None] * 20
        polygon = [(np.array([x, y]) + a * math.cos(q) * u + b * math.sin(q) * perp).tolist()
                   for q in np.linspace(0, 2 * math.pi, 40, endpoint=False)]
        nails.append({"polygon": polygon, "finger": None, "base": (np.array([x, y]) - 0.9 * a * u).tolist(),
                      "tip": (np.array([x, y]) + 0.9 * a * u).tolist()})
    return np.clip(rgb + rng.normal(0, 3, rgb.shape), 0, 255).astype(np.uint8), {"nails": nails}


def ten_nail_prediction(geometry: dict, seed: int = 0):
    """Model output of the ten-nail frame, fingers 1..10 (``ml.data.simulated_prediction``)."""
    return simulated_prediction({"nails": [dict(n, finger=1 + i) for i, n in enumerate(geometry["nails"])]}, W, H, seed)


def frames() -> list[dict]:
    rgb, labels, description = load_photo()
    landmarks = with_landmarks(rgb, labels)
    fg, cls, field = prediction(landmarks)
    ten_rgb, ten_labels = ten_nail_frame()
    ten = ten_nail_prediction(ten_labels)
    return [
        {"key": "photo5", "title": "photo, 5 nails", "short": "photo", "description": description, "rgb": rgb, "labels": landmarks,
         "fg": fg, "cls": cls, "field": field},
        {"key": "synthetic10", "title": "synthetic, 10 nails", "short": "synthetic frame",
         "description": f"a synthetic {W}x{H} frame with 10 nails of two hands (fingers 1..10)", "rgb": ten_rgb,
         "labels": ten_labels, "fg": ten[0], "cls": ten[1], "field": ten[2]},
    ]


def class_map(frame: dict) -> np.ndarray:
    return np.where(frame["fg"] > 0.5, frame["cls"].argmax(axis=2) + 1, 0).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Python
# --------------------------------------------------------------------------------------------------


def python_cases(frame: dict) -> dict:
    rgb, labels, fg, cls, field = frame["rgb"], frame["labels"], frame["fg"], frame["cls"], frame["field"]
    cmap = class_map(frame)
    cases = {
        "post-processing, classes + field": lambda: postprocess(fg, cls, field),
        "post-processing, class map + field (the page's input)": lambda: postprocess(fg, cmap, field),
        "post-processing, binary + field": lambda: postprocess(fg, None, field),
        "post-processing, binary, no field (principal axes)": lambda: postprocess(fg),
    }
    for finish in FINISHES:
        cases[f"render {finish}, labels with landmarks"] = lambda f=finish: render(rgb, labels, "#C8102E", f)
    cases["post-processing + render glossy (the per-frame tail)"] = \
        lambda: render(rgb, postprocess(fg, cls, field), "#C8102E")
    return cases


# --------------------------------------------------------------------------------------------------
# Browser
# --------------------------------------------------------------------------------------------------

BENCH_PAGE = """<!doctype html><meta charset="utf-8"><title>try-on bench</title><canvas id="c"></canvas>
<script type="module">
import { postprocess } from "./tryon/postprocess.js";
import { FINISHES, render } from "./tryon/render.js";

async function bin(name, Type) { return new Type(await (await fetch(name)).arrayBuffer()); }

window.runBench = async (spec) => {
  const { width, height, runs, warmup } = spec;
  const base = `./data/${spec.key}/`;
  const [fgProb, classProb, field, classMap, rgba] = await Promise.all([
    bin(base + "fg.bin", Float32Array), bin(base + "cls.bin", Float32Array), bin(base + "field.bin", Float32Array),
    bin(base + "classmap.bin", Uint8Array), bin(base + "rgba.bin", Uint8ClampedArray)]);
  const image = { data: rgba, width, height };
  const labels = spec.labels;
  const canvas = document.getElementById("c");
  canvas.width = width; canvas.height = height;
  const ctx = canvas.getContext("2d");
  const out = new Uint8ClampedArray(rgba.length);
  const cases = {
    "post-processing, classes + field": () => postprocess({ width, height, fgProb, classProb, field }),
    "post-processing, class map + field (the page's input)": () => postprocess({ width, height, fgProb, classMap, field }),
    "post-processing, binary + field": () => postprocess({ width, height, fgProb, field }),
    "post-processing, binary, no field (principal axes)": () => postprocess({ width, height, fgProb }),
  };
  for (const finish of Object.keys(FINISHES)) {
    cases[`render ${finish}, labels with landmarks`] = () => render(image, labels, "#C8102E", finish, {}, out);
  }
  cases["post-processing + render glossy (the per-frame tail)"] = () =>
    render(image, postprocess({ width, height, fgProb, classProb, field }), "#C8102E", "glossy", {}, out);
  cases["the page's frame: post-processing (class map) + render glossy + putImageData"] = () => {
    const painted = render(image, postprocess({ width, height, fgProb, classMap, field }), "#C8102E", "glossy", {}, out);
    ctx.putImageData(new ImageData(painted.data, width, height), 0, 0);
  };
  const names = Object.keys(cases), times = Object.fromEntries(names.map((n) => [n, []]));
  for (const name of names) for (let i = 0; i < warmup; i++) cases[name]();
  for (let r = 0; r < runs; r++) {
    for (const name of names) {
      const t0 = performance.now();
      cases[name]();
      times[name].push(performance.now() - t0);
    }
    await new Promise((resolve) => setTimeout(resolve, 0));  // let the page breathe between runs
  }
  const nails = postprocess({ width, height, fgProb, classProb, field });
  return { times, nails: nails.length, fingers: nails.map((n) => n.finger), angles: nails.map((n) => n.angle),
           userAgent: navigator.userAgent };
};
window.benchReady = true;
</script>"""


def summarize(values: list[float]) -> dict:
    return {"median": statistics.median(values), "p90": float(np.percentile(values, 90)), "min": min(values),
            "runs": len(values)}


def run_browser(frame_list: list[dict], runs: int, warmup: int) -> dict:
    from playwright.sync_api import sync_playwright

    payloads = {}
    for f in frame_list:
        rgba = np.concatenate([f["rgb"], np.full((H, W, 1), 255, np.uint8)], axis=2)
        payloads[f["key"]] = {"fg.bin": f["fg"].tobytes(), "cls.bin": f["cls"].tobytes(), "field.bin": f["field"].tobytes(),
                              "classmap.bin": class_map(f).tobytes(), "rgba.bin": rgba.tobytes()}

    def handle(route):
        path = route.request.url[len(ORIGIN):].split("?")[0]
        if path in ("/", "/bench.html"):
            return route.fulfill(status=200, content_type="text/html", body=BENCH_PAGE)
        if path.startswith("/tryon/") and (STATIC / path[len("/tryon/"):]).is_file():
            return route.fulfill(status=200, content_type="text/javascript",
                                 body=(STATIC / path[len("/tryon/"):]).read_bytes())
        if path.startswith("/data/"):
            _, _, key, name = path.split("/", 3)
            if key in payloads and name in payloads[key]:
                return route.fulfill(status=200, content_type="application/octet-stream", body=payloads[key][name])
        return route.fulfill(status=404, body="not found")

    results = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.route(f"{ORIGIN}/**", handle)
            page.goto(f"{ORIGIN}/bench.html")
            page.wait_for_function("() => window.benchReady === true", timeout=60_000)
            for f in frame_list:
                spec = {"key": f["key"], "width": W, "height": H, "runs": runs, "warmup": warmup,
                        "labels": f["labels"]["nails"]}
                log(f"browser: {f['title']} ({runs} runs)")
                out = page.evaluate("(spec) => window.runBench(spec)", spec)
                results[f["key"]] = {"cases": {k: summarize(v) for k, v in out["times"].items()}, "nails": out["nails"],
                                     "fingers": out["fingers"], "angles": out["angles"]}
                results["user_agent"] = out["userAgent"]
            assert not errors, errors
            results["chromium"] = browser.version
        finally:
            browser.close()
    return results


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def build_section(r: dict) -> str:
    info = r["machine"]
    lines = [SECTION_START, "## Post-processing and rendering per 640x480 frame, browser vs Python (`bench/tryon_browser.py`)", ""]
    lines.append(f"Measured {r['date']} in {r['total_s']:.0f} s with `{r['command']}`"
                 + (f" (commit {r['commit']})" if r["commit"] else "") + ".")
    lines += ["", "### Set-up", ""]
    lines.append(f"- **Machine**: {info['nproc']} CPUs ({info['cpu']}), {fmt(info['mem_gib'])} GiB; load average "
                 f"{r['load_start'][0]:.2f} at the start, {r['load_end'][0]:.2f} at the end (the machine is shared: "
                 "other processes may have run meanwhile).")
    lines.append(f"- **Browser**: Chromium {r['browser']['chromium']} (`{CHROMIUM}`, headless, `{' '.join(CHROMIUM_ARGS)}`: "
                 "no GPU; post-processing and rendering are plain JavaScript on the CPU, one thread, and a 2D canvas), "
                 "driven by Playwright's Python package; the modules are `tryon/static/tryon/postprocess.js` (with "
                 "the `components.js`, `outline.js` and `orientation.js` it imports) and `render.js`, as the try-on "
                 "page loads them.")
    lines.append(f"- **Python**: {info['python']}, NumPy {np.__version__}, OpenCV {cv2.__version__} with its default "
                 f"threads ({cv2.getNumThreads()}), in the bench's own process, before the browser.")
    lines.append("- **Frames**: " + "; ".join(f"*{f['title']}*: {f['description']}" for f in r["frames"]) + ". The model "
                 "output of each (fg probability, 10 class probabilities, field; float32 at 640x480) is built like "
                 "`bench/postprocess_render.py` builds it; the browser gets the same bytes.")
    lines.append(f"- **Timing**: wall time per call (`performance.now()` in the page, `time.perf_counter()` in Python), "
                 f"{r['runs']} runs after {r['warmup']} warm-up calls per case, cases interleaved run by run; "
                 "median, p90 and best in ms; browser / Python is the ratio of the medians.")
    lines.append("- **Same result**: both find " + " and ".join(f"{r['browser'][f['key']]['nails']} nails on the {f['short']}"
                                                             for f in r["frames"]) + ", with the same fingers and angles "
                 "within 2 degrees (checked by the run).")
    lines.append("")
    for f in r["frames"]:
        py, js = r["python"][f["key"]], r["browser"][f["key"]]["cases"]
        lines += [f"### {f['title'].capitalize()}", "",
                  "| step | browser median ms | p90 | best | Python median ms | p90 | best | browser / Python |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for name, v in js.items():
            p = py.get(name)
            ratio = f"{v['median'] / p['median']:.2f}" if p else "-"
            lines.append(f"| {name} | {v['median']:.1f} | {v['p90']:.1f} | {v['min']:.1f} | "
                         + (f"{p['median']:.1f} | {p['p90']:.1f} | {p['min']:.1f}" if p else "- | - | -") + f" | {ratio} |")
        lines.append("")
    tail = [(f["short"], r["browser"][f["key"]]["cases"]["the page's frame: post-processing (class map) + render glossy + putImageData"]["median"])
            for f in r["frames"]]
    lines.append("What it means for the page: the per-frame tail after the model (post-processing from the class map "
                 "the GPU hands over, rendering, `putImageData`) takes " + " and ".join(f"{ms:.0f} ms on the {t}" for t, ms in tail)
                 + " in this browser, i.e. at most " + " / ".join(f"{1000 / ms:.0f}" for _, ms in tail)
                 + " frames per second before the model's own time (which the try-on page shows beside it). "
                 "JavaScript post-processing works per pixel of the frame (thresholding, connected components) and per "
                 "nail pixel (votes, direction, outline), like Python's; rendering works in each nail's box at 4x "
                 "supersampling, so both scale with the painted area. Python calls OpenCV's C++ (connected components, "
                 "distance transforms, blurs) where the browser runs plain JavaScript, single-threaded.")
    lines.append(SECTION_END)
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_arguments(parser, runs=30)
    args = parser.parse_args(argv)
    started = time.monotonic()
    wait_for_quiet(args.wait_idle, threshold=0.5 * (os.cpu_count() or 1))
    load_start = loadavg()
    frame_list = frames()

    python = {}
    for f in frame_list:
        log(f"python: {f['title']} ({args.runs} runs)")
        python[f["key"]] = time_cases(python_cases(f), args.runs, args.warmup)
    browser = run_browser(frame_list, args.runs, args.warmup)
    for f in frame_list:
        py_nails = postprocess(f["fg"], f["cls"], f["field"])
        js = browser[f["key"]]
        assert js["nails"] == len(py_nails), f"{f['title']}: browser {js['nails']} nails, Python {len(py_nails)}"
        assert js["fingers"] == [n.finger for n in py_nails], (js["fingers"], [n.finger for n in py_nails])
        assert all(abs((a - n.angle + 180) % 360 - 180) < 2 for a, n in zip(js["angles"], py_nails))
        for name, v in js["cases"].items():
            p = python[f["key"]].get(name)
            print(f"{f['key']:<12} {name:<82} browser {v['median']:7.2f} ms"
                  + (f"  python {p['median']:7.2f} ms  ratio {v['median'] / p['median']:5.2f}" if p else ""))

    argv_list = list(argv if argv is not None else sys.argv[1:])
    report = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "command": ".venv/bin/python bench/tryon_browser.py" + (" " + shlex.join(argv_list) if argv_list else ""),
              "commit": git_commit(("tryon/static/tryon", "ml/postprocess.py", "ml/render.py", "bench/tryon_browser.py"),
                                  "the try-on JavaScript, ml/postprocess.py, ml/render.py or this script"),
              "machine": machine_info(), "load_start": load_start, "load_end": loadavg(),
              "runs": args.runs, "warmup": args.warmup,
              "frames": [{k: f[k] for k in ("key", "title", "short", "description")} for f in frame_list],
              "python": python, "browser": browser, "total_s": time.monotonic() - started}
    if not args.no_docs:
        write_section(SECTION, build_section(report))
        log(f"wrote the {SECTION} section of {DOC.relative_to(ROOT)}")
    else:
        print(json.dumps({k: v for k, v in report.items() if k not in ("python", "browser")}, indent=1, default=str))
    return report


if __name__ == "__main__":
    main()
