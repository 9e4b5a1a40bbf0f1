"""ml.postprocess on synthetic predictions with known nails (plain NumPy/OpenCV, no Django, no torch)."""
import math

import cv2
import numpy as np
import pytest

from dataset.geometry import validate_geometry
from ml.postprocess import PostprocessConfig, from_logits, orient_from_image, postprocess, to_dicts, to_geometry

H, W = 480, 640


def ellipse_mask(cx, cy, length, width, angle, shape=(H, W)):
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, (round(cx * 16), round(cy * 16)), (round(length / 2 * 16), round(width / 2 * 16)), angle, 0, 360,
                1, -1, cv2.LINE_8, 4)
    return mask.astype(bool)


def unit(angle):
    return np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])


def scene(nails, noise=0.3, seed=0, shape=(H, W)):
    """Predictions of known nails: ``(cx, cy, length, width, angle_deg, finger)``, direction base -> tip at
    ``angle`` (image coordinates). Soft fg edges, noisy field, confident classes."""
    rng = np.random.default_rng(seed)
    fg = np.full(shape, 0.02, np.float32)
    cls = np.full(shape + (10,), 0.1, np.float32)
    field = rng.normal(0, 0.05, shape + (2,)).astype(np.float32)
    for cx, cy, length, width, angle, finger in nails:
        mask = ellipse_mask(cx, cy, length, width, angle, shape)
        core = ellipse_mask(cx, cy, length - 4, width - 4, angle, shape)
        fg[mask] = 0.7
        fg[core] = 0.97
        cls[mask] = 0.01
        cls[mask, finger - 1] = 0.91
        field[mask] = unit(angle) + rng.normal(0, noise, (int(mask.sum()), 2))
    return fg, cls, field


NAILS = [  # cx, cy, length, width, angle (base -> tip), finger
    (100, 200, 60, 36, -80, 2),
    (200, 150, 70, 40, -95, 3),
    (300, 160, 64, 38, -100, 4),
    (420, 300, 50, 30, 30, 1),
    (540, 390, 44, 28, 170, 7),
    (560, 120, 46, 28, -178, 8),
]


def angle_error(a, b, axial=False):
    d = (a - b + 180.0) % 360.0 - 180.0
    if axial:
        d = (d + 90.0) % 180.0 - 90.0
    return abs(d)


def match(nails, truth):
    """The detected nail nearest to each true centre."""
    out = []
    for cx, cy, *_ in truth:
        out.append(min(nails, key=lambda n: math.dist(np.mean(n.polygon, axis=0), (cx, cy))))
    return out


def test_known_nails_angles_landmarks_and_geometry():
    fg, cls, field = scene(NAILS)
    nails = postprocess(fg, cls, field)
    assert len(nails) == len(NAILS)
    for nail, (cx, cy, length, width, angle, finger) in zip(match(nails, NAILS), NAILS):
        assert nail.finger == finger
        assert nail.direction_source == "field"
        assert angle_error(nail.angle, angle) < 1.0, (nail.angle, angle)
        true_base = np.array([cx, cy]) - unit(angle) * length / 2
        true_tip = np.array([cx, cy]) + unit(angle) * length / 2
        assert math.dist(nail.base, true_base) < 0.12 * length, (nail.base, true_base)
        assert math.dist(nail.tip, true_tip) < 0.12 * length, (nail.tip, true_tip)
        assert 0.9 < nail.confidence <= 1.0
        assert nail.class_confidence == pytest.approx(0.91, abs=0.01)
        assert abs(nail.area - math.pi * length * width / 4) < 0.1 * nail.area
        assert 3 <= len(nail.polygon) <= PostprocessConfig().max_vertices
    geometry = to_geometry(nails)
    report = validate_geometry(geometry, W, H, require_complete=True)
    assert report.ok, report.to_dict()
    assert set(geometry["nails"][0]) == {"polygon", "finger", "base", "tip"}
    summary = to_dicts(nails)
    assert {"confidence", "angle", "direction_source"} <= set(summary[0])


