"""Participant-grouped cross-validation (ml.cross_validation), full-resolution per-image scores
(ml.evaluate) and the CV bench (bench/cv.py) on synthetic data."""
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from dataset.formats.masks import read_masks_manifest
from ml.cross_validation import (
    Fold,
    WeightAverage,
    check_folds,
    fold_view,
    participant_folds,
    row_label,
    run_fold,
    select_epoch,
    summarize,
)
from ml.data import MasksDataset, make_synthetic_export
from ml.checkpoint import load_checkpoint
from ml.evaluate import FullResScorer, image_scores, nail_breakdown, nail_owners, pooled_scores
from ml.metrics import SegmentationMetrics, binary_ious
from ml.models.registry import build_model
from ml.train import train, train_config


def uneven_items():
    """31 photos of 12 participants: one with 9 photos, two with 4, the rest 1 or 2."""
    sizes = [9, 4, 4, 2, 2, 2, 2, 2, 1, 1, 1, 1]
    return [(f"{p:02d}-{i}.jpg", f"person{p:02d}") for p, n in enumerate(sizes) for i in range(n)]


def test_folds_group_participants_cover_every_image_once_and_balance():
    items = uneven_items()
    participant_of = dict(items)
    folds = participant_folds(items, k=4, seed=0)
    assert len(folds) == 4
    held_out = [key for fold in folds for key in fold.test]
    assert sorted(held_out) == sorted(participant_of)  # every image exactly once
    owners = [{participant_of[key] for key in fold.test} for fold in folds]
    for i, a in enumerate(owners):
        for b in owners[i + 1:]:
            assert not a & b
    for fold in folds:
        assert {participant_of[k] for k in fold.test}.isdisjoint(participant_of[k] for k in fold.train)
        assert sorted(fold.inner_train + fold.inner_val) == sorted(fold.train)
        assert {participant_of[k] for k in fold.inner_val}.isdisjoint(participant_of[k] for k in fold.inner_train)
        assert fold.inner_val and fold.inner_train
    sizes = sorted(len(fold.test) for fold in folds)
    assert sizes[-1] == 9 and sizes[0] >= 7  # 31 photos: as even as the 9-photo participant allows


def test_folds_are_deterministic_and_the_seed_changes_them():
    items = uneven_items()
    forward, backward = participant_folds(items, k=3, seed=5), participant_folds(items[::-1], k=3, seed=5)
    assert [f.test_participants for f in forward] == [f.test_participants for f in backward]  # order-free
    assert [f.inner_val_participants for f in forward] == [f.inner_val_participants for f in backward]
    assert participant_folds(items, k=3, seed=1) == participant_folds(items, k=3, seed=1)
    tests = {tuple(f.test_participants for f in participant_folds(items, k=3, seed=s)) for s in range(6)}
    assert len(tests) > 1


def test_balance_with_single_photo_participants_is_exact():
    items = [(f"{i}.png", f"p{i}") for i in range(20)]
    assert [len(f.test) for f in participant_folds(items, k=5, seed=3)] == [4, 4, 4, 4, 4]


def test_a_wrong_grouping_is_detected():
    items = uneven_items()
    participant_of = dict(items)
    folds = participant_folds(items, k=3, seed=0)
    # move one photo of a fold-0 participant into fold 1's test set: that participant is on two folds
    moved = folds[0].test[0]
    bad = [replace(folds[0], test=folds[0].test[1:]), replace(folds[1], test=folds[1].test + (moved,)), folds[2]]
    with pytest.raises(ValueError, match="participant"):
        check_folds(bad, participant_of)
    dropped = [replace(folds[0], test=folds[0].test[1:]), *folds[1:]]
    with pytest.raises(ValueError):
        check_folds(dropped, participant_of)
    with pytest.raises(ValueError, match="participants cannot fill"):
        participant_folds(items[:3], k=4)


def test_selection_strategies_pick_what_they_say():
    history = [{"epoch": 1, "val": {"miou": 0.5}}, {"epoch": 2, "val": {"miou": 0.8}},
               {"epoch": 3, "val": {"miou": 0.8}}, {"epoch": 4, "val": {"miou": 0.7}}]
    assert select_epoch(history, "last") == 4
    assert select_epoch(history, "best-inner-val") == 2  # the first of equal bests, as ml.train keeps best.pt
    with pytest.raises(ValueError):
        select_epoch([{"epoch": 1, "val": None}], "best-inner-val")
    with pytest.raises(ValueError):
        select_epoch(history, "ema")  # the average is no epoch
    average = WeightAverage(0.5)
    for value in (0.0, 4.0, 8.0):
        average.update({"w": torch.tensor([value]), "n": torch.tensor(int(value))})
    assert average.state["w"].item() == pytest.approx(0.25 * 0 + 0.25 * 4 + 0.5 * 8)  # 0 -> 2 -> 5
    assert average.state["n"].item() == 8  # counters: the newest


