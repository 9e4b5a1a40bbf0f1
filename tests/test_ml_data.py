"""Tests of ml/data.py: the masks-export Dataset, augmentation geometry (the direction field follows the
transform), the horizontal flip (classes and field), reproducibility, partial labels, eval resizing.

The masks export is built in the test from synthetic images with the real exporter (dataset.formats)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dataset.raster import UNKNOWN_CLASS, rasterize
from ml.data import (
    FINGER_FLIP,
    AugmentConfig,
    MasksDataset,
    augment_sample,
    eval_size_for,
    hflip_sample,
    make_synthetic_export,
)

W, H = 80, 60


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return make_synthetic_export(tmp_path_factory.mktemp("masks") / "export", train=4, val=2, size=(W, H), seed=3)


def _geometry():
    """Two nails with off-grid vertices (no pixel centre on an edge) and one ignore region."""
    return {
        "nails": [
            {"polygon": [[10.3, 12.2], [24.7, 10.9], [27.1, 30.4], [12.6, 33.8]], "finger": 2,
             "base": [18.1, 31.3], "tip": [17.6, 12.8]},
            {"polygon": [[40.2, 20.1], [58.9, 24.3], [55.4, 40.7], [43.3, 37.2]], "finger": 9,
             "base": [44.6, 30.2], "tip": [56.1, 31.7]},
            {"polygon": [[30.3, 44.2], [37.8, 45.1], [35.2, 53.6]], "finger": None, "base": None, "tip": None},
        ],
        "ignore": [[[62.3, 2.2], [75.6, 3.1], [70.2, 15.9]]],
    }


def _mirror(geometry, width):
    def m(p):
        return None if p is None else [width - p[0], p[1]]

    nails = [{"polygon": [m(p) for p in n["polygon"]], "base": m(n["base"]), "tip": m(n["tip"]),
              "finger": None if n["finger"] is None else int(FINGER_FLIP[n["finger"]])} for n in geometry["nails"]]
    return {"nails": nails, "ignore": [[m(p) for p in ring] for ring in geometry["ignore"]]}


def _sample(geometry, width=W, height=H, seed=0):
    r = rasterize(geometry, width, height)
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return {"image": image, "classes": r.classes, "foreground": r.foreground, "field": r.field,
            "field_mask": r.field_mask, "ignore": r.ignore, "instances": r.instance}


def test_finger_flip_table():
    assert FINGER_FLIP[[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, UNKNOWN_CLASS]].tolist() == [
        0, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, UNKNOWN_CLASS]


def test_hflip_twice_is_identity(export):
    ds = MasksDataset(export, "train", train=False, eval_size=None)
    for i in range(len(ds)):
        sample = ds.load(i)
        twice = hflip_sample(hflip_sample(sample))
        for key, value in sample.items():
            assert twice[key].dtype == value.dtype
            assert np.array_equal(twice[key], value), key


def test_hflip_matches_the_mirrored_annotation():
    geometry = _geometry()
    flipped = hflip_sample(_sample(geometry))
    expected = rasterize(_mirror(geometry, W), W, H)
    assert np.array_equal(flipped["foreground"], expected.foreground)
    assert np.array_equal(flipped["classes"], expected.classes)  # left index (2) <-> right index (7)
    assert set(np.unique(flipped["classes"])) == {0, 7, 4, UNKNOWN_CLASS}
    assert np.array_equal(flipped["field_mask"], expected.field_mask)
    assert np.allclose(flipped["field"], expected.field, atol=1e-6)  # still base -> tip, x mirrored
    assert np.array_equal(flipped["ignore"], expected.ignore)


def _affine_point(params, p):
    return params["A"] @ np.asarray(p, float) + params["b"]


@pytest.mark.parametrize("seed", range(6))
def test_augmentation_moves_labels_and_field_with_the_image(seed):
    geometry = _geometry()
    sample = _sample(geometry)
    config = AugmentConfig(crop_size=48, base_long_side=70, scale_range=(0.7, 1.4), rotation=60.0, hflip=0.5,
                           blur_prob=0.5)
    out, params = augment_sample(sample, config, np.random.default_rng(seed), return_params=True)
    assert out["image"].shape == (48, 48, 3) and out["image"].dtype == np.float32
    assert 0.0 <= out["image"].min() and out["image"].max() <= 1.0
    # the labels equal the rasterized transformed annotation (up to nearest-neighbour sampling at edges)
    moved = {
        "nails": [{**n, "polygon": [_affine_point(params, p).tolist() for p in n["polygon"]]} for n in geometry["nails"]],
        "ignore": [],
    }
    expected = rasterize(moved, 48, 48)
    fg, want = out["foreground"] > 0, expected.foreground > 0
    if want.sum() > 20:
        assert (fg & want).sum() / (fg | want).sum() > 0.8
    # every nail's field points from its transformed base to its transformed tip
    for nail in geometry["nails"]:
        if nail["base"] is None:
            continue
        d = _affine_point(params, nail["tip"]) - _affine_point(params, nail["base"])
        d /= np.linalg.norm(d)
        cls = nail["finger"] if not params["flip"] else int(FINGER_FLIP[nail["finger"]])
        pixels = (out["classes"] == cls) & (out["field_mask"] > 0)
        if pixels.any():
            vectors = out["field"][pixels]
            assert np.allclose(vectors, d, atol=1e-5)
            assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # no field outside nails; padding is ignored
    assert not out["field"][out["field_mask"] == 0].any()
    assert np.all((out["field_mask"] == 0) | (out["foreground"] > 0))
    if params["flip"]:
        assert not np.isin(out["classes"], [2, 9]).any()


def test_padding_outside_the_image_is_ignored():
    sample = _sample({"nails": [], "ignore": []})
    config = AugmentConfig(crop_size=64, base_long_side=32, scale_range=(1.0, 1.0), rotation=0.0, hflip=0.0,
                           brightness=0, contrast=0, saturation=0, hue=0, blur_prob=0)
    out = augment_sample(sample, config, np.random.default_rng(0))
    # the image (32 x 24 after scaling) covers part of the crop; the rest is padding
    assert 0.15 < out["ignore"].mean() < 0.9
    import cv2

    near_image = cv2.dilate((out["ignore"] == 0).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert np.all(out["image"][~near_image] == 0)  # bilinear sampling may blend one pixel ring


def test_dataset_samples(export):
    ds = MasksDataset(export, "train", augment=AugmentConfig(crop_size=32), seed=5)
    assert len(ds) == 4 and ds.has_classes and ds.has_landmarks
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert item["fg"].shape == (32, 32) and item["fg"].dtype == torch.int64
    assert item["field"].shape == (2, 32, 32) and item["field_mask"].dtype == torch.bool
    assert set(item["cls"].unique().tolist()) <= set(range(11)) | {UNKNOWN_CLASS}
    batch = torch.utils.data.default_collate([ds[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 32, 32)
    # partial labels: the synthetic export's third image has neither classes nor landmarks
    partial = [i for i, e in enumerate(ds.entries) if not e["has_classes"]]
    assert partial
    raw = ds.load(partial[0])
    assert set(np.unique(raw["classes"])) <= {0, UNKNOWN_CLASS} and not raw["field_mask"].any()


def test_augmentation_is_reproducible_per_seed_epoch_and_draw(export):
    a = MasksDataset(export, "train", augment=AugmentConfig(crop_size=32), seed=7)
    b = MasksDataset(export, "train", augment=AugmentConfig(crop_size=32), seed=7, cache=True)
    for key in (0, 3, 5):
        x, y = a[key], b[key]
        assert all(torch.equal(x[k], y[k]) for k in x)
    a.set_epoch(1)
    assert not torch.equal(a[0]["image"], b[0]["image"])
    b.set_epoch(1)
    assert torch.equal(a[0]["image"], b[0]["image"])
    # key = draw * len + index: the same image, a fresh crop
    assert a[4]["index"].item() == 0 and not torch.equal(a[4]["image"], a[0]["image"])


def test_fill_cache_lets_forked_loader_workers_share_the_decoded_photos(export):
    """ml.train fills the cache before forking an epoch's loader workers: they must not decode again."""
    def no_reading():
        raise AssertionError("decoded again")

    def batches(ds, workers):
        loader = torch.utils.data.DataLoader(ds, batch_size=2, sampler=[0, 5, 2, 3], num_workers=workers,
                                             multiprocessing_context="fork" if workers else None)
        return list(loader)

    expected = batches(MasksDataset(export, "train", augment=AugmentConfig(crop_size=32), seed=7), 0)
    ds = MasksDataset(export, "train", augment=AugmentConfig(crop_size=32), seed=7, cache=True)
    ds.reader = no_reading  # an empty cache: each worker would read the photos itself
    with pytest.raises(Exception, match="decoded again"):
        batches(ds, 2)
    del ds.reader
    ds.fill_cache()
    assert sorted(ds._cache) == list(range(len(ds)))
    ds.reader = no_reading
    got = batches(ds, 2)  # the same crops as without workers, from the parent's decoded photos
    assert all(torch.equal(a[k], b[k]) for a, b in zip(expected, got) for k in a)
    plain = MasksDataset(export, "train", augment=AugmentConfig(crop_size=32), seed=7)
    plain.fill_cache()  # without cache: nothing kept
    assert plain._cache == {}