def test_polygon_outlines_the_blob():
    fg, cls, field = scene(NAILS[:1])
    nail = postprocess(fg, cls, field)[0]
    from dataset.raster import rasterize

    back = rasterize({"nails": [{"polygon": nail.polygon}]}, W, H).foreground > 0
    mask = nail.full_mask((H, W))
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou > 0.95


def test_binary_only_model_instances_from_the_fg_mask():
    fg, _, field = scene(NAILS)
    nails = postprocess(fg, None, field)  # no class head: field still used
    assert len(nails) == len(NAILS)
    for nail, truth in zip(match(nails, NAILS), NAILS):
        assert nail.finger is None
        assert angle_error(nail.angle, truth[4]) < 1.0
    assert validate_geometry(to_geometry(nails), W, H).ok

    nails = postprocess(fg)  # neither classes nor field: the principal axis, sign unknown
    assert len(nails) == len(NAILS)
    for nail, truth in zip(match(nails, NAILS), NAILS):
        assert nail.direction_source == "shape"
        assert angle_error(nail.angle, truth[4], axial=True) < 1.0
    geometry = to_geometry(nails)
    assert validate_geometry(geometry, W, H).ok
    assert all(n["base"] is None and n["tip"] is None and n["finger"] is None for n in geometry["nails"])
    assert validate_geometry(to_geometry(nails, landmarks="always"), W, H).ok


def test_a_nail_split_in_two_is_merged():
    cx, cy, length, width, angle = 320, 240, 80, 44, -70
    fg, cls, field = scene([(cx, cy, length, width, angle, 3)])
    # A band across the nail predicted as background: two blobs of the same class and direction.
    yy, xx = np.mgrid[0:H, 0:W]
    along = (xx + 0.5 - cx) * unit(angle)[0] + (yy + 0.5 - cy) * unit(angle)[1]
    band = np.abs(along - 5) < 2.5
    fg[band] = 0.05
    n_blobs = cv2.connectedComponents((fg > 0.5).astype(np.uint8))[0] - 1
    assert n_blobs == 2
    nails = postprocess(fg, cls, field)
    assert len(nails) == 1
    nail = nails[0]
    assert nail.merged_from == 2 and nail.finger == 3
    assert angle_error(nail.angle, angle) < 1.0
    assert math.dist(nail.tip, np.array([cx, cy]) + unit(angle) * length / 2) < 0.12 * length
    assert validate_geometry(to_geometry(nails), W, H, require_complete=True).ok
    # Without merging: two nails.
    assert len(postprocess(fg, cls, field, merge=False)) == 2
    # Binary mode merges the same way.
    assert len(postprocess(fg, None, field)) == 1


def test_neighbours_are_not_merged():
    # Two nails side by side with the same direction: different classes -> two nails, also when touching.
    specs = [(300, 240, 70, 40, -90, 2), (338, 240, 70, 40, -90, 3)]
    fg, cls, field = scene(specs)
    assert cv2.connectedComponents((fg > 0.5).astype(np.uint8))[0] - 1 == 1  # they touch: one fg blob
    nails = postprocess(fg, cls, field)
    assert sorted(n.finger for n in nails) == [2, 3]
    for nail, truth in zip(match(nails, specs), specs):
        assert nail.finger == truth[5]
        assert angle_error(nail.angle, -90) < 1.0
    # Same class, one after the other but far apart: two nails.
    specs = [(300, 100, 50, 30, -90, 2), (300, 300, 50, 30, -90, 2)]
    assert len(postprocess(*scene(specs))) == 2
    # Same class, close, but directions disagree: two nails.
    specs = [(300, 200, 50, 30, -90, 2), (300, 262, 50, 30, 0, 2)]
    assert len(postprocess(*scene(specs))) == 2


