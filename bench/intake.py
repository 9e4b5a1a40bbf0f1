#!/usr/bin/env python
"""Intake throughput and memory on one worker: 12-megapixel photos per second, 1080p video frames per
second, and the worker's peak memory while ingesting a ~200 MB video against a ~20 MB one.

    .venv/bin/python bench/intake.py                 # full run (~4-6 min); writes docs/benchmarks.md
    .venv/bin/python bench/intake.py --quick --no-docs   # a quick check of the script itself

Everything runs through the real pipeline functions, ``labeling.intake.store_upload`` (the upload: the
stream is copied to disk while hashed and sniffed, then checked and stored) and
``labeling.intake.ingest_upload`` (what the ``ingest_upload`` job runs: photo normalization, or video frame
selection with ``labeling/video.py``), called in ONE process (= one worker, one job at a time) on a scratch
embedded instance: a temporary ``NAILSET_VAR_DIR`` and ``DATABASE_URL=sqlite:////<tmp>/db.sqlite3``,
migrated with ``manage.py migrate`` in a subprocess. Every measurement is a fresh child process with that
environment, so its peak memory is its own (``VmHWM`` of ``/proc/self/status``, reset with
``/proc/self/clear_refs`` before each step, and the child's ``ru_maxrss`` from ``wait4``).

Inputs, all synthetic and made by this script (nothing is downloaded, nothing is committed):

* photos: 4032x3024 JPEGs, quality 92 (4:2:0, like a phone), smooth colour gradients + mid and fine
  texture + sensor-like noise (about 4 MB each, every one different), EXIF orientation 6 (the camera was
  held upright: the stored image must come out 3024x4032), camera make / model / date and a GPS block
  (the stored image must carry no EXIF at all);
* videos: 1920x1080 MP4 (OpenCV ``mp4v``, 30 fps), a textured scene panning steadily with moving
  skin-coloured "nails" and a slow brightness drift (every sampled frame is sharp and different, the
  worst case for memory: no frame is dropped as blurry or duplicate early):
  - "phone-like", 20 s at about 2.3 MB/s (the frames-per-second measurement);
  - "~20 MB" and "~200 MB": the same generator at a higher bitrate (finer texture, calibrated on a 2 s
    probe so that the long one is ~200 MB within the 60 s / 200 MiB limits), so the two differ only in
    length.

For each video the script also runs a "decode only" child (the same grab / retrieve loop as the selection
pass, ``labeling.video.select_frames``, keeping nothing), which separates what the decoder needs from what
the frame selection and storing keep. Before each measurement it waits (bounded) for other processes to
leave the CPUs idle, and it records what they used during the measurement (from ``/proc/stat`` minus the
child's own CPU time) and the load average. Every number written is measured by the run; nothing is
hard-coded.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
from benchdoc import (  # noqa: E402  (bench/ is on sys.path when run as a script)
    child_env, fmt, git_commit, loadavg, log, machine_info, markers, proc_status, reset_peak,
    publish_report, run_measured, setup_django, wait_for_quiet,
)

SECTION = "intake"
SECTION_START, SECTION_END = markers(SECTION)
PHOTO_W, PHOTO_H = 4032, 3024
VIDEO_W, VIDEO_H, VIDEO_FPS = 1920, 1080, 30
MB = 1_000_000
MIB = 1024 * 1024


# --------------------------------------------------------------------------------------------------
# Memory and CPU helpers
# --------------------------------------------------------------------------------------------------

# --------------------------------------------------------------------------------------------------
# Synthetic inputs (orchestrator; no Django)
# --------------------------------------------------------------------------------------------------

def make_photos(folder: Path, count: int, seed: int) -> list[Path]:
    """``count`` camera-like 12 MP JPEGs with EXIF orientation 6, camera tags and GPS."""
    import cv2
    import numpy as np
    from PIL import ExifTags
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    W, H = PHOTO_W, PHOTO_H
    texture = cv2.resize(rng.normal(0, 1, (H // 16, W // 16, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC) * 12
    fine = cv2.resize(rng.normal(0, 1, (H // 3, W // 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)[..., None] * 10
    noise = rng.normal(0, 6, (H, W, 3)).astype(np.float32)
    detail = texture + fine + noise
    del texture, fine, noise
    y, x = np.mgrid[0:H:8, 0:W:8].astype(np.float32)
    paths = []
    for n in range(count):
        phase = n * 0.7
        small = np.stack([150 + 55 * np.sin(x / 400 + phase) + 25 * np.cos(y / 300),
                          115 + 45 * np.cos(x / 500 + phase) + 35 * np.sin(y / 250 + 2),
                          100 + 40 * np.sin((x + y) / 600 + phase)], -1)
        picture = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
        picture += np.roll(detail, n * 97, axis=1)
        pixels = np.clip(picture, 0, 255).astype(np.uint8)
        exif = PILImage.Exif()
        exif[0x0112] = 6  # orientation: rotate 90 CW to display
        exif[0x010F], exif[0x0110] = "Apple", "iPhone 12"
        exif[0x0132] = "2026:11:26 12:00:00"
        exif[ExifTags.IFD.GPSInfo] = {1: "N", 2: (52.0, 22.0, 11.5 + n), 3: "E", 4: (4.0, 53.0, 30.25), 5: b"\x00", 6: 12.5}
        path = folder / f"IMG_{1000 + n}.jpg"
        PILImage.fromarray(pixels).save(path, "JPEG", quality=92, exif=exif)
        paths.append(path)
    return paths


def write_video(path: Path, seconds: float, div: int, seed: int) -> dict:
    """A 1920x1080 30 fps mp4v video of a steadily panning texture (coarseness ``div``: smaller is finer
    and needs more bits), moving skin-coloured ellipses and a slow brightness drift."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    W, H = VIDEO_W, VIDEO_H
    tex_w, tex_h = 2 * W, H + 400
    texture = cv2.resize(rng.integers(0, 256, (tex_h // div, tex_w // div, 3), dtype=np.uint8), (tex_w, tex_h),
                         interpolation=cv2.INTER_CUBIC)
    texture = np.concatenate([texture, texture[:, :W]], axis=1)  # wraps around while panning
    frames = max(1, round(seconds * VIDEO_FPS))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), VIDEO_FPS, (W, H))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write mp4v videos here")
    started = time.perf_counter()
    try:
        for i in range(frames):
            dx = (i * 11) % tex_w
            dy = int(200 + 180 * math.sin(i / 40))
            frame = texture[dy:dy + H, dx:dx + W].copy()
            cx, cy = int(W / 2 + W / 3 * math.sin(i / 50)), int(H / 2 + H / 4 * math.cos(i / 37))
            for k in range(5):
                cv2.ellipse(frame, (cx + (k - 2) * 95, cy - abs(k - 2) * 35), (36, 58), (i * 2 + k * 7) % 360, 0, 360,
                            (150, 170, 225), -1)
            beta = 25 * math.sin(i / 60)
            writer.write(cv2.convertScaleAbs(frame, alpha=1.0, beta=beta) if abs(beta) >= 1 else frame)
    finally:
        writer.release()
    return {"path": str(path), "seconds": frames / VIDEO_FPS, "frames": frames, "bytes": path.stat().st_size,
            "div": div, "write_s": time.perf_counter() - started}


