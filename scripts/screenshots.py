"""Screenshots of the product for the README, from synthetic data, in a throwaway var dir.

    .venv/bin/python scripts/screenshots.py [--out docs/images] [--epochs 6] [--no-train] [--keep-var]

What it does, end to end (nothing of ../shared is read: every photo is drawn here):
1. a new temporary NAILSET_VAR_DIR (embedded mode: SQLite + filesystem broker), migrated;
2. users for each role (admin, annotator, reviewer) and participants who gave consent;
3. synthetic hand photos (skin-toned hands with shading and polished nails, drawn with NumPy/OpenCV/Pillow),
   brought in through intake (``create_image``; a participant's through ``store_upload`` + the ingest job) and
   labelled through the real code paths: submitted by the annotator and accepted or rejected by the reviewer,
   submitted and waiting for review, an annotator's draft, labels imported polygon-only (incomplete), unlabelled;
4. a snapshot and a COCO export (the ``snapshot`` / ``export_snapshot`` jobs), a tiny training run (the ``train``
   job, 2-4 min on 2 CPU cores) whose model is promoted, so the training, models and try-on pages have content;
5. gunicorn on a free local port, Chromium (Debian's /usr/bin/chromium, through Playwright) logging in at
   /accounts/login/, PNG screenshots at 1440x900 (the participant page at 390x844), shrunk to palette PNGs;
6. stops gunicorn and removes the var dir.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}
PHOTO_SIZE = (800, 600)
# The tiny preset at 256 px (its 64 px default leaves these nails a pixel wide): a few minutes on 2 CPU cores.
TRAIN_SETTINGS = {"steps_per_epoch": 20, "val_size": 256, "augment": {"base_long_side": 256, "crop_size": 128}}
MAX_PNG_BYTES = 400_000

# --- synthetic hands ----------------------------------------------------------------------------------------

SKIN_TONES = [(238, 196, 170), (226, 178, 146), (204, 144, 112), (170, 112, 82), (128, 82, 58), (234, 188, 158)]
POLISH = [(200, 16, 46), (214, 51, 108), (232, 92, 140), (168, 18, 58), (246, 112, 156), (150, 22, 52)]
BACKGROUNDS = [(214, 218, 222), (226, 220, 208), (196, 210, 214), (232, 228, 224), (204, 206, 196)]

# Dorsal view of a LEFT hand, fingers up: thumb on the right. (finger 1..5 = thumb..little), in palm units:
# base point (x, y), direction in degrees from "up" (clockwise), length, width.
LEFT_HAND_FINGERS = {
    1: ((0.40, 0.08), 50.0, 0.80, 0.27),
    2: ((0.32, -0.50), 7.0, 0.95, 0.225),
    3: ((0.10, -0.54), 1.0, 1.04, 0.235),
    4: ((-0.13, -0.51), -6.0, 0.97, 0.22),
    5: ((-0.35, -0.42), -15.0, 0.78, 0.195),
}


@dataclass
class Hand:
    cx: float
    cy: float
    scale: float  # palm width in pixels
    angle: float  # degrees, clockwise tilt of the whole hand
    left: bool


def _rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    a = math.radians(degrees)
    c, s = math.cos(a), math.sin(a)
    return points @ np.array([[c, s], [-s, c]])


def _capsule(p0: np.ndarray, p1: np.ndarray, radius: float, n: int = 24) -> np.ndarray:
    """Outline of a finger: a rectangle from p0 to p1 with round ends."""
    direction = (p1 - p0) / np.linalg.norm(p1 - p0)
    normal = np.array([-direction[1], direction[0]])
    base_angle = math.atan2(normal[1], normal[0])
    tip_arc = [p1 + radius * np.array([math.cos(base_angle - t), math.sin(base_angle - t)]) for t in np.linspace(0, math.pi, n)]
    base_arc = [p0 + radius * np.array([math.cos(base_angle + math.pi - t), math.sin(base_angle + math.pi - t)])
                for t in np.linspace(0, math.pi, n)]
    return np.array(tip_arc + base_arc)


def _nail_outline(tip: np.ndarray, direction: np.ndarray, length: float, width: float, n: int = 10):
    """A nail: a rounded free edge at the finger tip, straight sides, a gently curved cuticle.
    Returns (polygon, base, tip) in pixels; base and tip lie on the nail's axis, inside it."""
    normal = np.array([-direction[1], direction[0]])
    half = width / 2
    points = []
    for t in np.linspace(0, math.pi, n):  # free edge: a half ellipse around the distal end
        u = length - half * 0.9 + half * 0.9 * math.sin(t)
        v = half * math.cos(t)
        points.append((u, v))
    for t in np.linspace(0, 1, n)[1:-1]:  # cuticle: a shallow arc bulging towards the finger's base
        v = -half + 2 * half * t
        u = 0.12 * length * (1 - (v / half) ** 2) * -1 + 0.12 * length
        points.append((u, v))
    local = np.array(points)
    start = tip - direction * (length + 0.02 * length)
    polygon = start + np.outer(local[:, 0], direction) + np.outer(local[:, 1], normal)
    base = start + direction * (0.22 * length)
    nail_tip = start + direction * (0.92 * length)
    return polygon, base, nail_tip