def test_eval_mode_resizes_to_multiples_of_32_and_keeps_labels(export):
    ds = MasksDataset(export, "val", train=False, eval_size=96)
    item = ds[0]
    assert item["image"].shape == (3, 64, 96)  # 80 x 60 -> 96 x 72 -> 96 x 64
    assert item["fg"].shape == (H, W)
    assert eval_size_for(480, 640, 480) == (352, 480)
    assert eval_size_for(640, 480, 288) == (288, 224)
    assert eval_size_for(1080, 1920, 352) == (192, 352)
    for h, w in ((37, 1000), (1000, 1000), (607, 1079)):
        eh, ew = eval_size_for(h, w, 352)
        assert eh % 32 == 0 and ew % 32 == 0 and max(eh, ew) == 352


def test_zip_export_and_pickling(export, tmp_path):
    import pickle
    import shutil

    archive = shutil.make_archive(str(tmp_path / "export"), "zip", export)
    ds = MasksDataset(archive, "train", augment=AugmentConfig(crop_size=32), seed=1)
    ref = MasksDataset(export, "train", augment=AugmentConfig(crop_size=32), seed=1)
    assert torch.equal(ds[1]["image"], ref[1]["image"])
    clone = pickle.loads(pickle.dumps(ds))  # what DataLoader workers get: no open zip handle
    assert clone._reader is None and torch.equal(clone[1]["fg"], ref[1]["fg"])


def test_rotation_turns_the_field_by_the_same_angle():
    # one horizontal nail pointing right; rotate by a fixed angle without flip or scale jitter
    geometry = {"nails": [{"polygon": [[20.2, 25.3], [50.1, 25.7], [50.4, 35.2], [20.3, 34.9]], "finger": 1,
                           "base": [21.0, 30.0], "tip": [49.0, 30.0]}], "ignore": []}
    sample = _sample(geometry)
    config = AugmentConfig(crop_size=64, base_long_side=80, scale_range=(1.0, 1.0), rotation=90.0, hflip=0.0,
                           brightness=0, contrast=0, saturation=0, hue=0, blur_prob=0)
    out, params = augment_sample(sample, config, np.random.default_rng(11), return_params=True)
    theta = math.radians(params["angle"])
    vectors = out["field"][out["field_mask"] > 0]
    assert len(vectors)
    # image coordinates (y down): the rotation matrix [[c, -s], [s, c]] applied to (1, 0)
    assert np.allclose(vectors, [math.cos(theta), math.sin(theta)], atol=1e-5)
