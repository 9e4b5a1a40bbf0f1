"""The try-on page's JavaScript post-processing (tryon/static/tryon/postprocess.js) against ml/postprocess.py
on the same model outputs: synthetic frames with known nails (several angles and fingers, a nail split by a
highlight, touching nails of two fingers, a flickering class, a tiny blob, speckle), with classes and field,
binary with a field, binary without, and an integer class map. Same nails (masks), same fingers, angles
within 2 degrees, base and tip within 2.5 px, polygons within 2.5 px. Without a field and with the photo,
both orient the nails from it (orient_from_image / orientFromImage): the same tip end, confidences within
0.05. Run in Node (tests/js/tryon_cli.mjs)."""
from __future__ import annotations

import base64
import json
import math
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from dataset.raster import rasterize
from ml.data import simulated_prediction, synthetic_hand
from ml.postprocess import config_dict, postprocess, to_dicts

ROOT = Path(__file__).resolve().parent.parent
NODE = shutil.which("node")
H, W = 240, 320

# (centre x, centre y, half length, half width, angle of base -> tip in degrees, finger)
NAILS = [(40, 60, 22, 12, -90, 2), (100, 64, 20, 11, -60, 3), (165, 56, 18, 10, -120, 4), (235, 70, 20, 12, 10, 5),
         (50, 170, 24, 13, 45, 7), (135, 175, 22, 12, 170, 8), (195, 150, 16, 9, -150, 9)]
SPLIT = (250, 170, 30, 12, 100, 10)        # cut across by a highlight band predicted as background
TOUCHING = [(295, 180, 14, 9, 90, 1), (295, 204, 14, 9, 90, 6)]  # two fingers side by side along the axis
FLICKER = (285, 120, 18, 10, -75, 6)       # 25 % of its pixels vote for other classes: stays one nail


@pytest.fixture(autouse=True)
def node_is_installed():
    assert NODE, "Node.js is not installed (needed for the JS parity tests): run `make test`"


def b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def unb64(text: str, dtype) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype)