def hand_parts(hand: Hand):
    """Palm/forearm outline, finger capsules and nails (finger class, polygon, base, tip) in pixels."""
    s, centre = hand.scale, np.array([hand.cx, hand.cy])
    flip = 1.0 if hand.left else -1.0

    def place(points):
        points = np.asarray(points, dtype=float) * s
        points[..., 0] *= flip
        return _rotate(points, hand.angle) + centre

    palm = [(0.5 * math.copysign(abs(math.cos(t)) ** 0.6, math.cos(t)), 0.55 * math.copysign(abs(math.sin(t)) ** 0.7, math.sin(t)))
            for t in np.linspace(0, 2 * math.pi, 48, endpoint=False)]
    forearm = [(-0.42, 0.2), (0.40, 0.2), (0.36, 3.0), (-0.38, 3.0)]
    fingers, nails = [], []
    for number, ((bx, by), heading, length, width) in LEFT_HAND_FINGERS.items():
        heading = heading * flip + hand.angle
        direction = _rotate(np.array([[0.0, -1.0]]), heading)[0]
        base = place([[bx, by]])[0]
        tip = base + direction * length * s
        radius = width * s / 2
        fingers.append(_capsule(base, tip - direction * radius, radius))
        polygon, nail_base, nail_tip = _nail_outline(tip - direction * radius * 0.15, direction, 0.30 * length * s,
                                                     0.74 * width * s)
        finger = number if hand.left else number + 5
        nails.append((finger, polygon, nail_base, nail_tip))
    return place(palm), place(forearm), fingers, nails


def _shade(mask: np.ndarray, softness: float) -> np.ndarray:
    """0..1 roundness from the distance to the outline: dark edges, lit middle (a cylinder-ish look)."""
    distance = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    return np.sqrt(np.clip(distance / softness, 0, 1))


