"""ml.render: polish on labels and on predictions (plain NumPy/OpenCV, no Django, no torch)."""
import math

import cv2
import numpy as np
import pytest

from dataset.raster import rasterize
from ml.postprocess import postprocess
from ml.render import FINISHES, PALETTE, RenderOptions, parse_color, render, side_by_side

H, W = 240, 320


def textured_photo(seed=0):
    """Noise everywhere (so that any change shows), a skin-coloured finger under each nail."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    cv2.rectangle(image, (70, 90), (130, H - 1), (220, 170, 150), -1)
    cv2.rectangle(image, (190, 100), (250, H - 1), (210, 160, 140), -1)
    return image


def ellipse(cx, cy, a, b, n=40):
    return [[cx + a * math.cos(2 * math.pi * i / n), cy + b * math.sin(2 * math.pi * i / n)] for i in range(n)]


GEOMETRY = {"nails": [
    {"polygon": ellipse(100, 110, 22, 30), "finger": 2, "base": [100, 138], "tip": [100, 82]},   # tip up
    {"polygon": ellipse(220, 130, 22, 30), "finger": 3, "base": None, "tip": None},            # no landmarks
    {"polygon": [[280, 20], [310, 25], [305, 60], [275, 55]], "finger": None, "base": [292, 57], "tip": [294, 22]},
], "ignore": []}


def nail_mask(geometry):
    return rasterize(geometry, W, H).foreground > 0


@pytest.mark.parametrize("finish", list(FINISHES))
def test_pixels_outside_the_nails_are_identical(finish):
    image = textured_photo()
    result = render(image, GEOMETRY, "#C8102E", finish)
    assert result.image.dtype == np.uint8 and result.image.shape == image.shape
    untouched = result.alpha == 0
    assert np.array_equal(result.image[untouched], image[untouched])
    # Everything painted lies inside the stretched polygons the renderer reports ...
    stretched = rasterize({"nails": [{"polygon": n["polygon"]} for n in result.nails]}, W, H,
                          out_size=(4 * W, 4 * H)).foreground
    inside_stretched = stretched.reshape(H, 4, W, 4).any(axis=(1, 3))
    changed = np.any(result.image != image, axis=2)
    assert not (changed & ~inside_stretched).any()
    # ... and near the nails: nothing changes beyond the 8 % stretch of the 60 px nail (~5 px) from the labels.
    near = cv2.dilate(nail_mask(GEOMETRY).astype(np.uint8), np.ones((13, 13), np.uint8)) > 0
    assert not (changed & ~near).any()
    # The nails themselves are painted: most of each nail changed, towards the polish colour.
    mask = nail_mask(GEOMETRY)
    assert changed[mask].mean() > 0.98
    red = result.image[mask].astype(float)
    assert red[:, 0].mean() > red[:, 1].mean() + 60


def test_edges_are_feathered_and_antialiased():
    result = render(textured_photo(), GEOMETRY, "#1F2A44", "glossy")
    alpha = result.alpha
    inner = cv2.erode(nail_mask(GEOMETRY).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert np.all(alpha[inner] > 0.999)
    edge = (alpha > 0) & (alpha < 1)
    assert edge.sum() > 100  # a soft rim, not a hard cut
    assert alpha.max() <= 1.0 and alpha.min() >= 0.0


def test_the_mask_is_stretched_toward_the_tip_only():
    geometry = {"nails": [GEOMETRY["nails"][0]]}  # base at the bottom, tip at the top
    result = render(textured_photo(), geometry, "#C8102E", "glossy", feather=0.5)
    rows = np.nonzero((result.alpha > 0).any(axis=1))[0]
    top, bottom = rows.min(), rows.max()
    assert top <= 80 - 3      # the polygon's top is y = 80: stretched ~8 % of 60 px upward
    assert bottom <= 140      # the polygon's bottom is y = 140: not stretched
    flipped = {"nails": [dict(GEOMETRY["nails"][0], base=[100, 82], tip=[100, 138])]}
    rows = np.nonzero((render(textured_photo(), flipped, "#C8102E", feather=0.5).alpha > 0).any(axis=1))[0]
    assert rows.max() >= 140 + 3 and rows.min() >= 79
    none = render(textured_photo(), geometry, "#C8102E", stretch=0.0, feather=0.5)
    rows = np.nonzero((none.alpha > 0).any(axis=1))[0]
    assert rows.min() >= 79


def test_shading_of_the_photo_is_kept():
    # A nail lit from the left: the polish must keep the left-to-right falloff, not be a flat fill.
    image = np.full((H, W, 3), 90, np.uint8)
    ramp = np.linspace(250, 120, 60).astype(np.uint8)
    image[60:180, 70:130] = np.stack([ramp, ramp - 20, ramp - 30], axis=-1)[None]
    geometry = {"nails": [{"polygon": [[72, 62], [128, 62], [128, 178], [72, 178]], "finger": 1,
                           "base": [100, 176], "tip": [100, 64]}]}
    out = render(image, geometry, "#C8102E", "matte").image
    lab = cv2.cvtColor(out, cv2.COLOR_RGB2Lab).astype(float)
    left, right = lab[100:140, 80:90, 0].mean(), lab[100:140, 110:120, 0].mean()
    assert left > right + 3
    colours = out[100:140, 80:120].reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 20  # not a flat fill


def test_finishes_differ():
    image = textured_photo()
    mask = nail_mask(GEOMETRY)
    outs = {f: render(image, GEOMETRY, "#C8102E", f).image[mask].astype(float) for f in FINISHES}
    names = list(outs)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(outs[a] - outs[b]).mean() > 3, (a, b)
    # Inside the nails (away from the soft rim): glossy has the brightest specular light, matte the least.
    inner = cv2.erode(mask.astype(np.uint8), np.ones((7, 7), np.uint8))[mask] > 0
    lum = {f: cv2.cvtColor(o[inner].reshape(-1, 1, 3).astype(np.uint8), cv2.COLOR_RGB2Lab)[..., 0].astype(float)
           for f, o in outs.items()}
    assert np.percentile(lum["glossy"], 99.5) > np.percentile(lum["matte"], 99.5) + 20
    assert lum["matte"].std() < lum["glossy"].std()


def test_from_predictions_and_determinism():
    image = textured_photo(3)
    truth = rasterize(GEOMETRY, W, H)
    fg = np.where(truth.foreground > 0, 0.95, 0.02).astype(np.float32)
    field = truth.field.copy()
    nails = postprocess(fg, None, field, min_area=20)
    assert len(nails) == 3
    a = render(image, nails, "#00827F", "metallic")
    b = render(image, nails, "#00827F", "metallic")
    assert np.array_equal(a.image, b.image)
    untouched = a.alpha == 0
    assert np.array_equal(a.image[untouched], image[untouched])
    assert np.any(a.image != image, axis=2)[truth.foreground > 0].mean() > 0.98
    # A plain list of geometry nails works too, and empty geometry changes nothing.
    assert np.array_equal(render(image, GEOMETRY["nails"], "#C8102E").image, render(image, GEOMETRY, "#C8102E").image)
    empty = render(image, {"nails": []}, "#C8102E")
    assert np.array_equal(empty.image, image) and not empty.alpha.any()


def test_colours_and_arguments():
    assert parse_color("#C8102E") == (200, 16, 46)
    assert parse_color("c8102e") == (200, 16, 46)
    assert parse_color("#fff") == (255, 255, 255)
    assert parse_color((1, 2, 3)) == (1, 2, 3)
    for bad in ("red", "#12345", "#GGGGGG", (1, 2), (0, 0, 300)):
        with pytest.raises(ValueError):
            parse_color(bad)
    with pytest.raises(ValueError):
        render(textured_photo(), GEOMETRY, "#C8102E", "sparkly")
    with pytest.raises(ValueError):
        render(textured_photo().astype(np.float32), GEOMETRY, "#C8102E")
    assert all(parse_color(c) for _, c in PALETTE)
    assert RenderOptions().stretch > 0
    pair = side_by_side(textured_photo(), textured_photo(), max_width=320)
    assert pair.shape[1] == 320 and pair.dtype == np.uint8


def test_nails_cut_by_the_image_border():
    image = textured_photo(5)
    geometry = {"nails": [  # tips pointing out of the photo (left and top), and a nail beyond the right edge
        {"polygon": ellipse(8, 120, 20, 12), "finger": 1, "base": [26, 120], "tip": [-10, 120]},
        {"polygon": ellipse(160, 6, 12, 20), "finger": 2, "base": [160, 24], "tip": [160, -12]},
        {"polygon": ellipse(318, 200, 14, 20), "finger": 3, "base": None, "tip": None},
    ]}
    for finish in FINISHES:
        result = render(image, geometry, "#5E2750", finish)
        untouched = result.alpha == 0
        assert np.array_equal(result.image[untouched], image[untouched])
        assert len(result.nails) == 3
        assert (result.alpha[:, :10] > 0).any() and (result.alpha[:8] > 0).any() and (result.alpha[:, -4:] > 0).any()