def test_image_scores_per_nail_charges_pixels_to_the_nearest_nail():
    instances = np.zeros((20, 30), np.int32)
    instances[2:6, 2:6] = 1
    instances[10:15, 20:25] = 2
    owners = nail_owners(instances)
    assert owners[0, 0] == 1 and owners[19, 29] == 2
    gt = instances > 0
    perfect = image_scores(gt, gt, np.zeros_like(gt), instances)
    assert perfect["miou"] == 1.0 and perfect["per_nail_iou"] == [1.0, 1.0]
    missed = gt.copy()
    missed[10:15, 20:25] = False
    scores = image_scores(missed, gt, np.zeros_like(gt), instances)
    assert scores["per_nail_iou"] == [1.0, 0.0]
    assert scores["nail_iou"] == pytest.approx(16 / 41)
    ignore = np.zeros_like(gt)
    ignore[10:15, 20:25] = True  # the missed nail ignored: nothing left to miss
    assert image_scores(missed, gt, ignore, instances)["miou"] == 1.0
    pooled = pooled_scores([perfect, scores])
    assert pooled["nail_iou"] == pytest.approx((41 + 16) / (41 + 41))
    assert pooled["per_nail_iou"] == pytest.approx(0.75) and pooled["nails"] == 4


def test_nail_breakdown_tells_a_shrunken_outline_from_a_missed_nail_and_from_paint_outside():
    instances = np.zeros((20, 30), np.int32)
    instances[2:8, 2:8] = 1       # 36 px
    instances[10:16, 20:26] = 2   # 36 px
    gt = instances > 0
    calm = np.zeros_like(gt)
    shrunk = gt.copy()
    shrunk[2:8, 2:4] = False      # nail 1 painted 2 columns short: IoU 24/36
    shrunk[10:16, 20:21] = False  # nail 2 one column short: IoU 30/36
    missed = gt.copy()
    missed[10:16, 20:26] = False  # nail 2 not found at all
    spilled = gt.copy()
    spilled[0:2, 0:10] = True     # 20 px of paint beside nail 1, both nails whole
    b = nail_breakdown([image_scores(shrunk, gt, calm, instances)])
    assert (b["precision"], b["recall"], b["found"], b["nails"]) == (1.0, pytest.approx(54 / 72), 1.0, 2)
    assert b["found_iou"] == pytest.approx((24 / 36 + 30 / 36) / 2)
    b = nail_breakdown([image_scores(missed, gt, calm, instances)])
    assert (b["precision"], b["recall"], b["found"], b["found_iou"]) == (1.0, 0.5, 0.5, 1.0) and b["found_nails"] == 1
    b = nail_breakdown([image_scores(spilled, gt, calm, instances)])
    assert (b["precision"], b["recall"], b["found"]) == (pytest.approx(72 / 92), 1.0, 1.0)
    assert b["found_iou"] == pytest.approx((36 / 56 + 1.0) / 2)  # the spill is charged to its nearest nail
    assert nail_breakdown([image_scores(missed, gt, calm, instances)], found_at=0.0)["found"] == 1.0
    nothing = nail_breakdown([image_scores(calm, calm, calm, np.zeros_like(instances))])
    assert nothing == {"precision": None, "recall": None, "found": None, "found_nails": 0, "found_iou": None, "nails": 0}


def test_no_nail_rule_is_the_same_per_image_pooled_and_in_segmentation_metrics():
    """One rule (ml.metrics.binary_ious): a class neither labelled nor predicted has no IoU and is left out of
    the mean; the per-image scores, their pooled figures and SegmentationMetrics agree on every case."""
    empty = np.zeros((8, 10), bool)
    full = np.ones((8, 10), bool)
    corner = empty.copy()
    corner[:2, :2] = True
    cases = {  # (prediction, labels, ignore) -> binary mIoU
        "no nail, none predicted": (empty, empty, empty, 1.0),
        "no nail, some predicted": (corner, empty, empty, (0.0 + 76 / 80) / 2),
        "all nail, all predicted": (full, full, empty, 1.0),
        "everything ignored": (corner, corner, full, None),
    }
    for name, (pred, gt, ignore, miou) in cases.items():
        scores = image_scores(pred, gt, ignore, gt.astype(np.int32))
        pooled = pooled_scores([scores])
        metrics = SegmentationMetrics()
        metrics.update(torch.from_numpy(pred), torch.from_numpy(gt), torch.from_numpy(ignore))
        computed = metrics.compute()
        for key in ("miou", "nail_iou", "bg_iou"):
            assert scores[key] == pooled[key] == computed[key], (name, key)
        assert scores["miou"] == pytest.approx(miou) if miou is not None else scores["miou"] is None, name
    assert binary_ious(0, 0, 0, 80) == {"nail_iou": None, "bg_iou": 1.0, "miou": 1.0}
    # a fold with no nail at all pools to its background IoU; an all-ignored image is left out of the mean
    blank = image_scores(empty, empty, empty, empty.astype(np.int32))
    ignored = image_scores(corner, corner, full, corner.astype(np.int32))
    assert pooled_scores([blank, blank])["miou"] == 1.0 and pooled_scores([blank, ignored])["image_miou"] == 1.0