def make_videos(folder: Path, args) -> dict:
    """The phone-like 20 s video, and the ~20 MB / ~200 MB pair (same bitrate, calibrated)."""
    limit_bytes = 200 * MIB  # NAILSET_MAX_VIDEO_BYTES default
    videos = {"phone": write_video(folder / "phone-1080p.mp4", args.video_seconds, 8, 1)}
    log(f"video phone-like: {videos['phone']['seconds']:.0f} s, {videos['phone']['bytes'] / MB:.1f} MB "
        f"(written in {videos['phone']['write_s']:.0f} s)")
    # Calibrate the high-bitrate generator: a finer texture until 58 s would reach the target size.
    target = args.long_mb * MB
    for div in (5, 4, 3, 2):
        probe = write_video(folder / "probe.mp4", 2.0, div, 2)
        rate = probe["bytes"] / probe["seconds"]
        (folder / "probe.mp4").unlink()
        if rate * 58 >= target or div == 2:
            break
    long_seconds = min(58.0, target / rate)
    short_seconds = max(1.0, args.short_mb * MB / rate)
    log(f"high-bitrate generator: texture /{div}, {rate / MB:.2f} MB/s on a 2 s probe -> {short_seconds:.1f} s and {long_seconds:.1f} s")
    videos["short"] = write_video(folder / "short-1080p.mp4", short_seconds, div, 2)
    videos["long"] = write_video(folder / "long-1080p.mp4", long_seconds, div, 2)
    if videos["long"]["bytes"] > 0.98 * limit_bytes:  # the probe underestimated: shorten to fit the 200 MiB limit
        seconds = videos["long"]["seconds"] * 0.93 * limit_bytes / videos["long"]["bytes"]
        videos["long"] = write_video(folder / "long-1080p.mp4", seconds, div, 2)
    for key in ("short", "long"):
        v = videos[key]
        v["probe_rate_mb_s"] = rate / MB
        log(f"video {key}: {v['seconds']:.1f} s, {v['bytes'] / MB:.1f} MB (written in {v['write_s']:.0f} s)")
    return videos