def draw_hands(hands: list[Hand], rng: np.random.Generator, size=PHOTO_SIZE):
    """A photo-like RGB picture of the hands on a plain background, and their nails' labels."""
    width, height = size
    k = 2  # supersampling
    W, H = width * k, height * k
    background = np.array(BACKGROUNDS[rng.integers(len(BACKGROUNDS))], dtype=np.float32)
    ramp = np.linspace(1.04, 0.90, H, dtype=np.float32)[:, None, None]
    side = np.linspace(0.97, 1.03, W, dtype=np.float32)[None, :, None]
    image = np.ones((H, W, 3), np.float32) * background * ramp * side
    skin = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], dtype=np.float32)
    polish = np.array(POLISH[rng.integers(len(POLISH))], dtype=np.float32)
    labels = []
    for hand in hands:
        palm, forearm, fingers, nails = hand_parts(hand)
        mask = np.zeros((H, W), np.uint8)
        for shape in [palm, forearm, *fingers]:
            cv2.fillPoly(mask, [np.round(shape * k).astype(np.int32)], 255, lineType=cv2.LINE_AA)
        mask = (mask > 127).astype(np.uint8)
        # soft shadow on the background
        shifted = np.zeros((H, W), np.float32)
        shifted[14 * k:, 10 * k:] = mask[:-14 * k, :-10 * k]
        shadow = cv2.GaussianBlur(shifted, (0, 0), 14 * k)
        image *= (1 - 0.28 * shadow)[..., None]
        finger_shade = np.zeros((H, W), np.float32)
        for shape in fingers:  # each finger its own cylinder, so touching fingers stay apart
            one = np.zeros((H, W), np.uint8)
            cv2.fillPoly(one, [np.round(shape * k).astype(np.int32)], 1)
            finger_shade = np.maximum(finger_shade, _shade(one, 0.11 * hand.scale * k))
        body = np.zeros((H, W), np.uint8)
        for shape in (palm, forearm):
            cv2.fillPoly(body, [np.round(shape * k).astype(np.int32)], 1)
        shade = np.maximum(finger_shade, _shade(body, 0.35 * hand.scale * k))
        light = np.linspace(1.05, 0.92, W, dtype=np.float32)[None, :] * (0.70 + 0.30 * shade)
        tone = skin[None, None, :] * light[..., None] * rng.uniform(0.97, 1.03)
        edge = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 1.2 * k)
        image = image * (1 - edge[..., None]) + tone * edge[..., None]
        for finger, polygon, base, tip in nails:
            nail = np.zeros((H, W), np.uint8)
            cv2.fillPoly(nail, [np.round(polygon * k).astype(np.int32)], 1, lineType=cv2.LINE_8)
            # cuticle: a slightly darker rim of skin around the nail
            rim = cv2.GaussianBlur(cv2.dilate(nail, np.ones((5 * k, 5 * k), np.uint8)).astype(np.float32), (0, 0), 2 * k)
            image *= (1 - 0.18 * rim * (1 - nail))[..., None]
            round_ = _shade(nail, 0.35 * np.linalg.norm(tip - base) * k)
            colour = polish[None, None, :] * (0.62 + 0.45 * round_[..., None])
            # specular streak along the nail, off-centre
            direction = (tip - base) / np.linalg.norm(tip - base)
            normal = np.array([-direction[1], direction[0]])
            nail_half = np.linalg.norm(polygon - polygon.mean(0), axis=1).min()
            a = (base + 0.25 * (tip - base) + normal * nail_half * 0.35) * k
            b = (base + 0.85 * (tip - base) + normal * nail_half * 0.35) * k
            streak = np.zeros((H, W), np.uint8)
            cv2.line(streak, tuple(int(v) for v in a), tuple(int(v) for v in b), 1, max(2, int(nail_half * 0.35 * k)), cv2.LINE_AA)
            streak = cv2.GaussianBlur(streak.astype(np.float32), (0, 0), 2.0 * k) * nail
            colour = colour + (255 - colour) * (0.65 * streak[..., None])
            soft = cv2.GaussianBlur(nail.astype(np.float32), (0, 0), 0.8 * k)[..., None]
            image = image * (1 - soft) + colour * soft
            labels.append({"finger": finger, "polygon": polygon, "base": base, "tip": tip})
    image = cv2.resize(np.clip(image, 0, 255), (width, height), interpolation=cv2.INTER_AREA)
    image += rng.normal(0, 2.2, image.shape).astype(np.float32)  # sensor noise
    picture = PILImage.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return picture, labels