def test_fold_view_rewrites_splits_only(tmp_path):
    export = make_synthetic_export(tmp_path / "export", train=6, val=3, size=(48, 40))
    folds = participant_folds(read_masks_manifest(export)["images"], k=3, seed=0)
    view = fold_view(export, folds[1], tmp_path / "view")
    splits = {e["file_name"]: e["split"] for e in read_masks_manifest(view)["images"]}
    assert {k for k, s in splits.items() if s == "test"} == set(folds[1].test)
    assert {k for k, s in splits.items() if s == "val"} == set(folds[1].inner_val)
    held_out = MasksDataset(view, "test", train=False, eval_size=None)
    assert len(held_out) == len(folds[1].test) and held_out[0]["fg"].shape == (40, 48)
    no_inner = fold_view(export, folds[1], tmp_path / "view2", inner=False)
    assert len(MasksDataset(no_inner, "val", train=False)) == 0
    assert len(MasksDataset(no_inner, "train", train=False)) == len(folds[1].train)


def test_run_fold_scores_every_epoch_and_each_strategy(tmp_path):
    torch.set_num_threads(1)
    export = make_synthetic_export(tmp_path / "export", train=6, val=3, size=(48, 40))
    folds = participant_folds(read_masks_manifest(export)["images"], k=3, seed=0)
    config = train_config("tiny", epochs=3, steps_per_epoch=2, device="cpu")
    result = run_fold(export, folds[0], config, tmp_path / "fold0")
    assert [e["epoch"] for e in result["epochs"]] == [1, 2, 3]
    chosen = result["selections"]
    assert chosen["last"]["epoch"] == 3 and chosen["ema"]["epoch"] is None
    best = chosen["best-inner-val"]["epoch"]
    assert result["epochs"][best - 1]["val_miou"] == max(e["val_miou"] for e in result["epochs"])
    assert chosen["last"]["scores"] == result["epochs"][2]["test"]  # the last epoch's own held-out figures
    assert len(chosen["last"]["images"]) == len(folds[0].test)
    assert {img["file_name"] for img in chosen["ema"]["images"]} == set(folds[0].test)
    assert result["oracle"]["scores"]["miou"] >= max(c["scores"]["miou"] for k, c in chosen.items() if k != "ema")
    summary = summarize([result, result], "last")
    assert summary["miou"]["sd"] == 0 and summary["gap_to_oracle"]["mean"] >= 0
    assert row_label("unet").startswith("U-Net")


def test_held_out_photos_run_at_the_models_input_size_or_capped_at_their_own(tmp_path):
    """By default run_fold runs every held-out photo at the config's input size (TrainConfig.eval_size, the long
    side its crops were cut at, as ml.predict.Predictor runs it), small photos enlarged; with max_side each photo
    keeps its own size up to the cap. Either way the scores are at the photo's own size."""
    torch.set_num_threads(1)
    export = make_synthetic_export(tmp_path / "export", train=6, val=3, size=(48, 40))  # W x H
    fold = participant_folds(read_masks_manifest(export)["images"], k=3, seed=0)[0]
    config = train_config("tiny", epochs=1, steps_per_epoch=1, device="cpu", val_size=None)
    assert config.eval_size == 64  # the tiny preset's base long side
    view = fold_view(export, fold, tmp_path / "view", inner=False)
    model = build_model(config.model, load_pretrained=False).eval()
    native = FullResScorer(view, "test", long_side=config.eval_size, device="cpu")
    capped = FullResScorer(view, "test", max_side=32, device="cpu")
    assert {tuple(item["input_size"]) for item in native.items} == {(64, 64)}  # 48 x 40, sides in 32s
    assert {tuple(item["input_size"]) for item in capped.items} == {(32, 32)}
    for scorer in (native, capped):
        scores = scorer(model)
        assert [s["tp"] + s["fp"] + s["fn"] + s["tn"] for s in scores] == [48 * 40 - int(i["ignore"].sum())
                                                                            for i in scorer.items]
    result = run_fold(export, fold, config, tmp_path / "run")
    assert result["input"] == {"long_side": 64}
    assert run_fold(export, fold, config, tmp_path / "run2", max_side=32)["input"] == {"max_side": 32}


