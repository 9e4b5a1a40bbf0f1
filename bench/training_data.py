#!/usr/bin/env python
"""Training data costs: rasterization images per second (``dataset.raster.rasterize``) and the export of a
5000-image snapshot in each format (``curation.transfer.export_snapshot``): time, and peak memory as the
snapshot grows from 1000 to 5000 images.

    .venv/bin/python bench/training_data.py               # full run (~5-7 min when it measured 3 formats); writes docs/benchmarks.md
    .venv/bin/python bench/training_data.py --quick --no-docs   # a quick check of the script itself

Labels: the real nail outlines of ``../shared/data/nails-cc0`` (COCO, CC0; 40 photos, 227 nails), each given a
finger class (by position, left to right) and base / tip landmarks on its principal axis (the shared data
has neither; NailSet's labels have both, and the exports write them), checked with
``dataset.geometry.validate_geometry``.

1. **Rasterization** (child process, one thread: ``OMP_NUM_THREADS=1`` etc.; ``rasterize`` is plain NumPy):
   16 different images of 10 real nail outlines each (scaled to 1/8 of the image height, a 5 x 2 layout,
   with fingers and landmarks), rasterized at 640x480, at 4032x3024, and 4032x3024 labels at a 640x480
   output size; the calls are timed in batches (~50 ms each) for a few seconds per case; images per second
   from the median batch (the best and p90 batches are given too), wall clock and the thread's CPU time.
   The floor is the time to allocate and zero the six output arrays alone.
2. **Snapshots** (child process, scratch embedded instance: temporary ``NAILSET_VAR_DIR``,
   ``DATABASE_URL=sqlite:////<tmp>/db.sqlite3``, ``manage.py migrate`` in a subprocess): the 40 photos come
   in through the real import (``curation.transfer.import_labels`` "coco" with ``participants.csv``:
   ``store_upload`` + ``ingest_upload`` + ``import_annotation``, status accepted), their labels are then
   replaced (``import_annotation(replace=True)``) by the same outlines with fingers and landmarks; the other
   images are **bulk-created rows pointing at those 40 stored files** (``Image`` with a unique sha256 and
   the photo's own perceptual hash, ``Annotation`` accepted) whose labels are jittered copies of the
   photo's real nails (each nail rotated +-3 deg, scaled +-3 %, shifted +-3 px; validated), each copy owned
   by the participant of its photo, so a participant's images stay in one split. Snapshots "bench-1000"
   and "bench-5000" are built by the real ``curation.snapshots.build_snapshot`` when the database holds
   1000 and then 5000 such images.
3. **Exports**: every format of the registry (``dataset.formats.EXPORTERS``: coco, masks, yolo, labelme, cvat)
   of both snapshots, each in a fresh child process calling
   ``export_snapshot(snapshot, fmt)`` (the zip kept for download as an ``Export`` row, what the export job
   does): wall and CPU time, the zip's size, and the peak memory of the export itself (``VmHWM`` reset
   through ``/proc/self/clear_refs`` just before it; the RSS sampled every 0.1 s) and of the whole child
   (``ru_maxrss`` from ``wait4``).

Before each measurement the script waits (bounded) for a quieter machine and records the CPU the other
processes used meanwhile (``/proc/stat`` minus the child's own CPU time) and the load average. Every number
written is measured by the run; nothing is hard-coded.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
from benchdoc import (  # noqa: E402  (bench/ is on sys.path when run as a script)
    child_env, fmt, git_commit, loadavg, log, machine_info, markers, proc_status, reset_peak, run_measured, setup_django,
    publish_report, wait_for_quiet,
)

sys.path.insert(0, str(ROOT))
from dataset.formats import EXPORTERS  # noqa: E402  (plain Python, no Django)

SECTION = "training_data"
SECTION_START, SECTION_END = markers(SECTION)
SHARED = ROOT.parent / "shared" / "data" / "nails-cc0"
FORMATS = tuple(EXPORTERS)  # every exporter of the registry is measured; a new format is measured by itself
GOAL_640 = 1000.0
MB = 1_000_000
MIB = 1024 * 1024
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                               "VECLIB_MAXIMUM_THREADS")}


# --------------------------------------------------------------------------------------------------
# Memory, CPU and load helpers
# --------------------------------------------------------------------------------------------------

class RssSampler:
    """VmRSS of this process every ``interval`` s, in a thread."""

    def __init__(self, interval: float = 0.1):
        self.samples: list[tuple[float, float]] = []
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = time.perf_counter()

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - self.started, proc_status()["VmRSS"]))
            self._stop.wait(self.interval)

    def __enter__(self):
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def by_quarter(self) -> dict:
        if not self.samples:
            return {}
        end = self.samples[-1][0] or 1.0
        out = {}
        for q in (0.25, 0.5, 0.75, 1.0):
            values = [rss for t, rss in self.samples if (q - 0.25) * end <= t <= q * end]
            out[str(q)] = max(values) if values else None
        return out


# --------------------------------------------------------------------------------------------------
# Labels from the shared data
# --------------------------------------------------------------------------------------------------

def shared_nails() -> list[dict]:
    """Per shared photo: file, size, participant and its nail outlines (lists of [x, y])."""
    coco = json.loads((SHARED / "annotations.coco.json").read_text())
    with (SHARED / "participants.csv").open(newline="") as fh:
        owner = {row["file_name"]: row["participant"] for row in csv.DictReader(fh)}
    photos = {img["id"]: {"file_name": img["file_name"], "width": img["width"], "height": img["height"],
                          "participant": owner.get(img["file_name"]), "polygons": []} for img in coco["images"]}
    for ann in coco["annotations"]:
        for flat in ann["segmentation"]:
            photos[ann["image_id"]]["polygons"].append([[flat[i], flat[i + 1]] for i in range(0, len(flat) - 1, 2)])
    return sorted(photos.values(), key=lambda p: p["file_name"])


def principal_landmarks(polygon) -> tuple[list[float], list[float]]:
    """Base and tip on the nail's principal axis (vertex PCA), 0.3 of its length either side of the
    centroid; the tip is the end towards the top of the image."""
    import numpy as np

    pts = np.asarray(polygon, dtype=np.float64)
    centre = pts.mean(axis=0)
    cov = np.cov((pts - centre).T)
    values, vectors = np.linalg.eigh(cov)
    axis = vectors[:, int(np.argmax(values))]
    if axis[1] > 0:
        axis = -axis
    proj = (pts - centre) @ axis
    length = float(proj.max() - proj.min())
    return (centre - 0.3 * length * axis).round(2).tolist(), (centre + 0.3 * length * axis).round(2).tolist()


def enrich(polygons, width, height, right_hand: bool) -> dict:
    """Fingers (left to right: thumb..little, cyclic) and landmarks for a list of outlines; a nail
    whose landmarks would fail validation keeps none."""
    from dataset.geometry import normalize_geometry, validate_geometry

    order = sorted(range(len(polygons)), key=lambda i: sum(p[0] for p in polygons[i]) / len(polygons[i]))
    nails = [None] * len(polygons)
    for rank, i in enumerate(order):
        base, tip = principal_landmarks(polygons[i])
        nails[i] = {"polygon": [[round(x, 2), round(y, 2)] for x, y in polygons[i]], "finger": rank % 5 + 1 + (5 if right_hand else 0),
                    "base": base, "tip": tip}
    geometry = {"nails": nails, "ignore": []}
    report = validate_geometry(geometry, width, height)
    for issue in report.errors:
        if issue.rule == "landmark_outside_nail" and issue.nail is not None:
            nails[issue.nail]["base"] = nails[issue.nail]["tip"] = None
    report = validate_geometry(geometry, width, height)
    if not report.ok:
        raise ValueError(f"shared labels do not validate: {report.to_dict()['errors'][:3]}")
    return normalize_geometry(geometry)


def jitter(geometry: dict, width: int, height: int, rng: random.Random) -> dict | None:
    """Each nail rotated +-3 deg and scaled +-3 % about its centroid and shifted +-3 px, landmarks with
    it; None when the result does not validate (the caller keeps the original)."""
    from dataset.geometry import normalize_geometry, validate_geometry

    nails = []
    for nail in geometry["nails"]:
        pts = nail["polygon"]
        cx, cy = sum(p[0] for p in pts) / len(pts), sum(p[1] for p in pts) / len(pts)
        angle, scale = math.radians(rng.uniform(-3, 3)), rng.uniform(0.97, 1.03)
        dx, dy = rng.uniform(-3, 3), rng.uniform(-3, 3)
        c, s = math.cos(angle) * scale, math.sin(angle) * scale

        def move(p):
            x, y = p[0] - cx, p[1] - cy
            return [round(cx + c * x - s * y + dx, 2), round(cy + s * x + c * y + dy, 2)]

        nails.append({"polygon": [move(p) for p in pts], "finger": nail["finger"],
                      "base": move(nail["base"]) if nail.get("base") else None, "tip": move(nail["tip"]) if nail.get("tip") else None})
    out = {"nails": nails, "ignore": []}
    return normalize_geometry(out) if validate_geometry(out, width, height).ok else None


def raster_layouts(count: int, width: int, height: int, nails_per_image: int, seed: int) -> list[dict]:
    """``count`` images of ``nails_per_image`` real outlines each, scaled to 1/8 of the image height, on a
    5-column grid, with fingers and landmarks. The same layouts at every size (scaled)."""
    from dataset.geometry import validate_geometry

    rng = random.Random(seed)
    outlines = [poly for photo in shared_nails() for poly in photo["polygons"] if len(poly) >= 7]
    layouts = []
    rows = math.ceil(nails_per_image / 5)
    for _ in range(count):
        polygons = []
        while len(polygons) < nails_per_image:  # outlines that stay simple polygons at this scale
            k, poly = len(polygons), rng.choice(outlines)
            xs, ys = [p[0] for p in poly], [p[1] for p in poly]
            cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
            scale = (height / 8) / max(max(xs) - min(xs), max(ys) - min(ys))
            gx, gy = width * (k % 5 + 0.5) / 5, height * (k // 5 + 0.5) / rows
            candidate = [[round(gx + (x - cx) * scale, 2), round(gy + (y - cy) * scale, 2)] for x, y in poly]
            if validate_geometry({"nails": [{"polygon": candidate, "finger": None, "base": None, "tip": None}]}, width, height).ok:
                polygons.append(candidate)
        layouts.append(enrich(polygons, width, height, right_hand=rng.random() < 0.5))
    return layouts


# --------------------------------------------------------------------------------------------------
# Child phases
# --------------------------------------------------------------------------------------------------


def phase_raster(args) -> None:
    """Time rasterize() on one thread (this child has the *_NUM_THREADS variables at 1)."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from dataset.raster import rasterize

    base = raster_layouts(16, 640, 480, 10, args.seed)
    big = [{"nails": [dict(n, polygon=[[x * 6.3, y * 6.3] for x, y in n["polygon"]],
                           base=[n["base"][0] * 6.3, n["base"][1] * 6.3] if n["base"] else None,
                           tip=[n["tip"][0] * 6.3, n["tip"][1] * 6.3] if n["tip"] else None) for n in g["nails"]], "ignore": []}
           for g in base]
    cases = [("640x480", base, 640, 480, None), ("4032x3024", big, 4032, 3024, None),
             ("4032x3024 labels -> 640x480 output", big, 4032, 3024, (640, 480))]
    out = {"cases": [], "layouts": {"images": len(base), "nails": sum(len(g["nails"]) for g in base),
                                    "vertices_mean": statistics.mean(len(n["polygon"]) for g in base for n in g["nails"]),
                                    "with_landmarks": sum(1 for g in base for n in g["nails"] if n["base"]),
                                    "nail_px_640": statistics.mean(int(rasterize(g, 640, 480).foreground.sum()) / len(g["nails"]) for g in base)}}

    def floor(w, h):
        for dtype, shape in ((np.uint8, (h, w)), (np.int32, (h, w)), (np.uint8, (h, w)), (np.uint8, (h, w)),
                             (np.float32, (h, w, 2)), (np.uint8, (h, w))):  # ignore, instance, foreground, classes, field, field_mask
            np.zeros(shape, dtype)[0, 0] = 1  # touch: zeroed pages are only mapped on first write

    for label, geometries, w, h, size in cases:
        out_w, out_h = size or (w, h)
        for n in range(5):  # warm-up
            rasterize(geometries[n % len(geometries)], w, h, size)
        t0 = time.perf_counter()
        rasterize(geometries[0], w, h, size)
        single = time.perf_counter() - t0
        batch = max(1, int(0.05 / max(single, 1e-6)))
        walls, cpus, calls = [], [], 0
        deadline = time.perf_counter() + args.raster_seconds
        while time.perf_counter() < deadline or len(walls) < 5:
            t0, c0 = time.perf_counter(), time.thread_time()
            for i in range(batch):
                rasterize(geometries[(calls + i) % len(geometries)], w, h, size)
            walls.append((time.perf_counter() - t0) / batch)
            cpus.append((time.thread_time() - c0) / batch)
            calls += batch
        floor_times = []
        for _ in range(max(5, min(200, calls // 4))):
            t0 = time.perf_counter()
            floor(out_w, out_h)
            floor_times.append(time.perf_counter() - t0)
        # Share of the scanline fill (dataset.raster._fill) in a separate pass, so the timing above has no wrapper.
        import dataset.raster as raster_module

        original_fill, spent = raster_module._fill, [0.0]

        def timed_fill(*a, **k):
            t = time.perf_counter()
            try:
                return original_fill(*a, **k)
            finally:
                spent[0] += time.perf_counter() - t

        raster_module._fill = timed_fill
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < min(2.0, args.raster_seconds / 2) or n < 3:
            rasterize(geometries[n % len(geometries)], w, h, size)
            n += 1
        fill_share = spent[0] / (time.perf_counter() - t0)
        raster_module._fill = original_fill
        walls.sort()
        out["cases"].append({"fill_share": fill_share, "label": label, "out": [out_w, out_h], "calls": calls, "batches": len(walls), "batch": batch,
                             "median_ms": statistics.median(walls) * 1000, "best_ms": walls[0] * 1000,
                             "p90_ms": walls[int(0.9 * (len(walls) - 1))] * 1000, "cpu_median_ms": statistics.median(cpus) * 1000,
                             "floor_ms": statistics.median(floor_times) * 1000})
        c = out["cases"][-1]
        log(f"rasterize {label}: median {c['median_ms']:.3f} ms = {1000 / c['median_ms']:.0f} images/s "
            f"(CPU {c['cpu_median_ms']:.3f} ms, best {c['best_ms']:.3f}, floor {c['floor_ms']:.3f}; {calls} calls)")
    out["numpy"] = np.__version__
    Path(args.out).write_text(json.dumps(out))


def phase_seed(args) -> None:
    """Import the shared photos, grow the labelled set with bulk-created copies, build the snapshots."""
    setup_django()
    from django.db import transaction

    from curation.snapshots import build_snapshot
    from curation.transfer import import_labels
    from labeling.annotations import import_annotation
    from labeling.models import Annotation, Image

    rng = random.Random(args.seed)
    timings = {}
    t0 = time.perf_counter()
    report = import_labels("coco", str(SHARED / "annotations.coco.json"), participants_csv=str(SHARED / "participants.csv"),
                           status="accepted")
    timings["import_s"] = time.perf_counter() - t0
    if report.failed_files or report.images_created != 40:
        raise RuntimeError(f"the shared data did not import cleanly: {report.as_dict()}")
    originals = []
    t0 = time.perf_counter()
    for image in Image.objects.select_related("annotation", "participant").order_by("id"):
        imported = [nail["polygon"] for nail in image.annotation.geometry["nails"]]  # as imported (repaired if needed)
        geometry = enrich(imported, image.width, image.height, right_hand=len(originals) % 2 == 1)
        import_annotation(image, geometry, status="accepted", note="bench: fingers and landmarks added", replace=True)
        originals.append((image, geometry))
    timings["enrich_s"] = time.perf_counter() - t0
    stats = {"fallbacks": 0, "copies": 0}

    def grow(total: int) -> None:
        have = Image.objects.count()
        new_images, geometries = [], []
        for n in range(have, total):
            image, geometry = originals[n % len(originals)]
            copy = jitter(geometry, image.width, image.height, rng)
            stats["fallbacks"] += copy is None
            geometries.append(copy or geometry)
            new_images.append(Image(participant_id=image.participant_id, file=image.file.name, thumbnail=image.thumbnail.name,
                                    width=image.width, height=image.height, phash=image.phash,
                                    sha256=hashlib.sha256(f"{image.sha256}-bench-copy-{n}".encode()).hexdigest()))
        with transaction.atomic():
            created = Image.objects.bulk_create(new_images, batch_size=1000)
            Annotation.objects.bulk_create([Annotation(image=image, geometry=geometry, version=1, status="accepted")
                                            for image, geometry in zip(created, geometries)], batch_size=1000)
        stats["copies"] += len(created)

    snapshots = {}
    for size in args.sizes:
        t0 = time.perf_counter()
        grow(size)
        grown = time.perf_counter() - t0
        t0 = time.perf_counter()
        snapshot = build_snapshot(f"bench-{size}", seed=args.seed)
        snapshots[str(size)] = {"name": snapshot.name, "images": snapshot.counts["images"], "grow_s": grown,
                                "build_s": time.perf_counter() - t0, "leaks": len(snapshot.leaks),
                                "splits": {k: v["images"] for k, v in snapshot.counts["splits"].items()},
                                "participants": {k: v["participants"] for k, v in snapshot.counts["splits"].items()},
                                "nails": sum(v["nails"] for v in snapshot.counts["splits"].values())}
        log(f"snapshot {snapshot.name}: {snapshot.counts['images']} images, {snapshots[str(size)]['nails']} nails, "
            f"{len(snapshot.leaks)} leaks; grown in {grown:.1f} s, built in {snapshots[str(size)]['build_s']:.1f} s")
    stored = {Path(image.file.path).stat().st_size for image, _ in originals}
    Path(args.out).write_text(json.dumps({"timings": timings, "snapshots": snapshots, **stats, "originals": len(originals),
                                          "stored_mean_bytes": statistics.mean(stored),
                                          "nails_per_photo": statistics.mean(len(g["nails"]) for _, g in originals)}))


def phase_zipcost(args) -> None:
    """Memory that a zip being written keeps per entry (the central directory's ZipInfo objects): 100-byte
    entries with masks-like names written through the exporters' own ZipTarget."""
    sys.path.insert(0, str(ROOT))
    from dataset.formats import ZipTarget

    path = Path(args.out).with_suffix(".zip")
    entries = 25_000
    before = proc_status()["VmRSS"]
    with ZipTarget(str(path)) as target:
        for n in range(entries):
            target.write_bytes(f"train/classes/{n:07d}.png", b"x" * 100)
        during = proc_status()["VmRSS"]
    path.unlink()
    Path(args.out).write_text(json.dumps({"entries": entries, "kib_per_entry": (during - before) * 1024 / entries}))


def phase_export(args) -> None:
    setup_django()
    from curation.models import Export, Snapshot
    from curation.transfer import export_snapshot

    snapshot = Snapshot.objects.get(name=args.snapshot)
    reset_peak()
    before = proc_status()["VmRSS"]
    t0, c0 = time.perf_counter(), time.process_time()
    with RssSampler() as sampler:
        result = export_snapshot(snapshot, args.format)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = proc_status()["VmHWM"]
    export = Export.objects.get(pk=result["export_id"])
    import zipfile

    with zipfile.ZipFile(export.file.path) as archive:
        members = len(archive.infolist())
    size = result["size"]
    export.file.delete(save=False)  # 1 GB+ each; nothing reads it afterwards
    Path(args.out).write_text(json.dumps({"wall_s": wall, "cpu_s": cpu, "rss_before_mib": before, "peak_mib": peak, "bytes": size,
                                          "members": members, "rss_by_quarter_mib": sampler.by_quarter()}))


# --------------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------------


def orchestrate(args) -> int:
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="nailset-bench-training-"))
    var_dir = scratch / "var"
    var_dir.mkdir()
    me = str(Path(__file__).resolve())
    env = child_env(var_dir)
    commit = git_commit(("dataset", "curation", "labeling", "bench/training_data.py"),
                        "dataset/, curation/, labeling/ or this script", untracked=False) or None
    report: dict = {"machine": machine_info(), "commit": commit, "args": vars(args), "load_start": loadavg(),
                    "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    waits = {"budget": args.wait_total}

    def quiet(label: str) -> dict:
        seen = wait_for_quiet(max(0.0, min(args.wait_idle, waits["budget"])), args.quiet_threshold)
        waits["budget"] -= seen["waited_s"]
        log(f"{label}: {seen['busy_cores']:.2f} cores busy before it (waited {seen['waited_s']:.0f} s), load average {seen['loadavg'][0]:.2f}")
        return seen

    try:
        # 1. Rasterization, one thread.
        out = scratch / "raster.json"
        before = quiet("rasterization")
        proc = run_measured([me, "--phase", "raster", "--out", str(out), "--seed", str(args.seed),
                             "--raster-seconds", str(args.raster_seconds)], dict(env, **ONE_THREAD), "raster")
        report["raster"] = {**json.loads(out.read_text()), "process": proc, "quiet": before}

        # 2. Scratch instance, import, copies, snapshots.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        log(f"scratch instance {var_dir} migrated in {time.perf_counter() - t0:.1f} s")
        out = scratch / "seed.json"
        proc = run_measured([me, "--phase", "seed", "--out", str(out), "--seed", str(args.seed),
                             "--sizes", *map(str, args.sizes)], env, "seed")
        report["seed"] = {**json.loads(out.read_text()), "process": proc}
        report["versions"] = json.loads(subprocess.run(
            [sys.executable, "-c", "import json, django, numpy, PIL, cv2, shapely; print(json.dumps({'django': django.get_version(), "
             "'numpy': numpy.__version__, 'pillow': PIL.__version__, 'opencv': cv2.__version__, 'shapely': shapely.__version__}))"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True).stdout)

        # 3. Exports: each format of each snapshot in its own child.
        report["exports"] = []
        for size in args.sizes:
            for format_name in FORMATS:
                out = scratch / f"export-{size}-{format_name}.json"
                before = quiet(f"export {format_name} of bench-{size}")
                proc = run_measured([me, "--phase", "export", "--snapshot", f"bench-{size}", "--format", format_name, "--out", str(out)],
                                    env, f"export {format_name} {size}")
                row = {**json.loads(out.read_text()), "size": size, "format": format_name, "process": proc, "quiet": before}
                report["exports"].append(row)
                log(f"export {format_name:5s} bench-{size}: {row['wall_s']:.1f} s ({size / row['wall_s']:.0f} images/s), {row['bytes'] / MB:.0f} MB, "
                    f"peak {row['peak_mib']:.0f} MiB (before {row['rss_before_mib']:.0f}; ru_maxrss {proc['maxrss_mib']:.0f}); "
                    f"other load {proc['other_cores']:.2f} cores")
        out = scratch / "zipcost.json"
        subprocess.run([sys.executable, me, "--phase", "zipcost", "--out", str(out)], cwd=ROOT, env=env, check=True)
        report["zipcost"] = json.loads(out.read_text())
        log(f"zip directory: {report['zipcost']['kib_per_entry']:.2f} KiB per entry while the archive is open")
        publish_report(report, started, "bench/training_data.py", sys.argv[1:], render, SECTION, args.json, args.no_docs)
        return 0
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------------------------------


def render(report: dict) -> str:
    m, a, v = report["machine"], report["args"], report["versions"]
    raster, seed = report["raster"], report["seed"]
    cases = {c["label"]: c for c in raster["cases"]}
    c640 = cases["640x480"]
    rate640 = 1000 / c640["median_ms"]
    small, large = min(a["sizes"]), max(a["sizes"])
    by = {(e["size"], e["format"]): e for e in report["exports"]}

    def added(e):
        return e["peak_mib"] - e["rss_before_mib"]

    def per_image_kib(f):
        return (added(by[(large, f)]) - added(by[(small, f)])) * 1024 / (large - small)

    entries_per_image = {f: by[(large, f)]["members"] / large for f in FORMATS}
    zip_kib = report["zipcost"]["kib_per_entry"]
    # "flat": what the export adds grows by less than 1.5x what the zip's directory alone explains, + 1 KiB per image
    explained = {f: per_image_kib(f) <= 1.5 * entries_per_image[f] * zip_kib + 1.0 for f in FORMATS}
    lines = [SECTION_START, "## Training data: rasterization and snapshot export (`bench/training_data.py`)", "",
             f"Measured {report['date']} in {report['total_s']:.0f} s with `{report['command']}` (commit {report['commit']}); "
             "every figure below comes from that run.", ""]
    cpu640 = 1000 / c640["cpu_median_ms"]
    best640 = 1000 / c640["best_ms"]
    verdict = ("met" if min(rate640, cpu640) >= 2 * GOAL_640 else "met, but not by a wide margin" if cpu640 >= GOAL_640
               else "NOT met")
    c12 = cases["4032x3024"]
    lines += [f"**Goal: well over {GOAL_640:.0f} images/s at 640x480 with 10 nails on one core: {verdict}**: {rate640:,.0f} images/s from the "
              f"median wall time ({c640['median_ms']:.3f} ms per image, other processes using {fmt(raster['process']['other_cores'], 2)} cores "
              f"meanwhile), {cpu640:,.0f}/s from the thread's CPU time ({c640['cpu_median_ms']:.3f} ms), {best640:,.0f}/s in the best batch. "
              f"At 4032x3024: {1000 / c12['median_ms']:,.1f} images/s ({1000 / c12['cpu_median_ms']:,.1f} from CPU time).",
              f"**Export of a {large:,}-image snapshot**: " + ", ".join(
                  f"{f} {by[(large, f)]['wall_s']:.1f} s ({large / by[(large, f)]['wall_s']:.0f} images/s, peak "
                  f"{by[(large, f)]['peak_mib']:.0f} MiB)" for f in FORMATS) + ". "
              + f"**Memory: {'flat but for the zip directory' if all(explained.values()) else 'NOT flat'}** from {small:,} to {large:,} images: "
              "the export step adds " + ", ".join(
                  f"{f} {added(by[(small, f)]):.0f} -> {added(by[(large, f)]):.0f} MiB ({per_image_kib(f):.1f} KiB per extra image)" for f in FORMATS)
              + f"; writing a zip keeps {zip_kib:.2f} KiB per entry until it is closed (Python's `zipfile` holds every entry's "
              f"`ZipInfo` for the central directory; measured below), and the formats write {', '.join(f'{f} {entries_per_image[f]:.0f}' for f in FORMATS)} "
              f"entries per image, which explains the growth"
              + ("" if all(explained.values()) else
                 f" only for {', '.join(f for f in FORMATS if explained[f])}" if any(explained.values()) else " only in part")
              + ". Images and labels are streamed (nothing else grows); at 100,000 images the directory would hold about "
              + ", ".join(f"{f} {100_000 * entries_per_image[f] * zip_kib / 1024:.0f} MiB" for f in FORMATS) + ".", ""]
    lines += ["### Set-up", "",
              f"- **Machine**: {m['nproc']} CPUs ({m['cpu']}), {fmt(m['mem_gib'])} GiB RAM, Linux {m['kernel']}; shared with other work: "
              f"load average {report['load_start'][0]:.2f} at the start, {report['load_end'][0]:.2f} at the end. Before each measurement "
              f"the script waits up to {a['wait_idle']:.0f} s (at most {a['wait_total']:.0f} s in all) for fewer than "
              f"{a['quiet_threshold']} busy cores; *other load* is the CPU the rest of the machine used during the measurement "
              "(cores; `/proc/stat` minus the measured child's own CPU time), with the busy cores just before it.",
              f"- **Software**: Python {m['python']}, NumPy {v['numpy']}, Django {v['django']}, Pillow {v['pillow']}, OpenCV {v['opencv']}, "
              f"Shapely {v['shapely']}; SQLite (embedded mode).",
              "- **Labels**: the real nail outlines of `../shared/data/nails-cc0` (COCO, CC0), each given a finger class (left to right) "
              "and base/tip landmarks on its principal axis, validated with `dataset.geometry`.",
              f"- **Rasterization**: `dataset.raster.rasterize` in a child process with `OMP_NUM_THREADS=1` (and the other "
              f"thread-count variables) at 1: one thread. {raster['layouts']['images']} images of 10 real outlines each "
              f"({raster['layouts']['vertices_mean']:.0f} vertices per nail on average, {raster['layouts']['with_landmarks']} of "
              f"{raster['layouts']['nails']} nails with landmarks, all with a finger), each scaled to 1/8 of the image height "
              f"({raster['layouts']['nail_px_640']:.0f} px per nail at 640x480), laid out 5 x 2; the same layouts scaled x6.3 for "
              f"4032x3024. Timed in batches of ~50 ms for {a['raster_seconds']:g} s per case after 5 warm-up calls, cycling "
              "through the images; per-image time = batch time / batch size. *Floor*: allocating and zeroing the six output "
              "arrays alone (what any implementation returning these rasters pays).",
              f"- **Snapshots**: scratch embedded instance (temporary `NAILSET_VAR_DIR`, `DATABASE_URL=sqlite:////<tmp>/db.sqlite3`, "
              f"`manage.py migrate`). The {seed['originals']} shared photos come in through the real import "
              f"(`curation.transfer.import_labels('coco', ..., participants_csv=...)`: intake + `import_annotation`, accepted; "
              f"{seed['timings']['import_s']:.1f} s), their labels are replaced by the enriched ones (`import_annotation(replace=True)`; "
              f"{seed['nails_per_photo']:.1f} nails per photo). The other {seed['copies']:,} images are **bulk-created rows pointing at "
              f"those {seed['originals']} stored files** (unique sha256, the photo's own perceptual hash; {seed['stored_mean_bytes'] / 1000:.0f} kB "
              "per stored file on average, mostly 607x1079) with accepted labels that are jittered copies of the photo's real nails "
              f"(each nail rotated +-3 deg, scaled +-3 %, shifted +-3 px; {seed['fallbacks']} copies kept the original outline because "
              "the jittered one did not validate), owned by the participant of the photo (so a participant's images stay in one "
              "split). `curation.snapshots.build_snapshot` (real) builds " + ", ".join(
                  f"`{s['name']}` ({s['images']:,} images, {s['nails']:,} nails; train/val/test {s['splits']['train']}/{s['splits']['val']}/"
                  f"{s['splits']['test']} images; {s['leaks']} cross-split near-duplicates; built in {s['build_s']:.1f} s)"
                  for s in seed["snapshots"].values()) + " when the database holds that many labelled images.",
              "- **Exports**: `curation.transfer.export_snapshot(snapshot, fmt)` to a zip kept as an `Export` row (what the "
              "export job and the download do), each in a fresh child process: wall and CPU time; *peak* = `VmHWM` of the child, "
              "reset through `/proc/self/clear_refs` just before the export, against its RSS just before (Python, Django, the "
              "snapshot row); the RSS sampled every 0.1 s gives the highest value in each quarter of the export's time; "
              "`ru_maxrss` of the whole child for reference.", ""]
    lines += ["### Rasterization, one thread", "",
              "| image | output | images/s (median) | images/s (CPU time) | ms per image: median | best | p90 | CPU (median) | "
              "floor (allocate + zero outputs) | scanline fill share | calls | other load, cores (before) |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    proc = raster["process"]
    for c in raster["cases"]:
        image = c["label"].split(" ")[0]
        lines.append(f"| {image} | {c['out'][0]}x{c['out'][1]} | {1000 / c['median_ms']:,.0f} | {1000 / c['cpu_median_ms']:,.0f} | "
                     f"{c['median_ms']:.3f} | {c['best_ms']:.3f} | "
                     f"{c['p90_ms']:.3f} | {c['cpu_median_ms']:.3f} | {c['floor_ms']:.3f} | {100 * c['fill_share']:.0f} % | {c['calls']:,} | "
                     f"{fmt(proc['other_cores'], 2)} ({fmt(raster['quiet']['busy_cores'], 2)}; load avg {proc['loadavg_before'][0]:.2f}) |")
    lines += ["", "The other-load figure covers the whole rasterization child (all three cases). *Scanline fill share*: the part of "
              "the time spent in `dataset.raster._fill` (the exact scanline over pixel centres, all polygons at once), timed in a "
              "separate pass; the rest is the per-pixel scatter into the six output arrays (foreground, classes, field, field mask, "
              "ignore, instance), the overlap check and allocating them.", ""]
    lines += ["### Snapshot export", "",
              "| format | images | wall s | images/s | CPU s | zip MB | entries | export: RSS before -> peak (added) MiB | RSS by quarter MiB | "
              "child `ru_maxrss` MiB | other load, cores (before) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- |"]
    for f in FORMATS:
        for size in a["sizes"]:
            e = by[(size, f)]
            q = e["rss_by_quarter_mib"]
            lines.append(f"| {f} | {size:,} | {e['wall_s']:.1f} | {size / e['wall_s']:.0f} | {e['cpu_s']:.1f} | {e['bytes'] / MB:,.0f} | "
                         f"{e['members']:,} | {e['rss_before_mib']:.0f} -> {e['peak_mib']:.0f} (+{added(e):.0f}) | "
                         f"{' / '.join(fmt(q.get(k), 0) for k in ('0.25', '0.5', '0.75', '1.0'))} | {e['process']['maxrss_mib']:.0f} | "
                         f"{fmt(e['process']['other_cores'], 2)} ({fmt(e['quiet']['busy_cores'], 2)}; load avg "
                         f"{e['process']['loadavg_before'][0]:.2f}) |")
    lines += ["", f"*Zip directory*: a separate child writes {report['zipcost']['entries']:,} 100-byte entries through the exporters' "
              f"`ZipTarget`: {zip_kib:.2f} KiB of resident memory per entry while the archive is open.", "", SECTION_END]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000], help="snapshot sizes, ascending (default 1000 5000)")
    parser.add_argument("--raster-seconds", type=float, default=8.0, help="timing per rasterization case (default 8)")
    parser.add_argument("--wait-idle", type=float, default=20.0, metavar="SECONDS", help="wait up to this long before each measurement for a quieter machine (default 20)")
    parser.add_argument("--wait-total", type=float, default=60.0, metavar="SECONDS", help="at most this long waiting in all (default 60)")
    parser.add_argument("--quiet-threshold", type=float, default=0.5, metavar="CORES", help="'quiet' means fewer busy cores than this (default 0.5)")
    parser.add_argument("--quick", action="store_true", help="snapshots of 100 and 300 images, 1 s per raster case, no waiting")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--json", help="also write the full report as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--phase", choices=["raster", "seed", "export", "zipcost"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", help=argparse.SUPPRESS)
    parser.add_argument("--format", choices=FORMATS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.raster_seconds, args.wait_idle, args.wait_total = [100, 300], 1.0, 0.0, 0.0
    args.sizes = sorted(set(args.sizes))
    if min(args.sizes) < 40:
        parser.error("snapshot sizes must be at least 40 (the shared photos)")
    return args


def main() -> int:
    if sys.prefix == sys.base_prefix and VENV_PYTHON.exists():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # run with the project's virtual environment
    args = parse_args()
    if args.phase == "raster":
        phase_raster(args)
    elif args.phase == "seed":
        phase_seed(args)
    elif args.phase == "export":
        phase_export(args)
    elif args.phase == "zipcost":
        phase_zipcost(args)
    else:
        return orchestrate(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