def random_scene(rng: np.random.Generator, size=PHOTO_SIZE) -> list[Hand]:
    width, height = size
    if rng.random() < 0.4:  # both hands
        s = rng.uniform(105, 125)
        return [Hand(width * 0.28 + rng.uniform(-15, 15), height * 0.66 + rng.uniform(-15, 15), s, rng.uniform(-14, -4), left=False),
                Hand(width * 0.72 + rng.uniform(-15, 15), height * 0.66 + rng.uniform(-15, 15), s, rng.uniform(4, 14), left=True)]
    s = rng.uniform(150, 185)
    return [Hand(width * rng.uniform(0.42, 0.58), height * rng.uniform(0.64, 0.72), s, rng.uniform(-18, 18), left=bool(rng.random() < 0.5))]


def geometry_of(labels, *, complete: bool = True, drop: int = 0) -> dict:
    nails = []
    for label in labels[: len(labels) - drop]:
        nail = {"polygon": [[round(float(x), 1), round(float(y), 1)] for x, y in label["polygon"]],
                "finger": label["finger"] if complete else None}
        if complete:
            nail["base"] = [round(float(v), 1) for v in label["base"]]
            nail["tip"] = [round(float(v), 1) for v in label["tip"]]
        nails.append(nail)
    return {"nails": nails, "ignore": []}


