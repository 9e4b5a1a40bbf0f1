"""Tests for dataset.raster (plain pytest + hypothesis, no Django)."""
import math

import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from dataset.raster import (
    PALETTE, UNKNOWN_CLASS, Rasters, direction_field_colors, overlay, rasterize, scale_geometry,
)

TIE = 1e-9  # pixel centres closer than this to an edge are ties (top-left rule), not checked against shapely


def square(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def nail(polygon, finger=1, base=None, tip=None):
    return {"polygon": polygon, "finger": finger, "base": base, "tip": tip}


def pixels(mask):
    return {(int(c), int(r)) for r, c in zip(*np.nonzero(mask))}


def centres(width, height):
    rows, cols = np.mgrid[0:height, 0:width]
    return cols + 0.5, rows + 0.5


@st.composite
def star_polygons(draw, x_range, y_range, max_radius=30.0):
    """Simple polygons: vertices at distinct, sorted angles around a centre."""
    angles = sorted(draw(st.lists(st.integers(0, 359), min_size=3, max_size=12, unique=True)))
    cx, cy = draw(st.floats(*x_range)), draw(st.floats(*y_range))
    radii = draw(st.lists(st.floats(0.5, max_radius), min_size=len(angles), max_size=len(angles)))
    polygon = [[cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a))]
               for a, r in zip(angles, radii)]
    assume(Polygon(polygon).is_valid)  # a gap of over 180 degrees can make it cross itself
    return polygon


@st.composite
def geometries(draw, max_nails=4):
    width, height = draw(st.integers(8, 60)), draw(st.integers(8, 60))
    nails = []
    for _ in range(draw(st.integers(0, max_nails))):
        polygon = draw(star_polygons((-5, width + 5), (-5, height + 5)))
        landmarks = draw(st.sampled_from(["none", "random", "vertices"]))
        base = tip = None
        if landmarks == "random":
            base = [draw(st.floats(0, width)), draw(st.floats(0, height))]
            tip = [draw(st.floats(0, width)), draw(st.floats(0, height))]
        elif landmarks == "vertices" and polygon[0] != polygon[1]:
            base, tip = polygon[0], polygon[1]
        nails.append(nail(polygon, draw(st.sampled_from([None, *range(1, 11)])), base, tip))
    ignore = draw(st.lists(star_polygons((-5, width + 5), (-5, height + 5)), max_size=2))
    return {"nails": nails, "ignore": ignore}, width, height


def owners(geometry, x, y, sx=1.0, sy=1.0):
    """Reference: nail index + 1 owning each point (smallest area wins, ties the later), tie mask."""
    polys = [Polygon([(px * sx, py * sy) for px, py in n["polygon"]]) for n in geometry["nails"]]
    owner = np.zeros(x.shape, np.int32)
    tie = np.zeros(x.shape, bool)
    for index in sorted(range(len(polys)), key=lambda i: (-round(polys[i].area / (sx * sy), 3), i)):
        owner[shapely.contains_xy(polys[index], x, y)] = index + 1
        tie |= shapely.distance(polys[index].exterior, shapely.points(x, y)) < TIE
    return owner, tie


# ---------------------------------------------------------------- hand-computed cases

def test_square_at_integer_coordinates_covers_exactly_its_pixels():
    r = rasterize({"nails": [nail(square(10, 10, 14, 14))]}, 20, 20)
    assert pixels(r.foreground) == {(c, row) for c in range(10, 14) for row in range(10, 14)}
    assert r.foreground.sum() == 16


def test_centres_on_edges_follow_the_top_left_rule():
    # centres 9.5 .. 13.5 lie on the edges: inside on the left/top edge, outside on the right/bottom one
    r = rasterize({"nails": [nail(square(9.5, 9.5, 13.5, 13.5))]}, 20, 20)
    assert pixels(r.foreground) == {(c, row) for c in range(9, 13) for row in range(9, 13)}


