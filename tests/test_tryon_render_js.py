"""The try-on page's JavaScript polish rendering (tryon/static/tryon/render.js) against ml/render.py, in Node
(tests/js/tryon_cli.mjs): every byte outside the stretched nails is the photo's own, the painted area is
Python's, and the colours are Python's within a level or two (metallic flakes come from another generator)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dataset.raster import rasterize
from ml.postprocess import postprocess
from ml.render import FINISHES, RenderOptions, render
from tests.test_tryon_postprocess_js import b64, run_js, unb64

H, W = 240, 320
FINGERS = [(60, 110, -80), (120, 80, -95), (180, 78, -100), (240, 95, -110), (290, 150, -150)]  # x, y, angle


@pytest.fixture(autouse=True)
def node_is_installed():
    from tests.test_tryon_postprocess_js import NODE

    assert NODE, "Node.js is not installed (needed for the JS rendering tests): run `make test`"


def photo_and_labels(seed: int = 0):
    """A textured table, five skin-coloured fingers with pale nails (a lighter free edge, a shading
    gradient), and the nails' labels with base and tip."""
    rng = np.random.default_rng(seed)
    img = rng.integers(40, 80, (H, W, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    nails = []
    for x, y, angle in FINGERS:
        u = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
        perp = np.array([-u[1], u[0]])
        t, s = (xx - x) * u[0] + (yy - y) * u[1], (xx - x) * perp[0] + (yy - y) * perp[1]
        finger = (np.abs(s) < 17) & (t < 20)
        img[finger] = (215, 165, 145)
        ellipse = (t / 22) ** 2 + (s / 12) ** 2 <= 1
        img[ellipse] = np.stack([235 - 20 * np.abs(s[ellipse]) / 12] * 3, -1) * (1, 0.86, 0.86) + (t[ellipse] > 14)[:, None] * 25
        polygon = [[x + 22 * math.cos(a) * u[0] + 12 * math.sin(a) * perp[0],
                    y + 22 * math.cos(a) * u[1] + 12 * math.sin(a) * perp[1]] for a in np.linspace(0, 2 * math.pi, 36, endpoint=False)]
        nails.append({"polygon": polygon, "finger": None, "base": (np.array([x, y]) - 20 * u).tolist(),
                      "tip": (np.array([x, y]) + 20 * u).tolist()})
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8), {"nails": nails, "ignore": []}


def js_render(cases, tmp_path):
    out = []
    for result in run_js("render", cases, tmp_path):
        assert result["opaque"]  # the alpha channel stays 255
        out.append((unb64(result["rgb"], np.uint8).reshape(H, W, 3), unb64(result["alpha"], np.float32).reshape(H, W),
                    result["nails"]))
    return out


def stretched_cover(nails) -> np.ndarray:
    """Pixels any part of which lies inside a stretched nail polygon (at 4 x 4 sub-pixels)."""
    big = rasterize({"nails": [{"polygon": n["polygon"]} for n in nails]}, W, H, out_size=(4 * W, 4 * H)).foreground
    return big.reshape(H, 4, W, 4).any(axis=(1, 3))


def test_js_finishes_paint_like_python_and_leave_the_rest_untouched(tmp_path):
    assert set(FINISHES) == {"glossy", "matte", "metallic"}
    rgb, labels = photo_and_labels()
    cases = [{"width": W, "height": H, "rgb": b64(rgb), "nails": labels["nails"], "color": color, "finish": finish}
             for finish, color in [("glossy", "#C8102E"), ("matte", "#1F2A44"), ("metallic", "#C9A227")]]
    for case, (js, alpha, info) in zip(cases, js_render(cases, tmp_path)):
        py = render(rgb, labels, case["color"], case["finish"])
        changed = (js != rgb).any(axis=2)
        # outside the stretched nails: the photo's own bytes
        assert not changed[alpha == 0].any() and (js[alpha == 0] == rgb[alpha == 0]).all()
        assert not (alpha > 0)[~stretched_cover(info)].any()
        assert len(info) == 5 and all(n["axisSource"] == "landmarks" for n in info)
        # the same painted area, the same feathered alpha
        assert ((alpha > 0) == (py.alpha > 0)).mean() > 0.9999
        assert np.abs(alpha - py.alpha).max() < 1e-3
        assert changed.sum() > 0.9 * (rasterize(labels, W, H).foreground > 0).sum()
        diff = np.abs(js.astype(int) - py.image.astype(int))[(alpha > 0) | (py.alpha > 0)]
        if case["finish"] == "metallic":  # flakes from another random generator: the same strength
            assert diff.mean() < 8 and np.percentile(diff, 50) <= 6
        else:
            assert diff.mean() < 0.5 and diff.max() <= 3, (diff.mean(), diff.max())


def test_js_paints_predicted_nails_like_python(tmp_path):
    """postprocess.js nails (field directions) through render.js, against Python's pipeline on the same
    prediction; nails without any direction are painted symmetrically (no stretch)."""
    rgb, labels = photo_and_labels(1)
    rasters = rasterize({"nails": [dict(n, finger=2 + i) for i, n in enumerate(labels["nails"])]}, W, H)
    fg = np.where(rasters.foreground > 0, 0.95, 0.02).astype(np.float32)
    field = rasters.field.astype(np.float32)
    js_nails = run_js("postprocess", [{"width": W, "height": H, "fgProb": b64(fg), "field": b64(field)},
                                      {"width": W, "height": H, "fgProb": b64(fg)}], tmp_path)
    cases = [{"width": W, "height": H, "rgb": b64(rgb), "nails": nails, "color": "#D1007A", "finish": "glossy"}
             for nails in js_nails]
    (with_field, alpha, info), (no_field, alpha_sym, info_sym) = js_render(cases, tmp_path)
    py = render(rgb, postprocess(fg, None, field), "#D1007A", "glossy")
    inter = ((alpha > 0) & (py.alpha > 0)).sum()
    assert inter / ((alpha > 0) | (py.alpha > 0)).sum() > 0.95
    assert not (with_field != rgb).any(axis=2)[alpha == 0].any()
    both = (alpha > 0) & (py.alpha > 0)
    assert np.abs(with_field.astype(int) - py.image.astype(int))[both].mean() < 3
    assert [n["axisSource"] for n in info] == ["field"] * 5
    # without a field the nails are painted unstretched: the painted area hugs the outline
    assert [n["axisSource"] for n in info_sym] == ["shape"] * 5
    assert (alpha_sym > 0).sum() < (alpha > 0).sum()
    unstretched = render(rgb, postprocess(fg, None, field), "#D1007A", "glossy", options=RenderOptions(stretch=0))
    assert abs(int((alpha_sym > 0).sum()) - int((unstretched.alpha > 0).sum())) < 0.03 * (unstretched.alpha > 0).sum()
    assert not (no_field != rgb).any(axis=2)[alpha_sym == 0].any()