def test_class_noise_does_not_split_a_nail():
    fg, cls, field = scene([(320, 240, 80, 44, -60, 4)])
    rng = np.random.default_rng(1)
    mask = fg > 0.5
    flip = mask & (rng.random((H, W)) < 0.1)
    cls[flip] = 0.01
    cls[flip, 6] = 0.9  # 10 % of the pixels say finger 7
    nails = postprocess(fg, cls, field)
    assert len(nails) == 1 and nails[0].finger == 4


def test_tiny_blobs_are_dropped():
    fg, cls, field = scene(NAILS[:2])
    for x, y in [(20, 20), (600, 450), (400, 40)]:
        fg[y:y + 3, x:x + 3] = 0.99
    nails = postprocess(fg, cls, field)
    assert len(nails) == 2
    assert len(postprocess(fg, cls, field, min_area=1, min_area_fraction=0.0)) == 5


def test_bounded_vertices_and_bbdt():
    fg, cls, field = scene(NAILS)
    few = postprocess(fg, cls, field, max_vertices=8)
    assert all(3 <= len(n.polygon) <= 8 for n in few)
    assert validate_geometry(to_geometry(few), W, H).ok
    grana = postprocess(fg, cls, field)
    bbdt = postprocess(fg, cls, field, algorithm="bbdt")
    assert [n.polygon for n in grana] == [n.polygon for n in bbdt]
    with pytest.raises(ValueError):
        PostprocessConfig(algorithm="nope")


def test_from_logits_and_class_maps():
    fg, cls, field = scene(NAILS[:3])
    fg_logits = np.stack([np.zeros((H, W)), np.log(fg / (1 - fg))])
    cls_logits = np.log(np.moveaxis(cls, -1, 0))
    p, c, f = from_logits(fg_logits[None], cls_logits, np.moveaxis(field, -1, 0))
    assert np.allclose(p, fg, atol=1e-5) and c.shape == (H, W, 10) and f.shape == (H, W, 2)
    a = postprocess(fg, cls, field)
    b = postprocess(p, c, f)
    assert [(n.finger, round(n.angle, 3)) for n in a] == [(n.finger, round(n.angle, 3)) for n in b]
    class_map = np.where(fg > 0.5, cls.argmax(-1) + 1, 0).astype(np.uint8)  # an argmax map works too
    assert [n.finger for n in postprocess(fg, class_map, field)] == [n.finger for n in a]


def test_nails_at_the_image_border_stay_inside():
    specs = [(10, 240, 60, 40, 180, 1), (320, 470, 60, 40, 90, 2)]
    nails = postprocess(*scene(specs))
    assert len(nails) == 2
    assert validate_geometry(to_geometry(nails), W, H, require_complete=True).ok
    for nail in nails:
        pts = np.array(nail.polygon)
        assert pts.min() >= 0 and pts[:, 0].max() <= W and pts[:, 1].max() <= H


def test_orientation_from_the_photo():
    # A finger (skin) coming in from the bottom border with its nail near the top end, on a dark table.
    image = np.full((H, W, 3), (40, 45, 50), np.uint8)
    cv2.rectangle(image, (290, 150), (350, H), (225, 170, 150), -1)
    cv2.ellipse(image, (320, 150), (30, 30), 0, 180, 360, (225, 170, 150), -1)  # the rounded fingertip
    nail = ellipse_mask(320, 175, 50, 34, -90)
    image[nail] = (240, 200, 200)
    ys, xs = np.nonzero(nail)
    x0, y0 = xs.min(), ys.min()
    crop = nail[y0:ys.max() + 1, x0:xs.max() + 1]
    centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5])
    for axis in ([0.0, 1.0], [0.0, -1.0]):
        u, confidence = orient_from_image(image, crop, (x0, y0), centre, np.array(axis))
        assert confidence > 0.1
        assert u[1] < -0.99  # tip up, away from the hand
    fg = np.where(nail, 0.95, 0.02).astype(np.float32)
    nails = postprocess(fg, image=image)
    assert nails[0].direction_source == "image" and angle_error(nails[0].angle, -90) < 1.0