def test_run_fold_scores_the_weights_last_pt_holds_without_reading_it(tmp_path):
    """run_fold scores the trainer's model in memory; its figures are those of the old way, which read
    last.pt back from disk after every epoch and scored (and averaged) that."""
    torch.set_num_threads(1)
    export = make_synthetic_export(tmp_path / "export", train=6, val=3, size=(48, 40))
    fold = participant_folds(read_masks_manifest(export)["images"], k=3, seed=0)[1]
    config = train_config("tiny", epochs=3, steps_per_epoch=6, lr=0.05, device="cpu")  # learns: scores move
    result = run_fold(export, fold, config, tmp_path / "new", selections=("last", "ema"))
    assert len({epoch["test"]["miou"] for epoch in result["epochs"]}) == 3

    view = fold_view(export, fold, tmp_path / "old" / "data", inner=False)
    scorer = FullResScorer(view, "test", long_side=config.eval_size, device="cpu")  # run_fold's default input
    model = build_model(config.model, load_pretrained=False)
    average = WeightAverage(0.6)  # run_fold's default decay
    old_epochs = []

    def from_disk(record, trained):
        state = load_checkpoint(tmp_path / "old" / "run" / "last.pt")["model"]
        model.load_state_dict(state)
        old_epochs.append(pooled_scores(scorer(model)))
        average.update(state)

    train(config, view, tmp_path / "old" / "run", resume=False, on_epoch=from_disk)
    assert len(old_epochs) == len(result["epochs"]) == 3
    for epoch, old in zip(result["epochs"], old_epochs):
        assert epoch["test"] == {key: old[key] for key in epoch["test"]}
    model.load_state_dict(average.state)
    old_ema = pooled_scores(scorer(model))
    assert result["selections"]["ema"]["scores"] == {key: old_ema[key] for key in result["selections"]["ema"]["scores"]}
    assert not (tmp_path / "new" / "run" / "last.pt").exists()  # and the checkpoints are still cleaned up


def test_run_fold_scores_the_selected_weights_with_tta_too(tmp_path):
    """With tta=("flip",) each strategy's model is scored again with flip TTA: for ``last`` the figures are those
    of last.pt run through ml.tta.with_tta; summarize(tta=) gives the paired gain."""
    from ml.tta import with_tta

    torch.set_num_threads(1)
    export = make_synthetic_export(tmp_path / "export", train=6, val=3, size=(48, 40))
    fold = participant_folds(read_masks_manifest(export)["images"], k=3, seed=0)[0]
    config = train_config("tiny", epochs=2, steps_per_epoch=3, lr=0.05, device="cpu")
    with pytest.raises(ValueError, match="unknown test-time augmentation 'mirror'"):
        run_fold(export, fold, config, tmp_path / "bad", tta=("mirror",))
    assert not (tmp_path / "bad").exists()  # refused before anything was trained or written
    result = run_fold(export, fold, config, tmp_path / "f", selections=("last", "ema"), tta=("flip",),
                      keep_checkpoints=True)
    for strategy in ("last", "ema"):
        flip = result["selections"][strategy]["tta"]["flip"]
        assert {img["file_name"] for img in flip["images"]} == set(fold.test)
    model = build_model(config.model, load_pretrained=False)
    model.load_state_dict(load_checkpoint(tmp_path / "f" / "run" / "last.pt")["model"])
    scorer = FullResScorer(tmp_path / "f" / "data", "test", long_side=config.eval_size, device="cpu")
    by_hand = pooled_scores(scorer(with_tta(model, "flip")))
    flip_last = result["selections"]["last"]["tta"]["flip"]["scores"]
    assert flip_last == {key: by_hand[key] for key in flip_last}
    summary = summarize([result, result], "last", "flip")
    assert summary["miou"]["mean"] == flip_last["miou"]
    gain = flip_last["miou"] - result["selections"]["last"]["scores"]["miou"]
    assert summary["gain"]["folds"] == [gain, gain] and summary["wins"] == (2 if gain > 0 else 0)
    assert "gain" not in summarize([result], "last")
    with pytest.raises(ValueError, match="not scored with test-time augmentation 'flip'"):
        summarize([{**result, "selections": {"last": {**result["selections"]["last"], "tta": {}}}}], "last", "flip")