def run_js(command: str, cases, tmp_path: Path):
    path = tmp_path / f"{command}-cases.json"
    path.write_text(json.dumps(cases))
    result = subprocess.run([NODE, "tests/js/tryon_cli.mjs", command, str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def ellipse(cx, cy, a, b, angle, n=40):
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [[cx + a * math.cos(t) * c - b * math.sin(t) * s, cy + a * math.cos(t) * s + b * math.sin(t) * c]
            for t in np.linspace(0, 2 * math.pi, n, endpoint=False)]


def nail(spec):
    cx, cy, a, b, angle, finger = spec
    rad = math.radians(angle)
    u = (math.cos(rad), math.sin(rad))
    return {"polygon": ellipse(cx, cy, a, b, angle), "finger": finger,
            "base": [cx - a * u[0], cy - a * u[1]], "tip": [cx + a * u[0], cy + a * u[1]]}


def synthetic_frame(seed: int = 0):
    """(fg_prob, class_prob, field) of a frame with the nails above, as a trained model would give them:
    soft edges, class noise outside the nails, a noisy field, a few speckles."""
    specs = NAILS + [SPLIT, FLICKER] + TOUCHING
    fg, cls, field = simulated_prediction({"nails": [nail(s) for s in specs]}, W, H, seed,
                                          nail_prob=0.95, background_prob=0.03, field_noise=0.25)
    rng = np.random.default_rng(seed + 1)
    fg += rng.normal(0, 0.01, fg.shape).astype(np.float32)
    # the split nail: a band across its middle predicted as background (a highlight)
    cx, cy, _, _, angle, _ = SPLIT
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    along = (xx - cx) * math.cos(math.radians(angle)) + (yy - cy) * math.sin(math.radians(angle))
    split = rasterize({"nails": [nail(SPLIT)]}, W, H).foreground > 0
    fg[split & (np.abs(along) < 2.0)] = 0.2
    # the flickering nail: a quarter of its pixels vote for random other fingers
    flicker = rasterize({"nails": [nail(FLICKER)]}, W, H).foreground > 0
    noisy = flicker & (rng.random((H, W)) < 0.25)
    cls[noisy] = rng.dirichlet(np.ones(10), size=int(noisy.sum())).astype(np.float32)
    # a tiny blob (under min_area) and speckles of single pixels
    fg[200:204, 10:14] = 0.9
    ys, xs = rng.integers(0, H, 30), rng.integers(0, W, 30)
    fg[ys, xs] = np.maximum(fg[ys, xs], 0.8)
    return np.clip(fg, 0, 1), cls, field


def full_mask(d: dict, mask: np.ndarray, shape=(H, W)) -> np.ndarray:
    x, y, w, h = d["bbox"]
    out = np.zeros(shape, bool)
    out[y:y + h, x:x + w] = mask.reshape(h, w).astype(bool)
    return out


def angle_diff(a: float, b: float) -> float:
    return abs((a - b + 180) % 360 - 180)


def polygon_iou(p, q, shape=(H, W)) -> float:
    a = rasterize({"nails": [{"polygon": p}]}, shape[1], shape[0]).foreground > 0
    b = rasterize({"nails": [{"polygon": q}]}, shape[1], shape[0]).foreground > 0
    return (a & b).sum() / max(1, (a | b).sum())


def ring_distance(p, q) -> float:
    """Symmetric Hausdorff distance between two closed rings (points every 0.25 px along one, to the other's edges)."""
    def one_way(a, b):
        a, b = np.asarray(a, float), np.asarray(b, float)
        pts = np.concatenate([np.linspace(a[i], a[(i + 1) % len(a)], max(2, int(math.dist(a[i], a[(i + 1) % len(a)]) * 4)))
                              for i in range(len(a))])
        s0, s1 = b, np.roll(b, -1, axis=0)
        d = s1 - s0
        t = np.clip(((pts[:, None, :] - s0[None]) * d[None]).sum(-1) / np.maximum((d * d).sum(-1), 1e-12)[None], 0, 1)
        closest = s0[None] + t[..., None] * d[None]
        return float(np.linalg.norm(pts[:, None, :] - closest, axis=-1).min(axis=1).max())
    return max(one_way(p, q), one_way(q, p))


def compare(py_nails, js_nails, axial: bool = False, coarse: bool = False, noisy: bool = False, shape=(H, W)):
    """Every Python nail has its JS twin: same pixels, finger, provenance; angle, base, tip, polygon close
    (both outline the same pixels, simplified to the same 1 px tolerance: within 2.5 px of each other).
    ``noisy`` blobs may have one-pixel spurs, which Python's contour loses (its buffer(0) of the invalid
    ring) and the pixel outline keeps: there each polygon must outline the blob as well as the other."""
    assert len(js_nails) == len(py_nails), ([n["bbox"] for n in py_nails], [n["bbox"] for n in js_nails])
    for py in py_nails:
        mask = full_mask(py, py.pop("_mask"), shape)
        ious = []
        for js in js_nails:
            other = full_mask(js, unb64(js["mask"], np.uint8), shape)
            ious.append((mask & other).sum() / (mask | other).sum())
        k = int(np.argmax(ious))
        js = js_nails[k]
        assert ious[k] > 0.98, (py["bbox"], ious[k])
        assert js["finger"] == py["finger"] and js["direction_source"] == py["direction_source"]
        assert js["merged_from"] == py["merged_from"] and js["area"] == py["area"]
        diff = angle_diff(js["angle"], py["angle"])
        if axial:
            diff = min(diff, 180 - diff)
        assert diff <= 2.0, (py["bbox"], py["angle"], js["angle"])
        small = py["area"] < 150  # a few dozen pixels: where the 1 px simplification of two outlines differs most
        landmark_px = 3.0 if coarse or small or noisy else 2.5  # on outlines within 2.5 px of each other
        assert math.dist(js["base"], py["base"]) <= landmark_px and math.dist(js["tip"], py["tip"]) <= landmark_px, (py, js)
        assert abs(js["confidence"] - py["confidence"]) < 1e-3
        if py["class_confidence"] is not None:
            assert abs(js["class_confidence"] - py["class_confidence"]) < 1e-3
        assert len(js["polygon"]) <= (8 if coarse else 64)
        if coarse:  # 8 vertices: the two outlines start at different places
            assert polygon_iou(js["polygon"], py["polygon"], shape) > 0.85
        else:
            assert noisy or ring_distance(js["polygon"], py["polygon"]) <= 2.5, (py["polygon"], js["polygon"])
            if not small:  # each outlines the blob as well as the other (Python's against its own mask: > 0.9)
                fidelity = [(rasterize({"nails": [{"polygon": d["polygon"]}]}, shape[1], shape[0]).foreground > 0)
                            for d in (py, js)]
                py_iou, js_iou = ((f & mask).sum() / (f | mask).sum() for f in fidelity)
                assert js_iou > py_iou - 0.05 and polygon_iou(js["polygon"], py["polygon"], shape) > 0.85, (py_iou, js_iou)


def python_nails(*args, **kwargs):
    nails = postprocess(*args, **kwargs)
    dicts = to_dicts(nails)
    for d, n in zip(dicts, nails):
        d["_mask"] = n.mask.astype(np.uint8).reshape(-1)
    return dicts


def test_js_defaults_are_pythons(tmp_path):
    result = subprocess.run([NODE, "tests/js/tryon_cli.mjs", "defaults"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["postprocess"] == config_dict()


def test_js_postprocessing_finds_pythons_nails(tmp_path):
    fg, cls, field = synthetic_frame()
    class_map = np.where(fg > 0.5, cls.argmax(axis=2) + 1, 0).astype(np.uint8)
    cases = [
        ("classes + field", (fg, cls, field), {"classProb": b64(cls), "field": b64(field)}),
        ("binary + field", (fg, None, field), {"field": b64(field)}),
        ("binary, no field", (fg, None, None), {}),
        ("class map + field", (fg, class_map, field), {"classMap": b64(class_map), "field": b64(field)}),
        ("no merging, coarse polygons", (fg, cls, field), {"classProb": b64(cls), "field": b64(field),
                                                           "config": {"merge": False, "polygon_tolerance": 2.0,
                                                                      "max_vertices": 8}}),
    ]
    js = run_js("postprocess", [{"width": W, "height": H, "fgProb": b64(fg), **extra} for _, _, extra in cases],
                tmp_path)
    for (name, args, extra), js_nails in zip(cases, js):
        py = python_nails(*args, **extra.get("config", {}))
        try:
            compare(py, js_nails, axial=args[2] is None, coarse="config" in extra)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None

    # What the frame holds: 7 nails + the split one (merged) + the flickering one + two touching fingers.
    full = {tuple(n["bbox"]): n for n in js[0]}
    assert len(full) == len(NAILS) + 4
    merged = [n for n in js[0] if n["merged_from"] == 2]
    assert len(merged) == 1 and merged[0]["finger"] == SPLIT[5] and angle_diff(merged[0]["angle"], SPLIT[4]) < 2
    for spec in NAILS + [FLICKER] + TOUCHING:
        cx, cy, _, _, angle, finger = spec
        found = [n for n in js[0] if n["finger"] == finger and math.dist(np.mean(n["polygon"], axis=0), (cx, cy)) < 4]
        assert len(found) == 1, spec
        assert angle_diff(found[0]["angle"], angle) < 2 and found[0]["direction_source"] == "field"
    # binary: the two touching fingers are one blob; no fingers; the tiny blob and the speckles are dropped
    assert len(js[1]) == len(NAILS) + 3 and all(n["finger"] is None for n in js[1])
    assert all(n["direction_source"] == "shape" for n in js[2])
    assert len(js[4]) == len(NAILS) + 5 and all(len(n["polygon"]) <= 8 for n in js[4])


@pytest.mark.parametrize("seed", [1, 2])
def test_js_postprocessing_agrees_on_noisy_predictions(tmp_path, seed):
    """Blobby noise (as an untrained model gives): many shapes, splits by class, merges."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (H, W)).astype(np.float32), (0, 0), 4)
    noise /= noise.std()
    fg = (1 / (1 + np.exp(-(noise - 1.2) * 4))).astype(np.float32)
    cls_noise = cv2.GaussianBlur(rng.normal(0, 1, (H, W, 10)).astype(np.float32), (0, 0), 6) * 30
    cls = np.exp(cls_noise - cls_noise.max(axis=2, keepdims=True))
    cls = (cls / cls.sum(axis=2, keepdims=True)).astype(np.float32)
    field = cv2.GaussianBlur(rng.normal(0, 1, (H, W, 2)).astype(np.float32), (0, 0), 8)
    field /= field.std()
    js = run_js("postprocess", [{"width": W, "height": H, "fgProb": b64(fg), "classProb": b64(cls), "field": b64(field)}],
                tmp_path)[0]
    py = python_nails(fg, cls, field)
    assert len(py) >= 3
    compare(py, js, noisy=True)


def test_js_connected_components_are_opencvs(tmp_path):
    rng = np.random.default_rng(3)
    cases, images = [], []
    for k, connectivity in enumerate([8, 4, 8]):
        binary = (cv2.GaussianBlur(rng.random((97, 131)).astype(np.float32), (0, 0), 1.0 + k) > 0.5).astype(np.uint8)
        images.append((binary, connectivity))
        cases.append({"width": 131, "height": 97, "binary": b64(binary), "connectivity": connectivity})
    for (binary, connectivity), js in zip(images, run_js("components", cases, tmp_path)):
        n, labels = cv2.connectedComponentsWithAlgorithm(binary, connectivity, cv2.CV_32S, cv2.CCL_GRANA)
        mine = unb64(js["labels"], np.int32).reshape(binary.shape)
        assert js["count"] == n - 1 > 5
        pairs = set(zip(labels.ravel().tolist(), mine.ravel().tolist()))  # the same partition: a bijection
        assert len(pairs) == n and len({a for a, _ in pairs}) == n and len({b for _, b in pairs}) == n


def test_js_chamfer_distance_is_opencvs(tmp_path):
    rng = np.random.default_rng(4)
    binary = (rng.random((60, 80)) > 0.02).astype(np.uint8)
    seeds = np.zeros((60, 80), np.int32)
    seeds[binary == 0] = rng.integers(1, 6, int((binary == 0).sum()))
    js = run_js("chamfer", [{"width": 80, "height": 60, "binary": b64(binary)},
                            {"width": 80, "height": 60, "binary": b64(binary), "seeds": b64(seeds)}], tmp_path)
    dist = cv2.distanceTransform(binary, cv2.DIST_L2, 5)
    np.testing.assert_allclose(unb64(js[0]["dist"], np.float32).reshape(60, 80), dist, atol=1e-4)
    dist2, nearest = cv2.distanceTransformWithLabels(binary, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    lut = np.zeros(nearest.max() + 1, np.int32)
    lut[nearest[binary == 0]] = seeds[binary == 0]
    np.testing.assert_allclose(unb64(js[1]["dist"], np.float32).reshape(60, 80), dist2, atol=1e-4)
    assert (unb64(js[1]["labels"], np.int32).reshape(60, 80) == lut[nearest]).mean() > 0.999


# Fingers coming in from the border: (tip x, tip y, angle base -> tip in degrees, finger half width).
FINGERS = [(60, 110, -80, 16), (140, 95, -100, 15), (215, 120, -65, 15), (120, 175, 20, 14), (250, 200, 160, 14),
           (290, 70, 135, 14)]


def finger_photo(seed: int):
    """(photo uint8 RGB, fg_prob, nail specs) of skin-coloured fingers (round-ended bands from beyond the
    border) on a noisy grey background, a polish ellipse near each free end; fg_prob as a model gives it."""
    rng = np.random.default_rng(seed)
    image = np.clip(120 + rng.normal(0, 8, (H, W, 1)) + rng.normal(0, 3, (H, W, 3)), 0, 255).astype(np.uint8)
    specs = []
    for tx, ty, angle, hw in FINGERS:
        u = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
        start = np.round(np.array([tx, ty]) - u * 600).astype(int)
        skin = [int(v) for v in np.clip(np.array([222, 170, 140]) + rng.integers(-15, 15, 3), 0, 255)]
        cv2.line(image, (int(start[0]), int(start[1])), (tx, ty), skin, 2 * hw, cv2.LINE_AA)
        a, b = 0.75 * hw + 2, 0.55 * hw
        cx, cy = np.array([tx, ty]) - u * (a + 3)
        spec = (cx, cy, a, b, angle, 1)
        cv2.fillPoly(image, [np.round(np.asarray(ellipse(*spec[:5])) * 16).astype(np.int32)], (200, 30, 60),
                     cv2.LINE_AA, 4)
        specs.append(spec)
    image = cv2.GaussianBlur(image, (0, 0), 0.7)
    fg, _, _ = simulated_prediction({"nails": [nail(s) for s in specs]}, W, H, seed, nail_prob=0.95,
                                    background_prob=0.03)
    return image, fg, specs


def test_js_orients_nails_from_the_photo_as_python(tmp_path):
    """No field, the photo given: Python's orient_from_image and its port pick the same tip end (angles
    within 2 degrees) with confidences within 0.05, on fingers at several angles (one running off the photo
    beyond its tip: the strip-off-the-photo rule) and on ml.data.synthetic_hand photos (nails on a blob).
    Seeds 4 and 7 hold nails whose profile samples land exactly on a window bound (d = 2 * length / 40 =
    0.05 * length): both sides count them, thanks to the same 1e-9 * length margin."""
    scenes = []
    for seed in (0, 1):
        image, fg, specs = finger_photo(seed)
        scenes.append(("fingers", seed, image, fg, None, specs))
    for seed in (3, 4, 5, 7):
        image, geometry = synthetic_hand(np.random.default_rng(seed), W, H, nails=4, landmarks=True)
        fg, cls, _ = simulated_prediction(geometry, W, H, seed, nail_prob=0.95, background_prob=0.03)
        scenes.append(("synthetic hand", seed, image, fg, cls, None))
    cases = []
    for _, _, image, fg, cls, _ in scenes:
        extra = {} if cls is None else {"classProb": b64(cls)}
        cases.append({"width": W, "height": H, "fgProb": b64(fg), "rgb": b64(image), **extra})
    # the page hands over ImageData (RGBA): the same result as RGB
    rgba = np.concatenate([scenes[0][2], np.full((H, W, 1), 255, np.uint8)], axis=2)
    cases.append({"width": W, "height": H, "fgProb": b64(scenes[0][3]), "rgba": b64(rgba)})
    # with a field the photo changes nothing
    fg, cls, field = synthetic_frame()
    cases.append({"width": W, "height": H, "fgProb": b64(fg), "classProb": b64(cls), "field": b64(field),
                  "rgb": b64(scenes[0][2])})
    js = run_js("postprocess", cases, tmp_path)
    assert js[len(scenes)] == js[0]

    oriented = 0
    for (name, seed, image, fg, cls, specs), js_nails in zip(scenes, js):
        nails = postprocess(fg, cls, None, image=image)
        py = to_dicts(nails)
        for d, n in zip(py, nails):
            d["_mask"] = n.mask.astype(np.uint8).reshape(-1)
            d["orientation_confidence"] = n.extra.get("orientation_confidence")
        confidence = {tuple(d["bbox"]): d["orientation_confidence"] for d in py}
        mine = {tuple(d["bbox"]): d["orientation_confidence"] for d in js_nails}
        try:
            # same nails, pixels, fingers, provenance ("image" where Python's confidence > 0); axes agree
            compare([dict(d) for d in py], js_nails, axial=True)
            for d in py:
                j = next(j for j in js_nails if j["bbox"] == d["bbox"])
                if d["direction_source"] != "image":
                    continue
                assert abs(j["orientation_confidence"] - d["orientation_confidence"]) <= 0.05, (d["bbox"], d, j)
                if d["orientation_confidence"] > 0.05:  # not a tie: the same tip end
                    assert angle_diff(j["angle"], d["angle"]) <= 2.0, (d["bbox"], d["angle"], j["angle"])
                    assert math.dist(j["tip"], d["tip"]) <= 3.0 and math.dist(j["base"], d["base"]) <= 3.0
                    oriented += 1
        except AssertionError as exc:
            raise AssertionError(f"{name} {seed}: {exc} (Python {confidence}, JS {mine})") from None
        if specs is not None:
            # Python did orient them, the right way (a shape axis points up; three of these point down)
            assert len(py) == len(specs) and all(d["direction_source"] == "image" for d in py)
            for cx, cy, _, _, angle, _ in specs:
                d = min(py, key=lambda d: math.dist(np.mean(d["polygon"], axis=0), (cx, cy)))
                assert angle_diff(d["angle"], angle) < 5, (angle, d["angle"])
            assert sum(d["orientation_confidence"] > 0.3 for d in py) >= 4
    assert oriented >= 2 * len(FINGERS)
    field_case = js[len(scenes) + 1]
    assert field_case and all(n["direction_source"] == "field" and n["orientation_confidence"] is None
                              for n in field_case)