def jpeg(picture: PILImage.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


# --- the platform's data --------------------------------------------------------------------------------------

@dataclass
class Scene:
    passwords: dict
    upload_path: str
    tool_image: int
    review_image: int
    run_id: int | None
    model_name: str | None
    tryon_photo: Path


def build_data(args, var_dir: Path) -> Scene:
    from django.contrib.auth.models import Group, User
    from django.core.management import call_command

    from jobs.runner import enqueue_job, execute_job
    from labeling.annotations import import_annotation, review_annotation, save_annotation
    from labeling.intake import create_image, store_upload
    from labeling.models import Annotation, Participant
    from labeling.participants import record_consent
    from django.conf import settings

    call_command("migrate", "--noinput", verbosity=0)
    passwords, users = {}, {}
    for name in ("admin", "annotator", "reviewer"):
        passwords[name] = secrets.token_urlsafe(12)
        user = User.objects.create_user(name, password=passwords[name], is_staff=name == "admin", is_superuser=name == "admin")
        user.groups.add(Group.objects.get_or_create(name=name)[0])
        users[name] = user
    admin, annotator, reviewer = users["admin"], users["annotator"], users["reviewer"]

    rng = np.random.default_rng(args.seed)
    participants = []
    for number in range(1, 9):
        participant = Participant.objects.create(code=f"P{number:03d}", notes="synthetic hands")
        participants.append(record_consent(participant, settings.NAILSET_CONSENT_VERSION))

    # Status plan per image: most accepted (two rounds of review), some waiting, one rejected, a draft,
    # polygon-only imports, and untouched ones for the queue.
    plan = (["accepted"] * 22 + ["submitted"] * 4 + ["rejected"] + ["draft"] + ["imported"] * 3 + ["unlabeled"] * 5)
    tool_image = review_image = None
    for index, status in enumerate(plan):
        participant = participants[index % len(participants)]
        hands = random_scene(rng)
        if status in ("draft", "submitted") and (tool_image is None or review_image is None):
            s = 118.0  # the tool and the review page show both hands
            hands = [Hand(235, 400, s, -9, left=False), Hand(565, 405, s, 8, left=True)]
        picture, labels = draw_hands(hands, rng)
        image, _ = create_image(participant, picture, "JPEG")
        if status in ("accepted", "submitted", "rejected"):
            save_annotation(image, annotator, geometry=geometry_of(labels, drop=1), version=0)
            save_annotation(image, annotator, geometry=geometry_of(labels), version=1, status="submitted")
            if status == "accepted":
                review_annotation(image, reviewer, decision="accept")
            elif status == "rejected":
                review_annotation(image, reviewer, decision="reject",
                                  comment="The left ring finger's nail runs past the tip; please redraw its free edge.")
            elif review_image is None:
                review_image = image.pk
        elif status == "draft":
            save_annotation(image, annotator, geometry=geometry_of(labels, drop=3), version=0)
            tool_image = image.pk
        elif status == "imported":
            import_annotation(image, geometry_of(labels, complete=False), status="accepted",
                              note="imported from coco: polygons only")
    Annotation.objects.filter(image_id=tool_image).update(assignee=annotator)

    # A participant who sent photos from their phone: stored and ingested through intake and its job.
    phone = Participant.objects.create(code="P009", notes="uploads from a phone")
    phone = record_consent(phone, settings.NAILSET_CONSENT_VERSION)
    for number in range(3):
        picture, _ = draw_hands(random_scene(rng), rng)
        stored = store_upload(phone, io.BytesIO(jpeg(picture)), f"IMG_20{number + 41}.jpg")
        job, _ = enqueue_job("ingest_upload", {"upload_id": stored.upload.pk}, send=False)
        execute_job(job.pk)

    quiet = io.StringIO()
    call_command("snapshot", "nails-v1", stdout=quiet)
    call_command("export_snapshot", "nails-v1", "--format", "coco", stdout=quiet)
    run_id = model_name = None
    if args.epochs > 0:
        started = time.monotonic()
        print(f"training a tiny model for {args.epochs} epochs on the CPU ...", flush=True)
        call_command("train", "--snapshot", "nails-v1", "--preset", "tiny", "--epochs", str(args.epochs),
                     "--set", json.dumps(TRAIN_SETTINGS), stdout=quiet)
        from prelabel.promotion import promote
        from training.models import ModelVersion, TrainingRun

        run = TrainingRun.objects.order_by("-pk").first()
        version = ModelVersion.objects.filter(run=run).first()
        run_id = run.pk
        if version:
            promote(version, admin)
            model_name = version.name
        print(f"  trained in {time.monotonic() - started:.0f} s", flush=True)

    picture, _ = draw_hands([Hand(400, 420, 170, -6, left=True)], np.random.default_rng(args.seed + 7))
    tryon_photo = var_dir / "tryon-hand.jpg"
    picture.save(tryon_photo, quality=92)
    return Scene(passwords, phone.upload_path, tool_image, review_image, run_id, model_name, tryon_photo)


# --- the site and the browser ---------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_site(port: int, env: dict, log: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    process = subprocess.Popen([str(gunicorn), "annotation_site.wsgi:application", "--bind", f"127.0.0.1:{port}",
                                "--workers", "2", "--threads", "4"], cwd=ROOT, env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            time.sleep(0.3)
    stop(process)
    raise RuntimeError(f"the site did not answer within 60 s; see {log}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def shrink_png(path: Path) -> int:
    """Re-save as an optimised palette PNG (256 colours); returns the size in bytes."""
    picture = PILImage.open(path).convert("RGB")
    for colours in (256, 128, 64):
        quantized = picture.quantize(colors=colours, method=PILImage.Quantize.MEDIANCUT, dither=PILImage.Dither.NONE)
        quantized.save(path, "PNG", optimize=True)
        if path.stat().st_size <= MAX_PNG_BYTES:
            break
    return path.stat().st_size


def take_screenshots(scene: Scene, base: str, out: Path) -> list[Path]:
    from playwright.sync_api import expect, sync_playwright

    saved = []

    def shot(page, name: str, full_page: bool = False):
        path = out / f"{name}.png"
        page.screenshot(path=str(path), type="png", full_page=full_page)
        size = shrink_png(path)
        saved.append(path)
        print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  {size // 1024} KB", flush=True)

    def logged_in(browser, username: str):
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(f"{base}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", scene.passwords[username])
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/")
        return context, page

    def settle(page):
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(400)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context, page = logged_in(browser, "admin")
            settle(page)
            shot(page, "home")
            page.goto(f"{base}/dataset/")
            settle(page)
            shot(page, "dataset")
            page.goto(f"{base}/training/")
            settle(page)
            shot(page, "training")
            if scene.run_id:
                page.goto(f"{base}/training/runs/{scene.run_id}/")
                page.wait_for_function("() => document.querySelectorAll('#loss-chart circle').length >= 1", timeout=30_000)
                settle(page)
                shot(page, "training-run")
            page.goto(f"{base}/models/")
            settle(page)
            shot(page, "models")
            page.goto(f"{base}/jobs/")
            settle(page)
            shot(page, "jobs")
            page.goto(f"{base}/tryon/")
            settle(page)
            if scene.model_name:
                page.set_input_files("#photo", str(scene.tryon_photo))
                page.wait_for_selector("#render:not([disabled])", timeout=30_000)
                page.click("#render")
                expect(page.locator("#after-figure")).to_be_visible(timeout=60_000)
                settle(page)
            shot(page, "tryon", full_page=True)
            context.close()

            context, page = logged_in(browser, "annotator")
            page.goto(f"{base}/annotate/")
            settle(page)
            shot(page, "annotation-queue")
            page.goto(f"{base}/annotate/{scene.tool_image}/")
            page.wait_for_selector("#nails .nail-row")
            settle(page)
            page.locator("#nails .nail-row").nth(3).click()
            page.get_by_role("button", name="Fit", exact=True).click()  # the whole photo, the nail still selected
            page.wait_for_timeout(400)
            shot(page, "annotation-tool")
            context.close()

            context, page = logged_in(browser, "reviewer")
            page.goto(f"{base}/review/{scene.review_image}/")
            settle(page)
            shot(page, "review")
            context.close()

            context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
            page = context.new_page()
            page.goto(f"{base}{scene.upload_path}")
            settle(page)
            shot(page, "participant-phone")
            # A file that is not a photo, whatever its name says: refused with the reason, nothing kept.
            page.set_input_files("#files", files=[{"name": "holiday.jpg", "mimeType": "image/jpeg",
                                                   "buffer": b"%PDF-1.4 this is a document, not a photo\n" * 4}])
            page.wait_for_selector("#queue li", timeout=30_000)
            page.wait_for_timeout(1500)
            page.locator("#queue").scroll_into_view_if_needed()
            shot(page, "participant-phone-refused")
            context.close()
        finally:
            browser.close()
    return saved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Needs Debian's chromium at /usr/bin/chromium; reads nothing from ../shared.")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"), help="folder for the PNGs (default: docs/images)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs of the tiny training run; 0 skips training (default 6)")
    parser.add_argument("--seed", type=int, default=14, help="seed of the synthetic photos (default 14)")
    parser.add_argument("--port", type=int, default=0, help="local port for the site (default: a free one)")
    parser.add_argument("--keep-var", action="store_true", help="keep the temporary var dir (its path is printed)")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        parser.error(f"{CHROMIUM} is missing: install Debian's chromium package (never `playwright install`)")

    var_dir = Path(tempfile.mkdtemp(prefix="nailset-screenshots-"))
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "MEDIA_ROOT", "STATIC_ROOT",
                 "NAILSET_IMPORT_DIR", "NAILSET_EXPORT_DIR"):
        os.environ.pop(name, None)  # embedded mode inside the throwaway var dir, whatever the shell says
    os.environ.update(NAILSET_VAR_DIR=str(var_dir), DJANGO_SETTINGS_MODULE="annotation_site.settings",
                      DJANGO_ALLOW_ASYNC_UNSAFE="true")
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    site = None
    try:
        import django

        django.setup()
        print(f"building synthetic data in {var_dir} ...", flush=True)
        scene = build_data(args, var_dir)
        port = args.port or free_port()
        site = start_site(port, dict(os.environ), var_dir / "gunicorn.log")
        print(f"site on http://127.0.0.1:{port}/; screenshots into {out}", flush=True)
        saved = take_screenshots(scene, f"http://127.0.0.1:{port}", out)
        total = sum(p.stat().st_size for p in saved)
        print(f"{len(saved)} screenshots, {total / 1e6:.2f} MB in all", flush=True)
    finally:
        if site is not None:
            stop(site)
        if args.keep_var:
            print(f"kept {var_dir}")
        else:
            shutil.rmtree(var_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