# --------------------------------------------------------------------------------------------------
# Child phases (Django set up on the scratch instance)
# --------------------------------------------------------------------------------------------------


def bench_participant(code: str):
    from django.utils import timezone

    from labeling.models import Participant

    return Participant.objects.create(code=code, consent_at=timezone.now(), consent_version="bench")


def phase_photos(args) -> None:
    setup_django()
    from PIL import Image as PILImage

    from labeling.intake import ingest_upload, store_upload

    participant = bench_participant("bench-photos")
    paths = [Path(p) for p in json.loads(Path(args.input).read_text())]
    rows = []
    check = None
    for n, path in enumerate(paths):
        t0, c0 = time.perf_counter(), time.process_time()
        with path.open("rb") as stream:
            stored = store_upload(participant, stream, path.name)
        t1 = time.perf_counter()
        images = ingest_upload(stored.upload)
        t2, c2 = time.perf_counter(), time.process_time()
        assert stored.created and len(images) == 1, (stored.created, images)
        rows.append({"store_s": t1 - t0, "ingest_s": t2 - t1, "total_s": t2 - t0, "cpu_s": c2 - c0, "bytes": path.stat().st_size,
                     "warmup": n < args.warmup, "rss_mib": proc_status()["VmRSS"]})
        if check is None:
            image = images[0]
            with PILImage.open(image.file.path) as stored_picture:
                exif = stored_picture.getexif()
                check = {"stored_size": list(stored_picture.size), "stored_format": stored_picture.format,
                         "exif_tags": len(exif), "gps": bool(exif.get_ifd(0x8825)), "icc": "icc_profile" in stored_picture.info,
                         "xmp": "xmp" in stored_picture.info, "stored_bytes": Path(image.file.path).stat().st_size,
                         "db_size": [image.width, image.height]}
    Path(args.out).write_text(json.dumps({"rows": rows, "check": check, "peak_mib": proc_status()["VmHWM"]}))


def _instrument_video():
    """Count what the frame selection does, without changing it: sampled frames (one ``sharpness`` call
    each), ``Candidate`` records created and the most alive at once, the most full-resolution ``Frame``
    objects alive at once, and the time of the selection pass (``select_frames``)."""
    import labeling.video as video

    counters = {"sampled": 0, "select_s": 0.0, "kept": 0}
    original_sharpness, original_select = video.sharpness, video.select_frames

    def counted(cls, name):
        """``cls`` counting its instances in ``counters``: ``<name>`` (created), ``<name>_alive``, ``<name>_max_alive``."""
        counters.update({name: 0, f"{name}_alive": 0, f"{name}_max_alive": 0})

        class Counted(cls):
            def __init__(self, *a, **k):
                super().__init__(*a, **k)
                counters[name] += 1
                counters[f"{name}_alive"] += 1
                counters[f"{name}_max_alive"] = max(counters[f"{name}_max_alive"], counters[f"{name}_alive"])

            def __del__(self):
                counters[f"{name}_alive"] -= 1

        return Counted

    def sharpness(grey):
        counters["sampled"] += 1
        return original_sharpness(grey)

    def select_frames(*a, **k):
        started = time.perf_counter()
        selected = original_select(*a, **k)
        counters["select_s"] += time.perf_counter() - started
        counters["kept"] = len(selected)
        return selected

    video.Candidate, video.Frame = counted(video.Candidate, "candidates"), counted(video.Frame, "frames")
    video.sharpness, video.select_frames = sharpness, select_frames
    return counters


def phase_video(args) -> None:
    setup_django()
    from django.conf import settings

    from labeling.intake import ingest_upload, store_upload
    from labeling.video import probe_video

    path = Path(args.input)
    counters = _instrument_video()
    participant = bench_participant(f"bench-{path.stem}")
    info = probe_video(str(path))
    out = {"fps": info.fps, "frame_count": info.frame_count, "width": info.width, "height": info.height,
           "rate": settings.NAILSET_VIDEO_FRAME_RATE, "max_frames": settings.NAILSET_VIDEO_MAX_FRAMES,
           "blur_threshold": settings.NAILSET_VIDEO_BLUR_THRESHOLD, "duplicate_distance": settings.NAILSET_VIDEO_DUPLICATE_DISTANCE}

    out["peak_reset_works"] = reset_peak()
    before = proc_status()["VmRSS"]
    t0, c0 = time.perf_counter(), time.process_time()
    with path.open("rb") as stream:
        stored = store_upload(participant, stream, path.name)
    out["store"] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "rss_before_mib": before,
                    "peak_mib": proc_status()["VmHWM"]}

    timeline = []

    def progress(fraction):
        timeline.append((round(fraction, 4), round(proc_status()["VmRSS"], 1)))

    reset_peak()
    before = proc_status()["VmRSS"]
    t0, c0 = time.perf_counter(), time.process_time()
    images = ingest_upload(stored.upload, progress=progress)
    out["ingest"] = {"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "rss_before_mib": before,
                     "peak_mib": proc_status()["VmHWM"], "images": len(images), **counters}
    # RSS at each quarter of the ingest (the progress callback runs once per sampled frame in the selection
    # pass, 0-50 %, and once per kept frame in the reading pass, 50-100 %).
    quarters = {}
    for q in (0.25, 0.5, 0.75, 1.0):
        at = [rss for fraction, rss in timeline if fraction <= q]
        quarters[str(q)] = max(at) if at else None
    out["ingest"]["rss_by_quarter_mib"] = quarters
    Path(args.out).write_text(json.dumps(out))