def test_cv_bench_runs_end_to_end_and_writes_per_image_scores(tmp_path, capsys):
    from bench import cv

    torch.set_num_threads(1)
    export = make_synthetic_export(tmp_path / "export", train=6, val=3, size=(48, 40))
    out = tmp_path / "cv.json"
    cv.main(["--export", str(export), "--work", str(tmp_path / "work"), "--preset", "tiny", "--folds", "3",
             "--rows", "cascade,unet", "--epochs", "2", "--steps", "2", "--batch", "4", "--val-size", "64",
             "--device", "cpu", "--no-latency", "--no-doc", "--json", str(out), "--tta", "flip", "--lr", "0.005",
             "--base-long-side", "80", "--keep-checkpoints", "--train-seed", "3", "--aux-weight", "0.25"])
    report = json.loads(out.read_text())
    assert len(report["results"]) == 6  # 3 folds x 2 rows
    kept = sorted(p.relative_to(tmp_path / "work" / "runs").as_posix() for p in (tmp_path / "work" / "runs").glob("*/run/last.pt"))
    assert kept == [f"fold{i}-{row}/run/last.pt" for i in range(3) for row in ("U-Net--MobileNetV2-encoder---LMP", "cascade")]
    assert report["args"]["lr"] == 0.005  # not the preset's 0.01: recorded, and named in the budget line below
    assert report["args"]["seed"] == 0 and report["args"]["train_seed"] == 3
    assert report["args"]["aux_weight"] == 0.25
    assert "the coarse outputs' loss (deep supervision) weighted 0.25 (not the preset's)" in cv.section(report, "cv-test")
    assert "training seed 3;" in cv.section(report, "cv-test")
    images = {img["file_name"] for r in report["results"] if r["row"] == "+ cascade"
              for img in r["selections"]["last"]["images"]}
    assert len(images) == 9  # every photo scored once, held out
    assert all(isinstance(img["miou"], float) for r in report["results"] for img in r["selections"]["ema"]["images"])
    text = cv.section(report, "cv-test")
    assert "<!-- cv-test:start -->" in text and "| + cascade | best-inner-val |" in text
    assert "### Where the nail IoU is lost (`last`, every fold's held-out photos pooled)" in text
    nails = sum(len(img["per_nail_iou"]) for r in report["results"] if r["row"] == "+ cascade"
                for img in r["selections"]["last"]["images"])
    (cascade_line,) = [line for line in text.splitlines() if line.startswith("| + cascade | ") and f" of {nails}) | " in line]
    assert nails > 0 and cascade_line.count(" | ") == 4  # five cells
    assert "AdamW at learning rate 0.005 (not the preset's)" in text
    assert report["args"]["base_long_side"] == 80 and "each photo first scaled to long side 80, not the preset's" in text
    assert "| + cascade + flip TTA | best-inner-val |" in text and "| U-Net (MobileNetV2 encoder), LMP | last | flip |" in text
    with pytest.raises(SystemExit):  # an unknown TTA is refused before anything runs
        cv.main(["--export", str(export), "--work", str(tmp_path / "work2"), "--tta", "mirror", "--no-doc"])
    assert "unknown test-time augmentation 'mirror'" in capsys.readouterr().err
    assert not (tmp_path / "work2").exists()
    capsys.readouterr()
    cv.main(["--from-json", str(out), "--section", "cv-test", "--no-doc"])  # a run made elsewhere
    assert text in capsys.readouterr().out
    # distillation: the U-Net of each fold, kept above, teaches that fold's cascade
    common = ["--export", str(export), "--preset", "tiny", "--folds", "3", "--rows", "cascade", "--epochs", "1",
              "--steps", "2", "--batch", "4", "--val-size", "64", "--device", "cpu", "--no-latency", "--no-doc",
              "--only-folds", "1", "--teacher", "unet"]
    with pytest.raises(SystemExit):  # no U-Net kept in this work folder: refused before anything runs
        cv.main(common + ["--work", str(tmp_path / "work3")])
    assert "--teacher unet: no checkpoint of that row" in capsys.readouterr().err
    assert not (tmp_path / "work3").exists()
    taught = cv.main(common + ["--work", str(tmp_path / "work"), "--json", str(tmp_path / "taught.json")])
    (result,) = taught["results"]
    assert result["row"] == "+ cascade, distilled from U-Net (MobileNetV2 encoder), LMP"
    assert result["teacher"] == str(tmp_path / "work" / "runs" / "fold1-U-Net--MobileNetV2-encoder---LMP" / "run" / "last.pt")
    assert "| + cascade, distilled from U-Net (MobileNetV2 encoder), LMP | last |" in cv.section(taught, "cv-test")