def test_triangle_pixel_centres():
    r = rasterize({"nails": [nail([[0, 0], [4, 0], [0, 4]])]}, 6, 6)
    # centre (c + .5, r + .5) inside iff c + r + 1 < 4; c + r == 3 lies on the hypotenuse (a right edge)
    assert pixels(r.foreground) == {(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (0, 2)}


def test_shared_edge_neither_overlaps_nor_leaves_a_gap():
    g = {"nails": [nail(square(0, 0, 4.5, 4)), nail(square(4.5, 0, 8, 4), finger=2)]}
    r = rasterize(g, 10, 6)
    assert r.overlaps == []
    assert pixels(r.foreground) == {(c, row) for c in range(8) for row in range(4)}
    assert pixels(r.instance == 2) == {(c, row) for c in range(4, 8) for row in range(4)}


def test_polygon_partly_outside_the_image_is_clipped():
    r = rasterize({"nails": [nail(square(-3, -3, 2, 2))]}, 5, 5)
    assert pixels(r.foreground) == {(c, row) for c in range(2) for row in range(2)}


# ---------------------------------------------------------------- classes, field, ignore

def test_classes_and_unknown_class():
    g = {"nails": [nail(square(0, 0, 2, 2), finger=7), nail(square(3, 0, 5, 2), finger=None),
                   nail(square(6, 0, 8, 2), finger=11), nail(square(9, 0, 11, 2), finger=True)]}
    r = rasterize(g, 12, 3)
    assert UNKNOWN_CLASS == 255
    assert set(np.unique(r.classes[:2, 0:2])) == {7}
    for x in (3, 6, 9):  # missing, out-of-range and non-int fingers are unknown
        assert set(np.unique(r.classes[:2, x:x + 2])) == {UNKNOWN_CLASS}
    assert r.classes[2].sum() == 0 and r.classes.dtype == np.uint8


def test_field_points_from_base_to_tip():
    g = {"nails": [nail(square(0, 0, 10, 10), base=[5, 9], tip=[5, 1]),    # up
                   nail(square(20, 0, 30, 10), base=[21, 1], tip=[29, 9]),  # down-right
                   nail(square(40, 0, 50, 10))]}                             # no landmarks
    r = rasterize(g, 50, 12)
    assert np.allclose(r.field[0:10, 0:10], [0, -1])
    assert np.allclose(r.field[0:10, 20:30], [math.sqrt(0.5), math.sqrt(0.5)])
    assert r.field_mask[0:10, 0:30].sum() == 200
    assert not r.field_mask[:, 40:].any() and not r.field[:, 40:].any()
    assert r.foreground[0:10, 40:50].all()
    assert r.field.dtype == np.float32 and r.field.shape == (12, 50, 2)


def test_incomplete_or_equal_landmarks_give_no_field():
    g = {"nails": [nail(square(0, 0, 4, 4), base=[1, 1], tip=None),
                   nail(square(5, 0, 9, 4), base=[6, 1], tip=[6, 1]),
                   nail(square(10, 0, 14, 4), base="x", tip=[11, 1])]}
    r = rasterize(g, 15, 5)
    assert r.foreground.sum() == 48 and r.field_mask.sum() == 0 and not r.field.any()


def test_ignore_mask():
    g = {"nails": [nail(square(0, 0, 4, 4))], "ignore": [square(2, 2, 6, 6), square(8, 8, 9, 9)]}
    r = rasterize(g, 10, 10)
    assert pixels(r.ignore) == {(c, row) for c in range(2, 6) for row in range(2, 6)} | {(8, 8)}
    assert r.foreground.sum() == 16  # nail labels under an ignore region are kept


# ---------------------------------------------------------------- overlaps

def test_smaller_nail_wins_overlap_whatever_the_order():
    big, small = nail(square(0, 0, 10, 10), finger=1), nail(square(2, 2, 5, 5), finger=2)
    for order, small_index in (([big, small], 1), ([small, big], 0)):
        r = rasterize({"nails": order}, 12, 12)
        assert pixels(r.instance == small_index + 1) == {(c, row) for c in range(2, 5) for row in range(2, 5)}
        assert set(np.unique(r.classes[2:5, 2:5])) == {2}
        assert r.overlaps == [(0, 1, 9)]
        assert r.foreground.sum() == 100


def test_equal_areas_the_later_nail_wins_and_all_pairs_are_reported():
    g = {"nails": [nail(square(0, 0, 4, 4), finger=f, base=[1, 3], tip=[1, 1]) for f in (1, 2, 3)]}
    g["nails"][2]["tip"] = [3, 3]  # the winner points right
    r = rasterize(g, 6, 6)
    assert set(np.unique(r.instance[:4, :4])) == {3}
    assert set(np.unique(r.classes[:4, :4])) == {3}
    assert np.allclose(r.field[:4, :4], [1, 0])
    assert r.overlaps == [(0, 1, 16), (0, 2, 16), (1, 2, 16)]


def test_winner_without_landmarks_clears_the_field_beneath():
    g = {"nails": [nail(square(0, 0, 10, 10), base=[5, 9], tip=[5, 1]), nail(square(2, 2, 4, 4))]}
    r = rasterize(g, 10, 10)
    assert not r.field_mask[2:4, 2:4].any() and not r.field[2:4, 2:4].any()
    assert r.field_mask.sum() == 96


# ---------------------------------------------------------------- sizes, degenerate input

def test_empty_geometry_gives_zero_rasters():
    for geometry in ({"nails": [], "ignore": []}, {}, {"nails": None}, None):
        r = rasterize(geometry, 7, 5)
        assert isinstance(r, Rasters)
        for name, dtype in (("foreground", np.uint8), ("classes", np.uint8), ("field_mask", np.uint8),
                            ("ignore", np.uint8), ("instance", np.int32)):
            array = getattr(r, name)
            assert array.shape == (5, 7) and array.dtype == dtype and not array.any()
        assert r.field.shape == (5, 7, 2) and not r.field.any()
        assert r.overlaps == [] and r.skipped == []


def test_unusable_polygons_are_skipped_not_fatal():
    g = {"nails": [nail("abc"), nail([[0, 0], [1, 1]]), nail([[0, 0], [float("nan"), 1], [2, 2]]),
                   {"finger": 1}, "not a nail", nail([[0, 0], [1e300, 0], [0, 5]]),
                   nail(square(1, 1, 3, 3)), nail([[0, 0], [2, 2], [4, 4]])],  # last: zero area
         "ignore": [[[0, 0]], "x"]}
    r = rasterize(g, 5, 5)
    assert r.skipped == [0, 1, 2, 3, 4, 5]
    assert pixels(r.instance == 7) == {(1, 1), (2, 1), (1, 2), (2, 2)} and r.foreground.sum() == 4
    assert not r.ignore.any()


def test_self_intersecting_polygon_uses_the_even_odd_rule():
    bowtie = [[0, 0], [8, 8], [8, 0], [0, 8]]  # two triangles meeting at (4, 4)
    r = rasterize({"nails": [nail(bowtie)]}, 8, 8)
    x, y = centres(8, 8)
    valid = shapely.make_valid(Polygon(bowtie))
    tie = shapely.distance(valid.boundary, shapely.points(x, y)) < TIE
    assert np.array_equal(r.foreground.astype(bool)[~tie], shapely.contains_xy(valid, x, y)[~tie])
    assert r.foreground.sum() == 32  # two triangles of 16 px^2 each


def test_bad_sizes_raise():
    for args in ((0, 5), (5, -1), (5.0, 5), (True, 5)):
        with pytest.raises(ValueError):
            rasterize({}, *args)
    with pytest.raises(ValueError):
        rasterize({}, 5, 5, out_size=(5,))


def test_out_size_scales_the_geometry():
    g = {"nails": [nail(square(10, 10, 30, 20), finger=3, base=[12, 12], tip=[28, 18])],
         "ignore": [square(0, 0, 8, 8)]}
    small = rasterize(g, 100, 50, out_size=(50, 25))
    manual = rasterize(scale_geometry(g, 0.5, 0.5), 50, 25)
    for name in ("foreground", "classes", "field", "field_mask", "ignore", "instance"):
        assert np.array_equal(getattr(small, name), getattr(manual, name))
    assert pixels(small.foreground) == {(c, row) for c in range(5, 15) for row in range(5, 10)}
    assert pixels(small.ignore) == {(c, row) for c in range(4) for row in range(4)}
    assert np.array_equal(rasterize(g, 100, 50).instance, rasterize(g, 100, 50, out_size=(100, 50)).instance)


def test_anisotropic_scaling_uses_the_scaled_direction():
    g = {"nails": [nail(square(0, 0, 10, 10), base=[1, 1], tip=[9, 9])]}
    r = rasterize(g, 10, 10, out_size=(20, 10))
    assert np.allclose(r.field[r.field_mask > 0], np.array([2, 1]) / math.sqrt(5))


def test_scale_geometry_keeps_other_keys():
    g = {"nails": [{"id": "a", "polygon": square(1, 1, 2, 2), "finger": 4, "base": None, "tip": [1, 2]}],
         "ignore": [square(0, 0, 1, 1)]}
    s = scale_geometry(g, 2, 3)
    assert s["nails"][0] == {"id": "a", "polygon": square(2, 3, 4, 6), "finger": 4,
                             "base": None, "tip": [2, 6]}
    assert s["ignore"] == [square(0, 0, 2, 3)] and g["nails"][0]["polygon"] == square(1, 1, 2, 2)


# ---------------------------------------------------------------- properties

@settings(max_examples=150, deadline=None)
@given(geometries())
def test_pixels_follow_the_centre_rule_and_the_overlap_rule(case):
    geometry, width, height = case
    r = rasterize(geometry, width, height)
    x, y = centres(width, height)
    expected, tie = owners(geometry, x, y)
    assert np.array_equal(r.instance[~tie], expected[~tie])
    assert np.array_equal(r.foreground, (r.instance > 0).astype(np.uint8))
    regions = [Polygon(p) for p in geometry["ignore"]]  # may overlap each other
    edges = shapely.union_all([p.exterior for p in regions])
    tie = shapely.distance(edges, shapely.points(x, y)) < TIE if regions else tie
    inside = shapely.contains_xy(shapely.union_all(regions), x, y)
    assert np.array_equal(r.ignore.astype(bool)[~tie], inside[~tie])


@settings(max_examples=150, deadline=None)
@given(geometries())
def test_labels_are_consistent(case):
    geometry, width, height = case
    r = rasterize(geometry, width, height)
    inside = r.foreground > 0
    assert np.array_equal(r.classes > 0, inside)  # classes non-zero exactly on the foreground
    assert set(np.unique(r.classes[inside])) <= set(range(1, 11)) | {UNKNOWN_CLASS}
    assert not (r.field_mask > 0)[~inside].any() and not r.field[r.field_mask == 0].any()
    for index, n in enumerate(geometry["nails"]):
        mine = r.instance == index + 1
        finger = n["finger"] if n["finger"] is not None else UNKNOWN_CLASS
        assert (r.classes[mine] == finger).all()
        length = 0 if n["base"] is None else math.dist(n["base"], n["tip"])
        if length > 1e-6:
            d = np.subtract(n["tip"], n["base"])
            d /= np.hypot(*d)
            assert r.field_mask[mine].all()
            vectors = r.field[mine]
            assert np.allclose(np.hypot(vectors[:, 0], vectors[:, 1]), 1, atol=1e-6)
            assert np.allclose(vectors @ d, 1, atol=1e-6)
        elif length == 0:
            assert not r.field_mask[mine].any()
    for i, j, count in r.overlaps:
        assert i < j and count > 0


@settings(max_examples=100, deadline=None)
@given(geometries())
def test_supersampling_agrees_except_at_edges(case):
    """Rasterizing at 2x and taking each 2x2 block agrees with the direct raster except for
    pixels with an edge within sqrt(2)/4 px of their centre (the distance to the block's centres)."""
    geometry, width, height = case
    direct = rasterize(geometry, width, height).instance
    fine = rasterize(geometry, width, height, out_size=(2 * width, 2 * height)).instance
    blocks = fine.reshape(height, 2, width, 2).transpose(0, 2, 1, 3).reshape(height, width, 4)
    differs = (blocks != direct[..., None]).any(axis=2)
    if differs.any():
        x, y = centres(width, height)
        edges = shapely.union_all([Polygon(n["polygon"]).exterior for n in geometry["nails"]])
        near = shapely.distance(edges, shapely.points(x[differs], y[differs]))
        assert (near <= math.sqrt(2) / 4 + 1e-9).all()


@settings(max_examples=150, deadline=None)
@given(star_polygons((45, 55), (45, 55), max_radius=44))  # inside the image: nothing clipped
def test_mask_area_matches_polygon_area(polygon):
    shape = Polygon(polygon)
    r = rasterize({"nails": [nail(polygon)]}, 100, 100)
    assert abs(int(r.foreground.sum()) - shape.area) <= 0.5 * shape.length + 1


# ---------------------------------------------------------------- visualisation

def test_direction_field_colors():
    field = np.array([[[1, 0], [0, 1], [-1, 0], [0, -1], [1, 0]]], np.float32)
    mask = np.array([[1, 1, 1, 1, 0]], np.uint8)
    rgb = direction_field_colors(field, mask)
    assert rgb.dtype == np.uint8 and rgb.shape == (1, 5, 3)
    assert rgb[0].tolist() == [[255, 0, 0], [128, 255, 0], [0, 255, 255], [128, 0, 255], [0, 0, 0]]


def test_overlay_tints_nails_and_darkens_ignore():
    g = {"nails": [nail(square(0, 0, 2, 2), finger=6), nail(square(4, 0, 6, 2), finger=None)],
         "ignore": [square(0, 3, 2, 4)]}
    r = rasterize(g, 6, 4)
    image = np.full((4, 6, 3), 100, np.uint8)
    out = overlay(image, r)
    assert out.dtype == np.uint8 and out.shape == image.shape
    assert out[0, 0].tolist() == [round(50 + PALETTE[6][k] / 2) for k in range(3)]
    assert out[0, 4].tolist() == [150, 150, 150]  # unknown: grey (200) at alpha 0.5
    assert out[3, 0].tolist() == [50, 50, 50] and out[2, 3].tolist() == [100, 100, 100]
    with pytest.raises(ValueError):
        overlay(image[:3], r)