def phase_make(args) -> None:
    """Write the photos and videos into ``args.input``; their list, sizes and the library versions to ``args.out``."""
    folder = Path(args.input)
    t0 = time.perf_counter()
    photos = make_photos(folder, args.photos + args.warmup, args.seed)
    photo_inputs = {"count": len(photos), "mean_bytes": statistics.mean(p.stat().st_size for p in photos),
                    "make_s": time.perf_counter() - t0}
    log(f"{len(photos)} photos of {PHOTO_W}x{PHOTO_H}, {photo_inputs['mean_bytes'] / MB:.2f} MB each on average "
        f"({photo_inputs['make_s']:.0f} s)")
    videos = make_videos(folder, args)
    Path(args.out).write_text(json.dumps({"photos": [str(p) for p in photos], "photo_inputs": photo_inputs, "videos": videos,
                                          "versions": library_versions()}))


def phase_decode(args) -> None:
    """The decode loop of the selection pass alone (grab every frame, retrieve every step-th, keep nothing)."""
    sys.path.insert(0, str(ROOT))
    import cv2

    from labeling.video import probe_video

    path = str(args.input)
    info = probe_video(path)
    step = max(1, round((info.fps or 30.0) / args.rate))
    reset_peak()
    before = proc_status()["VmRSS"]
    t0, c0 = time.perf_counter(), time.process_time()
    capture = cv2.VideoCapture(path)
    index = sampled = 0
    while capture.grab():
        if index % step == 0:
            ok, _ = capture.retrieve()
            if not ok:
                break
            sampled += 1
        index += 1
    capture.release()
    Path(args.out).write_text(json.dumps({"wall_s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0, "frames": index,
                                          "sampled": sampled, "step": step, "rss_before_mib": before,
                                          "peak_mib": proc_status()["VmHWM"]}))


# --------------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------------


def library_versions() -> dict:
    out = {}
    for name in ("django", "PIL", "cv2", "numpy", "pillow_heif"):
        try:
            module = __import__(name)
            out[name] = getattr(module, "__version__", None) or module.get_version()
        except Exception:  # noqa: BLE001 - informational
            out[name] = None
    return out


def versions() -> dict:
    out = {}
    out["commit"] = git_commit(("labeling", "bench/intake.py", "annotation_site", "dataset"),
                               "the intake code or this script", untracked=False) or None
    return out