def test_input_size_bench_scores_a_cvs_kept_checkpoints_at_each_size_and_chooses_on_inner_val_only(tmp_path, capsys):
    """bench/input_size.py: each fold's kept last.pt scored again at every size on its inner val and held-out
    photos; the chosen sizes read only the inner val; a CV run without kept checkpoints is refused."""
    from bench import cv, input_size

    torch.set_num_threads(1)
    export = make_synthetic_export(tmp_path / "export", train=6, val=3, size=(48, 40))
    common = ["--export", str(export), "--preset", "tiny", "--folds", "2", "--rows", "cascade", "--epochs", "1",
              "--steps", "2", "--batch", "4", "--val-size", "64", "--device", "cpu", "--no-latency", "--no-doc"]
    cv.main(common + ["--work", str(tmp_path / "work"), "--json", str(tmp_path / "cv.json"), "--keep-checkpoints"])
    report = input_size.main(["--cv-json", str(tmp_path / "cv.json"), "--work", str(tmp_path / "work"), "--sizes", "32",
                              "--latency-runs", "2", "--wait-idle", "0", "--no-doc", "--json", str(tmp_path / "s.json")])
    assert report["sizes"] == [32, 64] and report["cv_size"] == 64  # the CV's own size is always scored
    # the row's config built again from the run's JSON is the one its folds trained with
    run = json.loads((tmp_path / "cv.json").read_text())
    row = run["results"][0]["row"]
    trained = load_checkpoint(cv.fold_run_dir(tmp_path / "work", 0, row) / "run" / "last.pt")["config"]
    assert cv.row_config(row, cv.recorded_args(run["args"])).to_dict() == trained
    assert [f["fold"] for f in report["folds"]] == [0, 1]
    for fold in report["folds"]:
        assert set(fold) == {"fold", "val", "test"} and set(fold["test"]) == {"32", "64"}
        assert fold["test"]["64"]["images"] > 0 and fold["val"]["64"]["images"] > 0
    assert report["latency"]["32"]["input"] == "32x32" and report["latency"]["64"]["input"] == "64x64"
    text = capsys.readouterr().out
    assert "| 64 (the CV's) | 64x64 |" in text and "--sizes 32 --latency-runs 2" in report["command"] and "| chosen on inner val, per-fold: " in text
    assert json.loads((tmp_path / "s.json").read_text())["chosen"] == report["chosen"]
    input_size.main(["--from-json", str(tmp_path / "s.json"), "--no-doc"])  # the doc of a run made before
    assert capsys.readouterr().out.strip() == input_size.section(report, "input-size")
    with pytest.raises(SystemExit):
        input_size.main(["--work", str(tmp_path / "work"), "--no-doc"])
    assert "--cv-json and --work are needed" in capsys.readouterr().err
    # The choice reads the inner val alone; a tie goes to the smaller size.
    folds = [{"val": {"32": {"miou": 0.5}, "64": {"miou": 0.7}}, "test": {"32": {"miou": 0.9}, "64": {"miou": 0.1}}},
             {"val": {"32": {"miou": 0.6}, "64": {"miou": 0.6}}, "test": {"32": {"miou": 0.1}, "64": {"miou": 0.9}}}]
    assert input_size.choose(folds, [32, 64]) == {"per-fold": [64, 32], "pooled": [64, 64]}
    cv.main(common + ["--work", str(tmp_path / "bare"), "--json", str(tmp_path / "bare.json")])
    with pytest.raises(SystemExit):
        input_size.main(["--cv-json", str(tmp_path / "bare.json"), "--work", str(tmp_path / "bare"), "--no-doc"])
    assert "no kept last.pt (run bench/cv.py with --keep-checkpoints" in capsys.readouterr().err


def test_a_scorer_sweeps_nail_thresholds_from_one_run_and_its_half_is_the_argmax(tmp_path):
    """FullResScorer.sweep cuts the nail probability at each threshold from one run per photo: at 0.5 it is what
    scoring does (the argmax of the two nail logits), and a lower cut never paints fewer pixels."""
    torch.set_num_threads(1)
    export = make_synthetic_export(tmp_path / "export", train=4, val=3, size=(48, 40))
    scorer = FullResScorer(export, "val", long_side=64, device="cpu")

    class Brightness(torch.nn.Module):  # nail logit from the photo's brightness: probabilities spread over (0, 1)
        def forward(self, x):
            b = x.shape[0]
            fg = torch.cat([torch.zeros_like(x[:, :1]), 8 * (x.mean(1, keepdim=True) - 0.5)], 1)
            return fg, torch.zeros(b, 10, *x.shape[-2:]), torch.zeros(b, 2, *x.shape[-2:])

    model = Brightness()
    swept = scorer.sweep(model, (0.3, 0.5, 0.7))
    assert list(swept) == [0.3, 0.5, 0.7] and swept[0.5] == scorer(model)
    painted = {t: [s["tp"] + s["fp"] for s in scores] for t, scores in swept.items()}
    assert all(lo >= mid >= hi for lo, mid, hi in zip(painted[0.3], painted[0.5], painted[0.7]))
    assert sum(painted[0.3]) > sum(painted[0.5]) > sum(painted[0.7]) > 0  # the cut matters


