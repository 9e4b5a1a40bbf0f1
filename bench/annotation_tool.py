#!/usr/bin/env python
"""Annotation tool: page open to first paint of a 12 MP photo, frame time while dragging a vertex with 20
nails on screen (headless Chromium), and the annotation save round trip with 20 concurrent annotators
against gunicorn + PostgreSQL.

    .venv/bin/python bench/annotation_tool.py              # full run (~4-5 min); writes docs/benchmarks.md
    .venv/bin/python bench/annotation_tool.py --quick --no-docs   # a quick check of the script itself

What it does, in order:

1. drops and re-creates the scratch PostgreSQL database ``nailset_bench_tool`` (``--database-url``; its
   name must contain "bench") and runs ``manage.py migrate`` on it; media and the rest go to a temporary
   ``NAILSET_VAR_DIR``;
2. seeds it (child process): one camera-like 4032x3024 photo stored through ``labeling.intake.create_image``
   (JPEG, quality 95, as intake stores photos) labelled with 20 nails (real nail outlines of
   ``../shared/data/nails-cc0``, ~1/8 of the image height each, 5 x 4, fingers and base/tip landmarks) through
   ``save_annotation`` for the browser's annotator; 20 annotators with API tokens, each owning
   ``--images-per-annotator`` images (4032x3024 rows pointing at one stored file: a save never reads the
   pixels) labelled with 10 real outlines each (draft);
3. starts gunicorn (``--workers`` x ``--threads`` gthread, ``DJANGO_DEBUG`` off) on that database;
4. Chromium (Playwright's Python package driving Debian's ``/usr/bin/chromium``, headless, ``--no-sandbox
   --disable-gpu --disable-background-networking --disable-component-update --disable-sync
   --no-first-run``; never ``playwright install``), 1400x900 viewport, logged in as the annotator:
   - *first paint*: ``--opens`` times, a fresh browser context (empty HTTP cache, the session cookie)
     opens ``/annotate/<id>/``; the page's own ``performance.mark("nailset:first-image-paint")``
     (``annotator.stage.firstImagePaint``: ``performance.now()`` when the photo is first drawn on its canvas,
     from navigation start), with the navigation and resource timings of the HTML and of the photo;
   - *drag*: nail 1 selected (Tab), its first vertex dragged along a loop (``--drag-steps`` mouse moves
     each, ``--drags`` times); every ``requestAnimationFrame`` interval during the drags (Chromium's
     frame time), the duration of each ``stage.flush()`` (the page's own redraw work, wrapped), the layers
     redrawn (``annotator.stage.stats``) and the long animation frames the Performance API reports;
5. 20 concurrent annotators (threads, one keep-alive ``http.client`` connection each, ``Authorization:
   Token``) save their own images with ``PUT /api/images/<id>/annotation/`` (the full geometry with one
   vertex moved, status draft, the version they last got back), first with a think time of 2.5 s +-20 %
   between saves (the autosave interval of the page) for ``--think-seconds``, then back to back with no
   think time (``--requests`` saves in all); p50 / p95 / p99 of the round trip (request sent to response
   read), with the CPU that gunicorn, PostgreSQL, the load generator and everything else used meanwhile;
   afterwards the revision count in the database must equal the saves answered 200 (nothing lost);
6. stops gunicorn, drops the database (``--keep-db`` keeps it) and writes the ``annotation_tool`` section
   of ``docs/benchmarks.md``.

Before each measurement it waits (bounded) for a quieter machine. Every number written is measured by
the run; nothing is hard-coded.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import http.client
import json
import math
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
from benchdoc import cpu_snapshot, fmt, free_port, git_commit, loadavg, log, machine_info, markers, publish_report  # noqa: E402  (bench/ is on sys.path when run as a script)

SECTION = "annotation_tool"
SECTION_START, SECTION_END = markers(SECTION)
SHARED = ROOT.parent / "shared" / "data" / "nails-cc0"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}
PHOTO_W, PHOTO_H = 4032, 3024
N_ANNOTATORS = 20
BROWSER_USER, BROWSER_PASSWORD = "bench-tool-annotator", "bench-tool-password-1"
AUTOSAVE_S = 2.5
KEEPALIVE_S = 1.5  # gunicorn's --keep-alive is 2 s: a connection idle longer than this is not reused
MB = 1_000_000


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    if not s:
        return float("nan")
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {"n": len(values), "mean": statistics.fmean(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "max": max(values), "min": min(values)}


# --------------------------------------------------------------------------------------------------
# Load and CPU accounting (/proc)
# --------------------------------------------------------------------------------------------------


def cpu_usage(before: dict, after: dict, wall: float, server_pid: int | None = None) -> dict | None:
    """Cores used on average: gunicorn (master + workers), PostgreSQL, this process, and the rest."""
    if not before["machine"] or not after["machine"] or wall <= 0:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    busy = (after["machine"]["total"] - before["machine"]["total"]) - (after["machine"]["idle"] - before["machine"]["idle"])
    groups = {"gunicorn": 0, "postgres": 0, "this script": 0, "chromium": 0}
    for pid, (comm, ppid, ticks) in after["procs"].items():
        used = ticks - before["procs"].get(pid, (comm, ppid, 0))[2]
        if server_pid is not None and (pid == server_pid or ppid == server_pid):
            groups["gunicorn"] += used
        elif comm == "postgres":
            groups["postgres"] += used
        elif "chrom" in comm.lower() or comm == "headless_shell":
            groups["chromium"] += used
        elif pid == os.getpid():
            groups["this script"] += used
    cores = {k: v / tick / wall for k, v in groups.items()}
    cores["other"] = max(0.0, busy / tick / wall - sum(cores.values()))
    return {"busy": busy / tick / wall, "cores": cores}


def wait_for_quiet(max_wait: float, threshold: float, window: float = 2.0) -> dict:
    """Wait (at most ``max_wait`` s) until other processes use fewer than ``threshold`` cores."""
    started = time.monotonic()
    while True:
        before = cpu_snapshot()
        time.sleep(window)
        usage = cpu_usage(before, cpu_snapshot(), window)
        waited = time.monotonic() - started
        busy = None if usage is None else max(0.0, usage["busy"] - usage["cores"]["this script"])
        if busy is None or busy < threshold or waited >= max_wait:
            return {"busy_cores": busy, "waited_s": waited, "loadavg": loadavg()}
        log(f"other processes keep {busy:.2f} cores busy; waiting up to {max_wait - waited:.0f} s more")


# --------------------------------------------------------------------------------------------------
# Labels: real nail outlines from the shared data
# --------------------------------------------------------------------------------------------------

def shared_outlines() -> list[list[list[float]]]:
    coco = json.loads((SHARED / "annotations.coco.json").read_text())
    out = []
    for ann in coco["annotations"]:
        for flat in ann["segmentation"]:
            poly = [[flat[i], flat[i + 1]] for i in range(0, len(flat) - 1, 2)]
            if len(poly) >= 7:
                out.append(poly)
    return out


def hand_geometry(outlines, rng: random.Random, nails: int, width: int, height: int, columns: int = 5) -> dict:
    """``nails`` real outlines scaled to 1/8 of the image height on a grid, with fingers (left to right)
    and base / tip landmarks on each nail's principal axis (landmarks dropped where they would not validate)."""
    from dataset.geometry import normalize_geometry, validate_geometry

    rows = math.ceil(nails / columns)
    out = []
    while len(out) < nails:  # outlines that stay simple polygons at this scale (a few shared ones cross themselves)
        k, poly = len(out), rng.choice(outlines)
        xs, ys = [p[0] for p in poly], [p[1] for p in poly]
        cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
        scale = (height / 8) / max(max(xs) - min(xs), max(ys) - min(ys))
        gx, gy = width * (k % columns + 0.5) / columns, height * (k // columns + 0.5) / rows
        polygon = [[round(gx + (x - cx) * scale, 2), round(gy + (y - cy) * scale, 2)] for x, y in poly]
        if not validate_geometry({"nails": [{"polygon": polygon, "finger": None, "base": None, "tip": None}]}, width, height).ok:
            continue
        # principal axis of the vertices; the tip towards the top of the image
        mx, my = sum(p[0] for p in polygon) / len(polygon), sum(p[1] for p in polygon) / len(polygon)
        sxx = sum((p[0] - mx) ** 2 for p in polygon)
        syy = sum((p[1] - my) ** 2 for p in polygon)
        sxy = sum((p[0] - mx) * (p[1] - my) for p in polygon)
        angle = 0.5 * math.atan2(2 * sxy, sxx - syy)
        ux, uy = math.cos(angle), math.sin(angle)
        if uy > 0:
            ux, uy = -ux, -uy
        proj = [(p[0] - mx) * ux + (p[1] - my) * uy for p in polygon]
        length = max(proj) - min(proj)
        base = [round(mx - 0.3 * length * ux, 2), round(my - 0.3 * length * uy, 2)]
        tip = [round(mx + 0.3 * length * ux, 2), round(my + 0.3 * length * uy, 2)]
        out.append({"polygon": polygon, "finger": k % 10 + 1, "base": base, "tip": tip})
    geometry = {"nails": out, "ignore": []}
    for issue in validate_geometry(geometry, width, height).errors:
        if issue.rule == "landmark_outside_nail" and issue.nail is not None:
            out[issue.nail]["base"] = out[issue.nail]["tip"] = None
    report = validate_geometry(geometry, width, height)
    assert report.ok, report.to_dict()
    return normalize_geometry(geometry)


def camera_photo(seed: int):
    """A camera-like 4032x3024 picture: colour gradients, texture and sensor-like noise."""
    import cv2
    import numpy as np
    from PIL import Image as PILImage

    rng = np.random.default_rng(seed)
    W, H = PHOTO_W, PHOTO_H
    y, x = np.mgrid[0:H:8, 0:W:8].astype(np.float32)
    small = np.stack([150 + 55 * np.sin(x / 400) + 25 * np.cos(y / 300), 115 + 45 * np.cos(x / 500) + 35 * np.sin(y / 250 + 2),
                      100 + 40 * np.sin((x + y) / 600)], -1)
    picture = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    picture += cv2.resize(rng.normal(0, 1, (H // 16, W // 16, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC) * 12
    picture += cv2.resize(rng.normal(0, 1, (H // 3, W // 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)[..., None] * 10
    picture += rng.normal(0, 6, (H, W, 3)).astype(np.float32)
    return PILImage.fromarray(np.clip(picture, 0, 255).astype(np.uint8))


# --------------------------------------------------------------------------------------------------
# Child phase: seed
# --------------------------------------------------------------------------------------------------

def phase_seed(args) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import ApiToken
    from labeling.annotations import save_annotation
    from labeling.intake import create_image
    from labeling.models import Annotation, AnnotationRevision, Image, Participant

    rng = random.Random(args.seed)
    outlines = shared_outlines()
    started = time.perf_counter()
    group, _ = Group.objects.get_or_create(name="annotator")
    participant = Participant.objects.create(code="bench-tool", consent_at=timezone.now(), consent_version="bench")

    browser_user = User.objects.create_user(BROWSER_USER, password=BROWSER_PASSWORD)
    group.user_set.add(browser_user)
    photo, _ = create_image(participant, camera_photo(args.seed), "JPEG")
    geometry20 = hand_geometry(outlines, rng, 20, PHOTO_W, PHOTO_H)
    save_annotation(photo, browser_user, geometry=geometry20, version=0)
    photo_bytes = Path(photo.file.path).stat().st_size
    log(f"seed: 12 MP photo {photo.pk} ({photo_bytes / MB:.1f} MB JPEG) with 20 nails ({time.perf_counter() - started:.1f} s)")

    annotators = [User(username=f"bench-annotator{i:02d}") for i in range(N_ANNOTATORS)]
    for user in annotators:
        user.set_unusable_password()  # token auth only
    with transaction.atomic():
        User.objects.bulk_create(annotators)
        annotators = list(User.objects.filter(username__startswith="bench-annotator").order_by("username"))
        group.user_set.add(*annotators)
        tokens = {u.username: ApiToken.issue(u, name="bench")[1] for u in annotators}
        count = N_ANNOTATORS * args.images_per_annotator
        images = Image.objects.bulk_create([
            Image(participant=participant, file=photo.file.name, thumbnail=photo.thumbnail.name, width=PHOTO_W, height=PHOTO_H,
                  sha256=hashlib.sha256(f"bench-tool-{n}".encode()).hexdigest(), phash=photo.phash) for n in range(count)])
        plan = {}
        annotations = []
        now = timezone.now()
        for n, image in enumerate(images):
            user = annotators[n % N_ANNOTATORS]
            geometry = hand_geometry(outlines, rng, 10, PHOTO_W, PHOTO_H)
            annotations.append(Annotation(image=image, geometry=geometry, version=1, status="draft", assignee=user,
                                          updated_by=user, updated_at=now))
            plan.setdefault(user.username, []).append({"id": image.pk, "version": 1, "geometry": geometry})
        annotations = Annotation.objects.bulk_create(annotations)
        AnnotationRevision.objects.bulk_create([
            AnnotationRevision(annotation=a, version=1, geometry=a.geometry, status="draft", author=a.assignee, created_at=now)
            for a in annotations])
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    vertices = statistics.mean(len(n["polygon"]) for g in plan[annotators[0].username] for n in g["geometry"]["nails"])
    Path(args.out).write_text(json.dumps({
        "photo_id": photo.pk, "photo_bytes": photo_bytes, "photo_vertices": sum(len(n["polygon"]) for n in geometry20["nails"]),
        "photo_landmarks": sum(1 for n in geometry20["nails"] if n["base"]),
        "tokens": tokens, "plan": plan, "save_vertices_mean": vertices,
        "save_body_bytes": len(json.dumps({"version": 1, "status": "draft", "geometry": plan[annotators[0].username][0]["geometry"]})),
        "seed_s": time.perf_counter() - started}))


# --------------------------------------------------------------------------------------------------
# Browser measurements (orchestrator)
# --------------------------------------------------------------------------------------------------

FRAME_RECORDER = """() => {
  const stage = annotator.stage;
  window.__bench = { raf: [], flush: [], loaf: [], events: 0 };
  if (!stage.__benchWrapped) {
    const flush = stage.flush.bind(stage);
    stage.flush = () => { const t0 = performance.now(); flush(); if (window.__bench) window.__bench.flush.push(performance.now() - t0); };
    stage.__benchWrapped = true;
    annotator.stage.top.addEventListener("pointermove", () => { if (window.__bench) window.__bench.events++; });
  }
  window.__benchRun = true;
  let last = null;
  const tick = (t) => {
    if (!window.__benchRun) return;
    if (last !== null) window.__bench.raf.push(t - last);
    last = t;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  window.__bench.loafSupported = (PerformanceObserver.supportedEntryTypes || []).includes("long-animation-frame");
  if (window.__bench.loafSupported) {
    window.__benchPO = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) window.__bench.loaf.push({ duration: e.duration, blocking: e.blockingDuration || 0 });
    });
    window.__benchPO.observe({ type: "long-animation-frame" });
  }
  return { ...stage.stats };
}"""

FRAME_STOP = """() => { window.__benchRun = false; if (window.__benchPO) window.__benchPO.disconnect();
  return { ...window.__bench, stats: { ...annotator.stage.stats } }; }"""


def wait_js(page, expression: str, timeout: float) -> None:
    """Poll a JS expression until it is truthy: the page's CSP (script-src 'self') forbids the eval that
    Playwright's ``wait_for_function`` uses for an expression string. The performance marks it waits for are
    read from the page, so the polling interval does not enter the figures."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"Boolean({expression})"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:.0f} s for {expression}")
        time.sleep(0.02)


def browser_measurements(args, base_url: str, photo_id: int, expected_bytes: int) -> dict:
    from playwright.sync_api import sync_playwright

    url = f"{base_url}/annotate/{photo_id}/"
    out = {"opens": [], "drags": []}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        out["chromium"] = browser.version
        try:
            login_context = browser.new_context(viewport=VIEWPORT)
            page = login_context.new_page()
            page.goto(f"{base_url}/accounts/login/")
            page.fill("#id_username", BROWSER_USER)
            page.fill("#id_password", BROWSER_PASSWORD)
            page.click("input[type=submit]")
            page.wait_for_url(f"{base_url}/")
            state = login_context.storage_state()
            login_context.close()

            # Page open to first paint: a fresh context (cold HTTP cache) each time.
            for n in range(args.opens + 1):
                context = browser.new_context(viewport=VIEWPORT, storage_state=state)
                page = context.new_page()
                errors = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(url)
                wait_js(page, "document.getElementById('app').dataset.ready === '1'", 60)
                wait_js(page, "annotator.stage.firstImagePaint > 0", 60)
                timing = page.evaluate("""(id) => {
                  const nav = performance.getEntriesByType("navigation")[0];
                  const mark = performance.getEntriesByName("nailset:first-image-paint")[0];
                  const photo = performance.getEntriesByType("resource").find((r) => r.name.endsWith(`/api/images/${id}/file/`));
                  const paints = Object.fromEntries(performance.getEntriesByType("paint").map((p) => [p.name, p.startTime]));
                  return { first_image_paint: annotator.stage.firstImagePaint, mark: mark ? mark.startTime : null,
                           html_response_end: nav.responseEnd, dom_content_loaded: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
                           first_contentful_paint: paints["first-contentful-paint"] || null,
                           photo_start: photo ? photo.startTime : null, photo_response_end: photo ? photo.responseEnd : null,
                           photo_bytes: photo ? (photo.encodedBodySize || photo.transferSize) : null,
                           nails: annotator.scene.geometry.nails.length, dpr: window.devicePixelRatio };
                }""", photo_id)
                timing["errors"] = errors
                timing["warmup"] = n == 0
                out["opens"].append(timing)
                log(f"open {n}{' (warm-up)' if n == 0 else ''}: first image paint {timing['first_image_paint']:.0f} ms "
                    f"(HTML {timing['html_response_end']:.0f}, photo {timing['photo_start'] or 0:.0f}-{timing['photo_response_end'] or 0:.0f} ms, "
                    f"{(timing['photo_bytes'] or 0) / MB:.1f} MB)")
                if n < args.opens:
                    context.close()
            # Drag a vertex of nail 1 with 20 nails on screen (the last page stays open).
            page.wait_for_timeout(1000)  # the resolution pyramid arrives
            page.keyboard.press("Tab")  # selects nail 1
            page.wait_for_timeout(200)
            for n in range(args.drags):
                view = page.evaluate("annotator.view.snapshot()")
                box = page.locator("#stage canvas.layer-ui").bounding_box()
                polygon = page.evaluate("annotator.scene.geometry.nails[0].polygon")
                vertex = polygon[0]
                cx, cy = sum(p[0] for p in polygon) / len(polygon), sum(p[1] for p in polygon) / len(polygon)
                norm = math.hypot(vertex[0] - cx, vertex[1] - cy) or 1.0
                outward = ((vertex[0] - cx) / norm, (vertex[1] - cy) / norm)
                sx = box["x"] + view["tx"] + vertex[0] * view["scale"]
                sy = box["y"] + view["ty"] + vertex[1] * view["scale"]
                page.mouse.move(round(sx), round(sy))
                page.wait_for_timeout(100)
                stats_before = page.evaluate(FRAME_RECORDER)
                page.wait_for_timeout(50)
                t0 = time.perf_counter()
                page.mouse.down()
                radius = 60
                points = [(sx + radius * math.sin(2 * math.pi * k / 4), sy + radius * (1 - math.cos(2 * math.pi * k / 4))) for k in range(1, 4)]
                points.append((sx + 4 * outward[0], sy + 4 * outward[1]))  # ends 4 px outwards: a valid polygon, saved
                for px, py in points:
                    page.mouse.move(round(px), round(py), steps=max(1, args.drag_steps // 4))
                page.mouse.up()
                elapsed = time.perf_counter() - t0
                page.wait_for_timeout(60)
                record = page.evaluate(FRAME_STOP)
                moved = page.evaluate("annotator.scene.geometry.nails[0].polygon[0]")
                record.update(stats_before=stats_before, elapsed_s=elapsed, vertex_before=vertex, vertex_after=moved,
                              dragged=abs(moved[0] - vertex[0]) + abs(moved[1] - vertex[1]) > 0.5, view_scale=view["scale"])
                out["drags"].append(record)
                raf = record["raf"]
                log(f"drag {n + 1}: {len(raf)} frames in {elapsed:.2f} s, frame time median {statistics.median(raf) if raf else float('nan'):.1f} ms, "
                    f"p95 {percentile(raf, 95):.1f} ms; flush median {statistics.median(record['flush']) if record['flush'] else float('nan'):.2f} ms; "
                    f"scene redraws {record['stats']['scene'] - stats_before['scene']}, ui {record['stats']['ui'] - stats_before['ui']}; "
                    f"vertex moved: {record['dragged']}")
                page.wait_for_timeout(300)
            try:  # the drags' autosave lands before the save measurements start
                wait_js(page, "!annotator.autosaver.dirty && !annotator.autosaver.running", 15)
            except Exception:  # noqa: BLE001 - reported; the revision count is taken after the browser is gone
                log(f"the page did not save its last edit: {page.locator('#save-state').inner_text()!r}")
            out["save_state"] = page.locator("#save-state").inner_text()
            out["drag_errors"] = errors
        finally:
            out["cpu_end"] = cpu_snapshot()  # while Chromium's processes still exist: their CPU time counts
            browser.close()
    return out


# --------------------------------------------------------------------------------------------------
# Save round trips (orchestrator): 20 annotators, keep-alive connections in threads
# --------------------------------------------------------------------------------------------------

class Annotator:
    def __init__(self, port: int, token: str, images: list[dict], seed: int):
        self.port, self.token = port, token
        self.images = images
        self.rng = random.Random(seed)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cursor = 0
        self.reconnects = 0
        self.fresh_connections = 0
        self.last_used = 0.0

    def save(self) -> tuple[int, float]:
        """PUT the next own image's geometry with one vertex moved by a pixel or two."""
        item = self.images[self.cursor % len(self.images)]
        self.cursor += 1
        geometry = item["geometry"]
        nail = self.rng.randrange(len(geometry["nails"]))
        polygon = geometry["nails"][nail]["polygon"]
        v = self.rng.randrange(len(polygon))
        old = polygon[v]
        polygon[v] = [round(old[0] + self.rng.uniform(-1.5, 1.5), 2), round(old[1] + self.rng.uniform(-1.5, 1.5), 2)]
        body = json.dumps({"version": item["version"], "status": "draft", "geometry": geometry}).encode()
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json", "Content-Type": "application/json"}
        if self.conn.sock is not None and time.monotonic() - self.last_used > KEEPALIVE_S:
            # gunicorn closes idle keep-alive connections after 2 s; like a browser, start a new one
            self.conn.close()
            self.fresh_connections += 1
        t0 = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.conn.request("PUT", f"/api/images/{item['id']}/annotation/", body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                elapsed = time.perf_counter() - t0
                if response.will_close:
                    self.conn.close()
                break
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()  # a keep-alive connection the server closed while idle: once more on a new one
                self.reconnects += 1
                if attempt == 2:
                    polygon[v] = old
                    return 0, time.perf_counter() - t0
        self.last_used = time.monotonic()
        if response.status == 200:
            item["version"] = json.loads(data)["version"]
        else:
            polygon[v] = old
            if response.status == 409:
                item["version"] = json.loads(data)["current"]["version"]
        return response.status, elapsed

    def close(self):
        self.conn.close()


def save_phase(annotators: list[Annotator], *, think: bool, seconds: float | None, per_client: int | None, warmup: int,
               server_pid: int, seed: int) -> dict:
    """Every annotator in its own thread: ``warmup`` unrecorded saves, a barrier, then saves until the
    time is up (think time) or ``per_client`` saves (no think time)."""
    barrier = threading.Barrier(len(annotators) + 1)
    records: list[list[tuple[int, float]]] = [[] for _ in annotators]
    failures: list[str] = []
    deadline = {"t": 0.0}

    def body(i: int, annotator: Annotator):
        rng = random.Random(seed * 100 + i)
        try:
            for _ in range(warmup):
                annotator.save()
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}")
        barrier.wait()
        try:
            if think:  # annotators start spread over one interval, as they would in a real team
                time.sleep(rng.uniform(0, AUTOSAVE_S))
            n = 0
            while (think and time.perf_counter() < deadline["t"]) or (not think and n < per_client):
                records[i].append(annotator.save())
                n += 1
                if think:
                    time.sleep(AUTOSAVE_S * rng.uniform(0.8, 1.2))
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=body, args=(i, a), daemon=True) for i, a in enumerate(annotators)]
    for thread in threads:
        thread.start()
    if think:  # set before the barrier releases the threads
        deadline["t"] = time.perf_counter() + seconds
    barrier.wait()
    cpu_before = cpu_snapshot()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cpu = cpu_usage(cpu_before, cpu_snapshot(), wall, server_pid)
    flat = [r for rs in records for r in rs]
    statuses: dict[str, int] = {}
    for status, _ in flat:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    result = summary([elapsed * 1000 for _, elapsed in flat])
    result.update(think=think, clients=len(annotators), wall_s=wall, throughput=len(flat) / wall if wall else 0.0,
                  statuses=statuses, ok=statuses.get("200", 0), failures=failures[:5], cpu=cpu,
                  errors=sum(v for k, v in statuses.items() if k != "200"))
    if cpu and flat:
        result["cpu_ms_per_save"] = {k: v * wall * 1000 / len(flat) for k, v in cpu["cores"].items()}
    return result


# --------------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------------


def db_name(url: str) -> str:
    name = urllib.parse.urlsplit(url).path.lstrip("/")
    if "bench" not in name or not name.replace("_", "").isalnum():
        sys.exit(f"refusing to drop and re-create database {name!r}: a scratch database's name must contain 'bench'")
    return name


def maintenance(url: str, sql: str) -> None:
    import psycopg

    admin_url = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql)


def query_one(url: str, sql: str):
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchone()[0]


def child_env(database_url: str, var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CELERY_", "DJANGO_", "NAILSET_")) and k not in ("MEDIA_ROOT", "STATIC_ROOT", "DATABASE_URL")}
    env.update(DATABASE_URL=database_url, NAILSET_VAR_DIR=str(var_dir), DJANGO_DEBUG="0", DJANGO_SETTINGS_MODULE="annotation_site.settings",
               LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""))
    return env


def start_gunicorn(args, env: dict, port: int, log_path: Path) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("gunicorn")), "annotation_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.workers), "--threads", str(args.threads), "--worker-class", "gthread",
               "--log-level", "warning", "--timeout", "120"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    process.command = command  # type: ignore[attr-defined]
    return process


def stop_gunicorn(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the master and its workers only
        process.wait(timeout=10)


def wait_until_up(port: int, process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/accounts/login/")
            if conn.getresponse().status == 200:
                conn.close()
                return time.perf_counter() - started
            conn.close()
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def versions(database_url: str) -> dict:
    out = {}
    try:
        import django
        import gunicorn
        import rest_framework

        out.update(django=django.get_version(), drf=rest_framework.VERSION, gunicorn=gunicorn.__version__)
        from importlib.metadata import version

        out["playwright"] = version("playwright")
    except Exception:  # noqa: BLE001 - informational
        pass
    try:
        out["postgresql"] = query_one(database_url, "SHOW server_version")
    except Exception:  # noqa: BLE001
        pass
    out["commit"] = git_commit(("labeling", "annotation_site", "bench/annotation_tool.py"),
                               "labeling/, annotation_site/ or this script", untracked=False)
    return out


def orchestrate(args) -> int:
    started = time.perf_counter()
    name = db_name(args.database_url)
    var_dir = Path(tempfile.mkdtemp(prefix="nailset-bench-tool-"))
    env = child_env(args.database_url, var_dir)
    me = str(Path(__file__).resolve())
    gunicorn = None
    annotators: list[Annotator] = []
    report: dict = {"machine": machine_info(), "args": vars(args), "load_start": loadavg(),
                    "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    waits = {"budget": args.wait_total}

    def quiet(label: str) -> dict:
        seen = wait_for_quiet(max(0.0, min(args.wait_idle, waits["budget"])), args.quiet_threshold)
        waits["budget"] -= seen["waited_s"]
        log(f"{label}: {seen['busy_cores']:.2f} cores busy before it (waited {seen['waited_s']:.0f} s), load average {seen['loadavg'][0]:.2f}")
        return seen

    try:
        log(f"database {name}: drop and create; var dir {var_dir}")
        maintenance(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        maintenance(args.database_url, f'CREATE DATABASE "{name}"')
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
        seed_path = var_dir / "seed.json"
        subprocess.run([sys.executable, me, "--phase", "seed", "--out", str(seed_path), "--seed", str(args.seed),
                        "--images-per-annotator", str(args.images_per_annotator)], cwd=ROOT, env=env, check=True)
        seed = json.loads(seed_path.read_text())
        report["seed"] = {k: v for k, v in seed.items() if k not in ("tokens", "plan")}
        report["versions"] = versions(args.database_url)

        port = free_port()
        gunicorn_log = var_dir / "gunicorn.log"
        gunicorn = start_gunicorn(args, env, port, gunicorn_log)
        log(f"gunicorn answers on port {port} after {wait_until_up(port, gunicorn, gunicorn_log):.1f} s")
        base_url = f"http://127.0.0.1:{port}"

        # Browser.
        report["browser_quiet"] = quiet("browser")
        cpu_before, t0 = cpu_snapshot(), time.perf_counter()
        report["browser"] = browser_measurements(args, base_url, seed["photo_id"], seed["photo_bytes"])
        cpu_end = report["browser"].pop("cpu_end")
        report["browser_cpu"] = cpu_usage(cpu_before, cpu_end, time.perf_counter() - t0, gunicorn.pid)
        report["browser_load"] = loadavg()

        # Saves.
        time.sleep(1.0)  # a save the page sent while closing has landed
        revisions_before = query_one(args.database_url, "SELECT COUNT(*) FROM labeling_annotationrevision")
        annotators = [Annotator(port, seed["tokens"][user], images, args.seed + i)
                      for i, (user, images) in enumerate(sorted(seed["plan"].items()))]
        saves = []
        for think in (True, False):
            before = quiet(f"saves, {'think time' if think else 'no think time'}")
            result = save_phase(annotators, think=think, seconds=args.think_seconds if think else None,
                                per_client=math.ceil(args.requests / len(annotators)), warmup=1 if think else 3,
                                server_pid=gunicorn.pid, seed=args.seed)
            result["quiet"] = before
            result["loadavg_after"] = loadavg()
            saves.append(result)
            cores = (result["cpu"] or {}).get("cores", {})
            log(f"saves ({'think' if think else 'no think'}): n={result['n']} p50 {result['p50']:.1f} ms p95 {result['p95']:.1f} "
                f"p99 {result['p99']:.1f} max {result['max']:.1f}; {result['throughput']:.1f} saves/s; statuses {result['statuses']}; "
                f"other load {cores.get('other', float('nan')):.2f} cores")
        report["saves"] = saves
        revisions_after = query_one(args.database_url, "SELECT COUNT(*) FROM labeling_annotationrevision")
        warmups = len(annotators) * (1 + 3)
        ok_saves = sum(s["ok"] for s in saves)
        report["integrity"] = {"revisions_added": revisions_after - revisions_before, "saves_ok": ok_saves, "warmup_saves": warmups,
                               "reconnects": sum(a.reconnects for a in annotators),
                               "fresh_connections": sum(a.fresh_connections for a in annotators)}
        report["gunicorn_command"] = "gunicorn " + " ".join(shlex.quote(c) for c in gunicorn.command[2:]).replace(f"127.0.0.1:{port}", "127.0.0.1:PORT")
        publish_report(report, started, "bench/annotation_tool.py", sys.argv[1:], render, SECTION, args.json, args.no_docs)
        return 0
    finally:
        for annotator in annotators:
            annotator.close()
        stop_gunicorn(gunicorn)
        if args.keep_db:
            log(f"kept database {name} and {var_dir}")
        else:
            try:
                maintenance(args.database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                shutil.rmtree(var_dir, ignore_errors=True)
            log(f"dropped database {name}; total {time.perf_counter() - started:.0f} s")


# --------------------------------------------------------------------------------------------------
# The section
# --------------------------------------------------------------------------------------------------


def render(report: dict) -> str:
    m, v, a, seed = report["machine"], report["versions"], report["args"], report["seed"]
    browser = report["browser"]
    opens = [o for o in browser["opens"] if not o["warmup"]]
    fip = [o["first_image_paint"] for o in opens]
    photo_dl = [o["photo_response_end"] - o["photo_start"] for o in opens if o["photo_start"] is not None]
    html = [o["html_response_end"] for o in opens]
    dcl = [o["dom_content_loaded"] for o in opens]
    drags = browser["drags"]
    raf = [t for d in drags for t in d["raf"]]
    flush = [t for d in drags for t in d["flush"]]
    loaf = [x for d in drags for x in d["loaf"]]
    scene = sum(d["stats"]["scene"] - d["stats_before"]["scene"] for d in drags)
    ui = sum(d["stats"]["ui"] - d["stats_before"]["ui"] for d in drags)
    image_redraws = sum(d["stats"]["image"] - d["stats_before"]["image"] for d in drags)
    events = sum(d["events"] for d in drags)
    moved = sum(1 for d in drags if d["dragged"])
    think, nothink = report["saves"]
    integrity = report["integrity"]
    bc = report.get("browser_cpu") or {"cores": {}}

    def cores_text(cpu):
        if not cpu:
            return "-"
        c = cpu["cores"]
        return f"{c.get('gunicorn', 0):.2f} + {c.get('postgres', 0):.2f} + {c.get('this script', 0):.2f} + **{c.get('other', 0):.2f}**"

    lines = [SECTION_START, "## Annotation tool: first paint, drag frame time, save round trip (`bench/annotation_tool.py`)", "",
             f"Measured {report['date']} in {report['total_s']:.0f} s with `{report['command']}` (commit {v.get('commit')}); "
             "every figure below comes from that run.", ""]
    lines += [f"**Page open to first paint of the 12 MP photo**: {statistics.median(fip):,.0f} ms median of {len(fip)} cold opens "
              f"(min {min(fip):,.0f}, max {max(fip):,.0f}; the photo's download alone {statistics.median(photo_dl):,.0f} ms).",
              f"**Frame time while dragging a vertex with 20 nails on screen**: median {percentile(raf, 50):.1f} ms, p95 "
              f"{percentile(raf, 95):.1f} ms ({len(raf)} frames over {len(drags)} drags; the page's own redraw per frame "
              f"median {percentile(flush, 50):.2f} ms, p95 {percentile(flush, 95):.2f} ms; the scene layer redrawn {scene} times, the "
              f"photo {image_redraws} times, the interaction layer {ui} times).",
              f"**Save round trip, 20 concurrent annotators**: with the {AUTOSAVE_S:g} s autosave think time p50 {think['p50']:.1f} ms / "
              f"p99 {think['p99']:.1f} ms ({think['n']} saves, {think['throughput']:.1f}/s); with no think time p50 {nothink['p50']:.1f} ms / "
              f"p99 {nothink['p99']:.1f} ms ({nothink['n']} saves, {nothink['throughput']:.1f}/s). "
              f"{'Nothing lost' if integrity['revisions_added'] == integrity['saves_ok'] + integrity['warmup_saves'] else '**Revision count mismatch**'}"
              f": {integrity['revisions_added']} revisions written for {integrity['saves_ok']} measured + {integrity['warmup_saves']} warm-up saves"
              f" (errors: {think['errors'] + nothink['errors']}).", ""]
    lines += ["### Set-up", "",
              f"- **Machine**: {m['nproc']} CPUs ({m['cpu']}), {fmt(m['mem_gib'])} GiB RAM, Linux {m['kernel']}; Chromium, gunicorn, "
              f"PostgreSQL and this script share it with other work: load average {report['load_start'][0]:.2f} at the start, "
              f"{report['load_end'][0]:.2f} at the end. Before each part the script waits up to {a['wait_idle']:.0f} s (at most "
              f"{a['wait_total']:.0f} s in all) for fewer than {a['quiet_threshold']} busy cores.",
              f"- **Software**: Python {m['python']}, Django {v.get('django')}, DRF {v.get('drf')}, gunicorn {v.get('gunicorn')}, "
              f"PostgreSQL {v.get('postgresql')} (default configuration), Playwright {v.get('playwright')} (Python) driving Debian's "
              f"Chromium {browser.get('chromium')} at `{CHROMIUM}`, headless, `{' '.join(CHROMIUM_ARGS)}` (no GPU: canvases are drawn "
              f"in software), viewport {VIEWPORT['width']}x{VIEWPORT['height']}, device pixel ratio {opens[0]['dpr'] if opens else '-'}.",
              f"- **Server**: `{report['gunicorn_command']}`, `DJANGO_DEBUG` off, on the scratch database `{db_name(a['database_url'])}` "
              "(dropped and re-created by the script, migrated, dropped at the end); static files by WhiteNoise.",
              f"- **Data**: one camera-like synthetic {PHOTO_W}x{PHOTO_H} photo stored through `labeling.intake.create_image` "
              f"(JPEG quality 95 as intake stores photos, {seed['photo_bytes'] / MB:.1f} MB) with 20 nails saved through "
              f"`save_annotation` (real outlines of `../shared/data/nails-cc0` scaled to ~1/8 of the image height, 5 x 4; "
              f"{seed['photo_vertices']} vertices in all; fingers, {seed['photo_landmarks']} with base/tip); {N_ANNOTATORS} annotators "
              f"with API tokens owning {a['images_per_annotator']} images each (4032x3024 rows pointing at that one stored file; a save "
              f"never reads the pixels) with 10 real outlines each ({seed['save_vertices_mean']:.0f} vertices per nail on average, "
              f"fingers and landmarks; a save body is {seed['save_body_bytes'] / 1000:.1f} kB).", ""]
    lines += ["### Page open to first paint of the 12 MP photo", "",
              f"{len(opens)} opens of `/annotate/<id>/`, each in a fresh browser context (empty HTTP cache, logged-in session "
              "cookie), after one unrecorded open. Times in ms from navigation start: *first image paint* is the page's own "
              "`performance.mark(\"nailset:first-image-paint\")` (= `annotator.stage.firstImagePaint`, set when the decoded photo is "
              "first drawn on its canvas, before the resolution pyramid exists); the others are the Navigation / Resource Timing "
              "entries of the HTML and of `/api/images/<id>/file/`.", "",
              "| | median | min | max |", "| --- | ---: | ---: | ---: |"]
    for label, values in (("HTML response end", html), ("DOMContentLoaded", dcl),
                          ("photo request start", [o["photo_start"] for o in opens if o["photo_start"] is not None]),
                          ("photo response end (downloaded)", [o["photo_response_end"] for o in opens if o["photo_response_end"] is not None]),
                          ("**first image paint**", fip)):
        if values:
            lines.append(f"| {label} | {statistics.median(values):,.0f} | {min(values):,.0f} | {max(values):,.0f} |")
    decode = [o["first_image_paint"] - o["photo_response_end"] for o in opens if o["photo_response_end"] is not None]
    lines += ["", f"Photo transferred: {(opens[0]['photo_bytes'] or 0) / MB:.1f} MB per open. The photo is requested by the page's "
              "JavaScript (`stage.loadImage`), so its download starts only once the module scripts have run (request start "
              f"{statistics.median([o['photo_start'] for o in opens if o['photo_start'] is not None]):,.0f} ms vs DOMContentLoaded "
              f"{statistics.median(dcl):,.0f} ms); between download and first paint ({statistics.median(decode):,.0f} ms median) the "
              "browser decodes the 12-megapixel JPEG (`img.decode()`) and draws it scaled into the canvas. CPU during the browser "
              f"part (cores: gunicorn + PostgreSQL + this script + **other**): {cores_text(bc)}, Chromium's processes "
              f"{bc['cores'].get('chromium', 0):.2f} (not in *other*); busy "
              f"before it {fmt(report['browser_quiet']['busy_cores'], 2)} cores, load average {report['browser_quiet']['loadavg'][0]:.2f}.", ""]
    lines += ["### Frame time while dragging a vertex (20 nails on screen)", "",
              f"Nail 1 selected (Tab), its first vertex dragged with the left button along a loop of radius 60 screen px, ending 4 px outwards of its start "
              f"({a['drag_steps']} mouse moves per drag, sent as fast as Playwright's CDP round trips allow: {events} pointer events "
              f"in {len(drags)} drags), the photo fitted to the viewport (scale {drags[0]['view_scale']:.3f}). *Frame "
              "interval* = the differences between successive `requestAnimationFrame` timestamps while the drag runs (what the "
              "user sees: 16.7 ms = 60 frames/s); *redraw* = the duration of each `stage.flush()` (the page's own JavaScript + canvas "
              "work in the frame, wrapped by the script); long animation frames from the Performance API "
              f"(`long-animation-frame`, {'supported' if drags and drags[0].get('loafSupported') else 'not supported by this Chromium'}).", "",
              "| | frames | median ms | p95 ms | p99 ms | max ms |", "| --- | ---: | ---: | ---: | ---: | ---: |",
              f"| frame interval (rAF) | {len(raf)} | {percentile(raf, 50):.1f} | {percentile(raf, 95):.1f} | {percentile(raf, 99):.1f} | {max(raf) if raf else float('nan'):.1f} |",
              f"| redraw (`stage.flush`) | {len(flush)} | {percentile(flush, 50):.2f} | {percentile(flush, 95):.2f} | {percentile(flush, 99):.2f} | {max(flush) if flush else float('nan'):.2f} |",
              "", f"Layers redrawn during the {len(drags)} drags: interaction layer {ui}, scene {scene} (per drag: "
              f"{', '.join(str(d['stats']['scene'] - d['stats_before']['scene']) for d in drags)}: when a drag starts, when it ends, and "
              f"when the press selects another vertex), photo {image_redraws}. Long animation frames (> 50 ms): {len(loaf)}"
              + (f" (longest {max(x['duration'] for x in loaf):.0f} ms)" if loaf else "") + f". The vertex moved in {moved} of {len(drags)} drags.", ""]
    lines += ["### Save round trip, 20 concurrent annotators (`PUT /api/images/<id>/annotation/`)", "",
              f"Each annotator saves its own images in turn (the full geometry with one vertex moved, the version it last got back, "
              f"status draft) over its own keep-alive connection. *Think time*: {AUTOSAVE_S:g} s +-20 % between a response and the "
              f"next save (the page's autosave interval), starts spread over one interval, for {a['think_seconds']:g} s; *no think time*: "
              f"back to back, {math.ceil(a['requests'] / N_ANNOTATORS)} saves each, after 3 warm-up saves each. Round trip = request "
              "sent to response read, client side. CPU columns are cores used on average during the phase: gunicorn + PostgreSQL + "
              "this script + **other processes** (from `/proc`).", "",
              "| variant | saves | saves/s | p50 ms | p95 ms | p99 ms | max ms | errors | 409 | CPU ms per save: gunicorn + PostgreSQL | "
              "cores: gunicorn + PostgreSQL + script + **other** | busy before (load avg) |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"]
    for s in report["saves"]:
        per = s.get("cpu_ms_per_save") or {}
        lines.append(f"| {'think time 2.5 s' if s['think'] else 'no think time'} | {s['n']:,} | {s['throughput']:.1f} | {s['p50']:.1f} | "
                     f"{s['p95']:.1f} | {s['p99']:.1f} | {s['max']:.1f} | {s['errors']} | {s['statuses'].get('409', 0)} | "
                     f"{fmt(per.get('gunicorn'))} + {fmt(per.get('postgres'))} | {cores_text(s['cpu'])} | "
                     f"{fmt(s['quiet']['busy_cores'], 2)} ({s['quiet']['loadavg'][0]:.2f}) |")
    lines += ["", f"Integrity: the database gained {integrity['revisions_added']} annotation revisions for {integrity['saves_ok']} measured "
              f"+ {integrity['warmup_saves']} warm-up saves answered 200"
              + (f"; {integrity['reconnects']} requests were retried on a new connection (the server had closed the old one)" if integrity["reconnects"] else "")
              + f". gunicorn closes a keep-alive connection after 2 s idle, less than the think time: {integrity['fresh_connections']} "
              "saves opened a new connection first (as a browser does), and their round trip includes that TCP connect.",
              "", SECTION_END]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/nailset_bench_tool",
                        help="scratch database, dropped and re-created (its name must contain 'bench')")
    parser.add_argument("--images-per-annotator", type=int, default=10, help="images each of the 20 annotators owns (default 10)")
    parser.add_argument("--opens", type=int, default=7, help="cold page opens measured (default 7; plus one warm-up)")
    parser.add_argument("--drags", type=int, default=5, help="vertex drags measured (default 5)")
    parser.add_argument("--drag-steps", type=int, default=120, help="mouse moves per drag (default 120)")
    parser.add_argument("--think-seconds", type=float, default=75.0, help="length of the think-time phase (default 75)")
    parser.add_argument("--requests", type=int, default=1200, help="saves in the no-think-time phase (default 1200)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (default 4, as bench/api_latency.py)")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker (default 4)")
    parser.add_argument("--wait-idle", type=float, default=20.0, metavar="SECONDS", help="wait up to this long before each part for a quieter machine (default 20)")
    parser.add_argument("--wait-total", type=float, default=45.0, metavar="SECONDS", help="at most this long waiting in all (default 45)")
    parser.add_argument("--quiet-threshold", type=float, default=0.5, metavar="CORES", help="'quiet' means fewer busy cores than this (default 0.5)")
    parser.add_argument("--quick", action="store_true", help="2 opens, 2 drags, 10 s of think time, 200 saves, no waiting")
    parser.add_argument("--keep-db", action="store_true", help="keep the scratch database and var dir")
    parser.add_argument("--no-docs", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--json", help="also write the full report as JSON to this file")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--phase", choices=["seed"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.opens, args.drags, args.think_seconds, args.requests, args.wait_idle, args.wait_total = 2, 2, 10.0, 200, 0.0, 0.0
    return args


def main() -> int:
    if sys.prefix == sys.base_prefix and VENV_PYTHON.exists():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])  # run with the project's virtual environment
    args = parse_args()
    if args.phase == "seed":
        phase_seed(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