def orchestrate(args) -> int:
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="nailset-bench-intake-"))
    var_dir, inputs = scratch / "var", scratch / "inputs"
    var_dir.mkdir()
    inputs.mkdir()
    me = str(Path(__file__).resolve())
    report: dict = {"machine": machine_info(), "versions": versions(), "args": vars(args), "load_start": loadavg(),
                    "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    waits = {"budget": args.wait_total}

    def quiet(label: str) -> dict:
        allowed = max(0.0, min(args.wait_idle, waits["budget"]))
        seen = wait_for_quiet(allowed, args.quiet_threshold)
        waits["budget"] -= seen["waited_s"]
        log(f"{label}: machine {seen['busy_cores']:.2f} cores busy before it (waited {seen['waited_s']:.0f} s), "
            f"load average {seen['loadavg'][0]:.2f}")
        return seen

    try:
        env = child_env(var_dir)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        log(f"scratch instance {var_dir} migrated in {time.perf_counter() - t0:.1f} s")

        # The inputs are made in a child too: this process stays small, so that the children's ru_maxrss
        # (which Linux carries over from the parent's peak across fork + exec) is their own.
        made_path = scratch / "inputs.json"
        subprocess.run([sys.executable, me, "--phase", "make", "--input", str(inputs), "--out", str(made_path),
                        "--photos", str(args.photos), "--warmup", str(args.warmup), "--video-seconds", str(args.video_seconds),
                        "--long-mb", str(args.long_mb), "--short-mb", str(args.short_mb), "--seed", str(args.seed)],
                       cwd=ROOT, env=env, check=True)
        made = json.loads(made_path.read_text())
        photos, videos = [Path(p) for p in made["photos"]], made["videos"]
        report["versions"].update(made["versions"])
        report["photo_inputs"] = made["photo_inputs"]
        report["videos"] = videos

        # Photos: one child, store + ingest of each photo in turn.
        listing = scratch / "photos.json"
        listing.write_text(json.dumps([str(p) for p in photos]))
        result_path = scratch / "photos-result.json"
        before = quiet("photos")
        proc = run_measured([me, "--phase", "photos", "--input", str(listing), "--out", str(result_path),
                             "--warmup", str(args.warmup)], env, "photos")
        report["photos"] = {**json.loads(result_path.read_text()), "process": proc, "quiet": before}
        measured = [r for r in report["photos"]["rows"] if not r["warmup"]]
        total = sum(r["total_s"] for r in measured)
        log(f"photos: {len(measured)} in {total:.1f} s = {len(measured) / total:.2f} photos/s "
            f"(median store {statistics.median(r['store_s'] for r in measured) * 1000:.0f} ms, "
            f"ingest {statistics.median(r['ingest_s'] for r in measured) * 1000:.0f} ms); other load {proc['other_cores']:.2f} cores")

        # Videos: ingest (store + frames) and decode-only, each in its own child.
        report["video_runs"] = {}
        for key in ("phone", "short", "long"):
            video = videos[key]
            runs = {}
            for mode in ("decode", "ingest"):
                out_path = scratch / f"{key}-{mode}.json"
                before = quiet(f"{key} video, {mode}")
                argv = [me, "--phase", "decode" if mode == "decode" else "video", "--input", video["path"], "--out", str(out_path),
                        "--rate", str(args.rate)]
                proc = run_measured(argv, env, f"{key} {mode}")
                runs[mode] = {**json.loads(out_path.read_text()), "process": proc, "quiet": before}
                if mode == "ingest":
                    r = runs[mode]["ingest"]
                    log(f"{key} ingest: {r['wall_s']:.1f} s, {runs[mode]['frame_count'] / r['wall_s']:.0f} video frames/s, "
                        f"{r['sampled']} sampled, {r['candidates']} candidates (max {r['candidates_max_alive']} held), {r['kept']} kept "
                        f"(max {r['frames_max_alive']} frames alive); "
                        f"peak {r['peak_mib']:.0f} MiB (before {r['rss_before_mib']:.0f}); store peak {runs[mode]['store']['peak_mib']:.0f} MiB; "
                        f"other load {proc['other_cores']:.2f} cores")
                else:
                    r = runs[mode]
                    log(f"{key} decode only: {r['wall_s']:.1f} s, {r['frames'] / r['wall_s']:.0f} frames/s, "
                        f"peak {r['peak_mib']:.0f} MiB (before {r['rss_before_mib']:.0f}); other load {proc['other_cores']:.2f} cores")
            report["video_runs"][key] = runs
        publish_report(report, started, "bench/intake.py", sys.argv[1:], render, SECTION, args.json, args.no_docs)
        return 0
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------------------------------


def other_text(proc: dict, quiet: dict) -> str:
    return (f"{fmt(proc['other_cores'], 2)} (before: {fmt(quiet['busy_cores'], 2)} busy, load avg "
            f"{fmt(proc['loadavg_before'][0], 2)})")


def render(report: dict) -> str:
    m, v, a = report["machine"], report["versions"], report["args"]
    photos = report["photos"]
    measured = [r for r in photos["rows"] if not r["warmup"]]
    total = sum(r["total_s"] for r in measured)
    cpu = sum(r["cpu_s"] for r in measured)
    runs = report["video_runs"]
    phone = runs["phone"]["ingest"]
    frame_bytes = VIDEO_W * VIDEO_H * 3 / MIB
    check = photos["check"]
    short, long_ = runs["short"], runs["long"]
    growth = lambda run: run["ingest"]["ingest"]["peak_mib"] - run["ingest"]["ingest"]["rss_before_mib"]  # noqa: E731
    decode_growth = lambda run: run["decode"]["peak_mib"] - run["decode"]["rss_before_mib"]  # noqa: E731
    ratio_len = report["videos"]["long"]["seconds"] / report["videos"]["short"]["seconds"]
    flat = growth(long_) <= 1.25 * growth(short) + 20
    decode_flat = decode_growth(long_) <= 1.25 * decode_growth(short) + 20
    store_peaks = [runs[k]["ingest"]["store"]["peak_mib"] - runs[k]["ingest"]["store"]["rss_before_mib"] for k in ("short", "long")]

    lines = [SECTION_START, "## Intake: photos and video frames per second, worker memory (`bench/intake.py`)", "",
             f"Measured {report['date']} in {report['total_s']:.0f} s with `{report['command']}` (commit {v.get('commit')}); "
             "every figure below comes from that run.", ""]
    lines += [f"**Photos**: {len(measured) / total:.2f} 12-megapixel JPEGs per second on one worker "
              f"({total / len(measured):.2f} s each, upload + ingest; {len(measured) / cpu:.2f}/s from the worker's CPU time alone).",
              f"**1080p video**: {runs['phone']['ingest']['frame_count'] / phone['ingest']['wall_s']:.0f} video frames per second "
              f"through ingest ({phone['ingest']['sampled'] / phone['ingest']['wall_s']:.1f} sampled frames/s at "
              f"{phone['rate']:g} samples per second of video; a {report['videos']['phone']['seconds']:.0f} s video takes "
              f"{phone['ingest']['wall_s']:.1f} s, {report['videos']['phone']['seconds'] / phone['ingest']['wall_s']:.1f}x real time).",
              f"**Memory while ingesting a video**: peak {long_['ingest']['ingest']['peak_mib']:.0f} MiB for the "
              f"{report['videos']['long']['bytes'] / MB:.0f} MB video against {short['ingest']['ingest']['peak_mib']:.0f} MiB for the "
              f"{report['videos']['short']['bytes'] / MB:.0f} MB one ({ratio_len:.1f}x longer): the ingest step added "
              f"{growth(long_):.0f} MiB vs {growth(short):.0f} MiB, "
              + ("**flat**." if flat else f"**NOT flat: it grows with the video's length** (see below; decoding alone adds "
                                           f"{decode_growth(long_):.0f} vs {decode_growth(short):.0f} MiB, "
                                           f"{'flat' if decode_flat else 'not flat either'})."),
              f"**Upload step** (`store_upload`, streamed to disk): peak {max(store_peaks):.1f} MiB above the process's "
              f"resident size before it, whatever the file size.", ""]
    lines += ["### Set-up", "",
              f"- **Machine**: {m['nproc']} CPUs ({m['cpu']}), {fmt(m['mem_gib'])} GiB RAM, Linux {m['kernel']}; shared with other "
              f"work: load average {report['load_start'][0]:.2f} at the start, {report['load_end'][0]:.2f} at the end. Before each "
              f"measurement the script waits up to {a['wait_idle']:.0f} s (at most {a['wait_total']:.0f} s in all) for the machine to "
              f"have less than {a['quiet_threshold']} cores busy; *other load* is the CPU the rest of the machine used during "
              "the measurement (cores, from `/proc/stat` minus the worker's own CPU time).",
              f"- **Software**: Python {m['python']}, Django {v.get('django')}, Pillow {v.get('PIL')}, OpenCV {v.get('cv2')}, "
              f"NumPy {v.get('numpy')}, pillow-heif {v.get('pillow_heif')}.",
              "- **Instance**: scratch embedded instance (temporary `NAILSET_VAR_DIR`, `DATABASE_URL=sqlite:////<tmp>/db.sqlite3`, "
              "`manage.py migrate` in a subprocess, default intake settings); each measurement is a fresh child process "
              "(Django set up, one participant) that calls `labeling.intake.store_upload` then `labeling.intake.ingest_upload` "
              "(what the `ingest_upload` job runs) one file at a time: one worker, one job at a time.",
              f"- **Photos**: {report['photo_inputs']['count']} synthetic camera-like {PHOTO_W}x{PHOTO_H} JPEGs (quality 92, 4:2:0; "
              f"colour gradients, texture and sensor-like noise; {report['photo_inputs']['mean_bytes'] / MB:.1f} MB each on average, "
              "each different), with EXIF orientation 6, camera make/model/date and GPS; the first "
              f"{a['warmup']} (warm-up) not counted. Check on the stored result: {check['stored_size'][0]}x{check['stored_size'][1]} "
              f"{check['stored_format']} (orientation applied), {check['exif_tags']} EXIF tags, GPS "
              f"{'present' if check['gps'] else 'absent'}, ICC {'present' if check['icc'] else 'absent'}, "
              f"{check['stored_bytes'] / MB:.1f} MB (re-encoded at quality 95).",
              f"- **Videos**: synthetic {VIDEO_W}x{VIDEO_H} {VIDEO_FPS} fps MP4 written with OpenCV (`mp4v`, MPEG-4 Part 2): a steadily "
              "panning texture with moving skin-coloured ellipses and a slow brightness drift, so every sampled frame is sharp "
              "and new (the worst case for frame selection). Phone-like: "
              f"{report['videos']['phone']['seconds']:.0f} s, {report['videos']['phone']['bytes'] / MB:.1f} MB. "
              f"~20 MB and ~200 MB: the same generator with a finer texture (calibrated to {report['videos']['long']['probe_rate_mb_s']:.2f} MB/s "
              f"on a 2 s probe), {report['videos']['short']['seconds']:.1f} s / {report['videos']['short']['bytes'] / MB:.1f} MB and "
              f"{report['videos']['long']['seconds']:.1f} s / {report['videos']['long']['bytes'] / MB:.1f} MB "
              f"({report['videos']['long']['bytes'] / MIB:.1f} MiB; limits 200 MiB and 60 s): they differ only in length. "
              "mp4v needs no 4K frames to reach 200 MB within 60 s at 1080p.",
              f"- **Frame selection**: the defaults, {phone['rate']:g} samples per second of video (every "
              f"{round(phone['fps'] / phone['rate'])}th frame decoded to pixels, the others grabbed), blur threshold "
              f"{phone['blur_threshold']:g}, duplicate distance {phone['duplicate_distance']} bits, at most {phone['max_frames']} frames kept; "
              "then a second pass grabs the video again up to the last kept frame and decodes the kept ones.",
              "- **Memory**: peak resident set size (`VmHWM`, reset through `/proc/self/clear_refs` just before the step) and "
              "the resident size just before it; the child's `ru_maxrss` (whole process: Python, Django, the step) is given too. "
              "*Decode only* is the grab/retrieve loop of the selection pass (`select_frames`) alone in its own child, keeping nothing.", ""]

    lines += ["### Photos (12 MP JPEG, one worker)", "",
              "| photos | photos/s (wall) | s per photo | upload (`store_upload`) median ms | ingest (`ingest_upload`) median ms | "
              "CPU s per photo | worker peak RSS MiB (`VmHWM` / `ru_maxrss`) | other load, cores (before) |",
              "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
              f"| {len(measured)} | {len(measured) / total:.2f} | {total / len(measured):.2f} | "
              f"{statistics.median(r['store_s'] for r in measured) * 1000:.0f} | {statistics.median(r['ingest_s'] for r in measured) * 1000:.0f} | "
              f"{cpu / len(measured):.2f} | {photos['peak_mib']:.0f} / {photos['process']['maxrss_mib']:.0f} | {other_text(photos['process'], photos['quiet'])} |", ""]

    lines += ["### Videos (1080p, one worker)", "",
              "| video | length s | MB | frames | step | wall s (selection pass) | video frames/s | sampled frames/s | x real time | sampled / candidates "
              "(max held) / kept / max frames alive | decode only: wall s, frames/s | other load, cores (before) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    names = {"phone": "phone-like", "short": "~20 MB", "long": "~200 MB"}
    for key in ("phone", "short", "long"):
        run, video = runs[key], report["videos"][key]
        ing, dec = run["ingest"]["ingest"], run["decode"]
        lines.append(f"| {names[key]} | {video['seconds']:.1f} | {video['bytes'] / MB:.1f} | {run['ingest']['frame_count']} | {dec['step']} | "
                     f"{ing['wall_s']:.1f} ({ing['select_s']:.1f}) | {run['ingest']['frame_count'] / ing['wall_s']:.0f} | {ing['sampled'] / ing['wall_s']:.1f} | "
                     f"{video['seconds'] / ing['wall_s']:.1f} | {ing['sampled']} / {ing['candidates']} ({ing['candidates_max_alive']}) / {ing['kept']} / "
                     f"{ing['frames_max_alive']} | "
                     f"{dec['wall_s']:.1f}, {dec['frames'] / dec['wall_s']:.0f} | {other_text(run['ingest']['process'], run['ingest']['quiet'])}; "
                     f"decode {fmt(run['decode']['process']['other_cores'], 2)} |")
    lines += ["", "*wall s* covers `ingest_upload` alone: the selection pass (`select_frames`, in brackets) plus the reading pass, which "
              "decodes the video again up to the last kept frame and stores one Image per kept frame as it reads it; the upload before it "
              "is in the memory table. *sampled / candidates (max held) / kept / max frames alive*: frames decoded to pixels and scored, "
              "records of sharp non-duplicate frames (index, timestamp, scores; no pixels) and the most held at once, frames stored, and "
              "the most full-resolution frames alive at once.", ""]

    lines += ["### Worker memory while ingesting a video (MiB)", "",
              "| video | length s | MB | upload step: RSS before -> peak | ingest: RSS before -> peak (added) | RSS at 25 / 50 / 75 / 100 % of the ingest | "
              "decode only: before -> peak (added) | worker `ru_maxrss` |",
              "| --- | ---: | ---: | --- | --- | --- | --- | ---: |"]
    for key in ("short", "phone", "long"):
        run, video = runs[key], report["videos"][key]
        ing, st, dec = run["ingest"]["ingest"], run["ingest"]["store"], run["decode"]
        q = ing["rss_by_quarter_mib"]
        lines.append(f"| {names[key]} | {video['seconds']:.1f} | {video['bytes'] / MB:.1f} | {st['rss_before_mib']:.0f} -> {st['peak_mib']:.0f} | "
                     f"{ing['rss_before_mib']:.0f} -> {ing['peak_mib']:.0f} (+{ing['peak_mib'] - ing['rss_before_mib']:.0f}) | "
                     f"{' / '.join(fmt(q[k], 0) for k in ('0.25', '0.5', '0.75', '1.0'))} | "
                     f"{dec['rss_before_mib']:.0f} -> {dec['peak_mib']:.0f} (+{dec['peak_mib'] - dec['rss_before_mib']:.0f}) | "
                     f"{run['ingest']['process']['maxrss_mib']:.0f} |")
    most_frames_alive = max(runs[k]["ingest"]["ingest"]["frames_max_alive"] for k in ("phone", "short", "long"))
    lines += ["", "*RSS at 25 / 50 / 75 / 100 % of the ingest*: the highest resident size seen by the progress callback up to that "
              "point; the selection pass is 0-50 %, the reading pass 50-100 %.", "",
              f"One decoded 1080p frame is {frame_bytes:.1f} MiB as an RGB array. `labeling/video.py` streams the video twice: the "
              "selection pass keeps only a small record per candidate (at most "
              f"{4 * phone['max_frames'] + 1}), the reading pass hands the kept frames to the storing code one at a time (at most "
              f"{most_frames_alive} full-resolution frame alive at once here). "
              + (f"The ingest step adds {growth(short):.0f} MiB for the short video and {growth(long_):.0f} MiB for the "
                 f"{ratio_len:.1f}x longer one: flat; decoding alone adds +{decode_growth(short):.0f} vs +{decode_growth(long_):.0f} MiB, "
                 "the rest is one frame being stored (its RGB array, the Pillow copy, the JPEG and the thumbnail)." if flat else
                 f"Yet the ingest step grows with the video's length ({growth(short):.0f} vs {growth(long_):.0f} MiB; decoding alone "
                 f"+{decode_growth(short):.0f} vs +{decode_growth(long_):.0f} MiB): something else holds memory."),
              "", SECTION_END]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=16, help="12 MP photos measured (default 16; plus --warmup)")
    parser.add_argument("--warmup", type=int, default=1, help="photos ingested first and not counted (default 1)")
    parser.add_argument("--video-seconds", type=float, default=20.0, help="length of the phone-like 1080p video (default 20)")
    parser.add_argument("--long-mb", type=float, default=200.0, help="size of the long video in MB (default 200)")
    parser.add_argument("--short-mb", type=float, default=20.0, help="size of the short video in MB (default 20)")
    parser.add_argument("--rate", type=float, default=2.0, help="sampling rate of the decode-only loop; keep it equal to NAILSET_VIDEO_FRAME_RATE (default 2)")
    parser.add_argument("--wait-idle", type=float, default=20.0, metavar="SECONDS", help="wait up to this long before each measurement for a quieter machine (default 20)")
    parser.add_argument("--wait-total", type=float, default=90.0, metavar="SECONDS", help="at most this long waiting in all (default 90)")
    parser.add_argument("--quiet-threshold", type=float, default=0.5, metavar="CORES", help="'quiet' means fewer busy cores than this (default 0.5)")
    parser.add_argument("--quick", action="store_true", help="4 photos, 4 s / 20 MB / 40 MB videos: checks the script, not the numbers")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--json", help="also write the full report as JSON to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (instance and inputs)")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--phase", choices=["make", "photos", "video", "decode"], help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.photos, args.video_seconds, args.long_mb, args.short_mb = 4, 4.0, 40.0, 20.0
        args.wait_idle, args.wait_total = 0.0, 0.0
    return args


def main() -> int:
    if sys.prefix == sys.base_prefix and VENV_PYTHON.exists():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # run with the project's virtual environment
    args = parse_args()
    if args.phase == "photos":
        phase_photos(args)
        return 0
    if args.phase == "video":
        phase_video(args)
        return 0
    if args.phase == "decode":
        phase_decode(args)
        return 0
    if args.phase == "make":
        phase_make(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