def test_threshold_bench_scores_a_cvs_kept_checkpoints_at_each_cut_and_chooses_on_inner_val_only(tmp_path, capsys):
    """bench/fg_threshold.py: each fold's kept last.pt cut at every threshold (0.5 always among them) on its inner
    val and held-out photos; the chosen thresholds read only the inner val, a tie going to the one nearest 0.5."""
    from bench import cv, fg_threshold

    torch.set_num_threads(1)
    export = make_synthetic_export(tmp_path / "export", train=6, val=3, size=(48, 40))
    cv.main(["--export", str(export), "--preset", "tiny", "--folds", "2", "--rows", "cascade", "--epochs", "1",
             "--steps", "2", "--batch", "4", "--val-size", "64", "--device", "cpu", "--no-latency", "--no-doc",
             "--work", str(tmp_path / "work"), "--json", str(tmp_path / "cv.json"), "--keep-checkpoints"])
    cv_results = json.loads((tmp_path / "cv.json").read_text())["results"]
    report = fg_threshold.main(["--cv-json", str(tmp_path / "cv.json"), "--work", str(tmp_path / "work"),
                                "--thresholds", "0.3,0.7", "--no-doc", "--json", str(tmp_path / "t.json")])
    assert report["thresholds"] == [0.3, 0.5, 0.7] and report["size"] == 64
    for fold in report["folds"]:
        assert set(fold["test"]) == set(fold["val"]) == {"0.3", "0.5", "0.7"}
        assert fold["test"]["0.3"]["recall"] >= fold["test"]["0.5"]["recall"] >= fold["test"]["0.7"]["recall"]
        assert fold["test"]["0.5"]["miou"] == next(r for r in cv_results if r["fold"] == fold["fold"])["selections"]["last"]["scores"]["miou"]
    text = capsys.readouterr().out
    assert "| 0.5 (today's) |" in text and "| chosen on inner val, pooled: " in text
    fg_threshold.main(["--from-json", str(tmp_path / "t.json"), "--no-doc"])
    assert capsys.readouterr().out.strip() == fg_threshold.section(report, "fg-threshold")
    with pytest.raises(SystemExit):
        fg_threshold.main(["--cv-json", str(tmp_path / "cv.json"), "--work", str(tmp_path / "work"),
                           "--thresholds", "0.3,1.5", "--no-doc"])
    assert "--thresholds: each must be between 0 and 1" in capsys.readouterr().err
    folds = [{"val": {"0.4": {"miou": 0.7}, "0.5": {"miou": 0.7}, "0.6": {"miou": 0.5}}},  # a tie: 0.5
             {"val": {"0.4": {"miou": 0.6}, "0.5": {"miou": 0.5}, "0.6": {"miou": 0.55}}}]
    assert fg_threshold.choose_threshold(folds, [0.4, 0.5, 0.6]) == {"per-fold": [0.5, 0.4], "pooled": [0.4, 0.4]}
    third = [{"val": {fg_threshold.key(1 / 3): {"miou": 0.9}, "0.5": {"miou": 0.5}}}]  # found under the bench's key
    assert fg_threshold.choose_threshold(third, [1 / 3, 0.5])["per-fold"] == [1 / 3]


def test_cv_rows_train_at_the_benchs_learning_rate_and_photo_scale():
    """--lr, --base-long-side, --aux-weight, --iou-weight, --cpu-amp and --channels-last reach every row's training
    config; left out, the preset's stay."""
    import argparse

    from bench.cv import precision_note, row_config

    args = argparse.Namespace(size=224, base_long_side=None, preset="web-336", epochs=2, batch=4, steps=3, seed=0,
                              device="cpu", workers=0, val_size=480, lr=None, train_seed=None, aux_weight=None,
                              iou_weight=None, cpu_amp=False)
    plain = row_config("+ cascade", args)
    assert (plain.lr, plain.augment.base_long_side, plain.augment.crop_size) == (1e-3, None, 224)
    assert (plain.loss.aux_weight, plain.loss.fg_loss, plain.loss.iou_weight) == (1.0, "lmp", 0.0)
    changed = row_config("U-Net (MobileNetV2 encoder), LMP", argparse.Namespace(**{**vars(args), "lr": 3e-3,
                                                                                   "base_long_side": 480}))
    assert (changed.lr, changed.augment.base_long_side, changed.augment.crop_size) == (3e-3, 480, 224)
    light = row_config("baseline (weighted NLL, no cascade)", argparse.Namespace(**{**vars(args), "aux_weight": 0.25}))
    assert (light.loss.aux_weight, light.loss.fg_loss) == (0.25, "weighted")  # the row's own loss kept
    both = row_config("+ cascade", argparse.Namespace(**{**vars(args), "aux_weight": 0.5, "iou_weight": 0.75}))
    assert (both.loss.aux_weight, both.loss.iou_weight, both.loss.fg_loss) == (0.5, 0.75, "lmp")
    assert not plain.cpu_amp and row_config("+ cascade", argparse.Namespace(**{**vars(args), "cpu_amp": True})).cpu_amp
    nchw = row_config("+ cascade", argparse.Namespace(**{**vars(args), "channels_last": False}))
    assert plain.channels_last and not nchw.channels_last and nchw.lr == plain.lr  # NHWC unless asked for NCHW
    assert precision_note(False, True) == precision_note(False, False) == ""  # a float32 run says nothing of bf16
    assert precision_note(True, True) == ", bfloat16 native" and "trains in float32" in precision_note(True, False)
    assert plain.seed == 0 and row_config("+ cascade", argparse.Namespace(**{**vars(args), "train_seed": 7})).seed == 7


def test_fold_is_a_plain_value():
    fold = Fold(0, ("a",), ("b",), ("b",), (), ("p",), ())
    assert fold.to_dict()["test"] == ["a"]


def test_runs_merge_only_on_the_same_folds_and_the_later_latency_wins():
    from bench.cv import merge_reports

    base = {"folds": [{"test": ["a"]}], "args": {"epochs": 2, "select": ["last"]}, "seconds": 10.0,
            "command": "python bench/cv.py --rows cascade", "latency": {"+ cascade": {"360x480": 1}},
            "results": [{"row": "+ cascade"}], "commit": "abc1234"}
    other = {**base, "command": "python bench/cv.py --latency-only", "results": [{"row": "U-Net"}],
             "latency": {"+ cascade": {"360x480": 2}}, "seconds": 5.0,
             "args": {"epochs": 2, "select": ["last"], "latency_runs": 50}}
    merged = merge_reports([base, other])
    assert merged["args"]["latency_runs"] == 50  # the timing options of the run whose latency is shown
    assert merged["commit"] == "abc1234" and merge_reports([base, {**other, "commit": "def5678"}])["commit"] == \
        "abc1234 / def5678"
    assert [r["row"] for r in merged["results"]] == ["+ cascade", "U-Net"]
    assert merged["latency"]["+ cascade"] == {"360x480": 2} and merged["seconds"] == 15.0
    with pytest.raises(ValueError):
        merge_reports([base, {**other, "folds": [{"test": ["b"]}]}])
    with pytest.raises(ValueError):
        merge_reports([base, {**other, "args": {"epochs": 3, "select": ["last"]}}])
    with pytest.raises(ValueError):  # another learning rate is another budget
        merge_reports([base, {**other, "args": {"epochs": 2, "select": ["last"], "lr": 0.003}}])


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "nails-cc0"


@pytest.mark.skipif(not SHARED.exists(), reason=f"{SHARED} is not there (CI always has it)")
def test_bench_export_with_the_projects_labels_has_fingers_and_directions(tmp_path):
    """bench/cv.py --labels complete: the shared polygons merged with the project's fingers and base/tip, so the
    class and direction heads get labels; without them (the default) only the nail/background heads do. A label
    file that does not fit the COCO file is refused before anything is exported."""
    from bench.ablation import build_export
    from curation.demo_labels import DEMO_LABELS, DemoLabelsError

    complete = build_export(SHARED, tmp_path / "complete", labels=DEMO_LABELS)
    polygons = build_export(SHARED, tmp_path / "polygons")
    assert complete["images"] == polygons["images"] == 40 and complete["nails"] == polygons["nails"] == 227
    assert complete["labels"].endswith("nails-cc0-labels.json") and polygons["labels"] == "polygons"
    with_labels = MasksDataset(tmp_path / "complete", "train", train=False)
    without = MasksDataset(tmp_path / "polygons", "train", train=False)
    assert with_labels.has_classes and with_labels.has_landmarks
    assert not without.has_classes and not without.has_landmarks
    sample = with_labels.load(0)
    assert set(np.unique(sample["classes"])) - {0, 255} <= set(range(1, 11)) and sample["field_mask"].any()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"images": {"not-a-photo.jpg": {"999": {"finger": 1}}}}))
    with pytest.raises(DemoLabelsError):
        build_export(SHARED, tmp_path / "bad", labels=bad)
    assert not (tmp_path / "bad").exists() and not (tmp_path / "bad-coco").exists()
