"""Tests of ml/train.py and ml/evaluate.py: the tiny model measurably fits a synthetic masks export,
a killed and resumed run ends with exactly the weights of an uninterrupted one (CPU, fixed seed),
cancellation, early stopping, checkpoints, evaluation at several sizes."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace

import numpy as np
import pytest
import torch

import ml.train as train_module
from ml.checkpoint import load_checkpoint, load_model, rng_state, save_checkpoint, set_rng_state
from ml.data import MasksDataset, make_synthetic_export
from ml.evaluate import evaluate
from ml.predict import predict
from ml.losses import CascadeLoss
from ml.models.cascade import CascadeNet
from ml.models.config import model_config
from ml.train import (
    EpochOutcome,
    TrainConfig,
    epoch_record,
    resume_checkpoint,
    start_run,
    track_best,
    train,
    train_config,
    train_epoch,
    training_checkpoint,
)
from ml.train_presets import TRAIN_PRESETS


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small CPU convolutions gain nothing from two threads on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    return make_synthetic_export(tmp_path_factory.mktemp("synthetic") / "export", train=8, val=4, size=(64, 64), seed=1)


def _mean_loss(model, dataset, batches=3, batch_size=8):
    """Mean loss of ``model`` (a copy, BN on batch statistics) on fixed augmented batches."""
    model = copy.deepcopy(model).train()
    criterion = CascadeLoss()
    dataset.set_epoch(10_000)
    losses = []
    with torch.no_grad():
        for b in range(batches):
            items = [dataset[b * batch_size + i] for i in range(batch_size)]
            batch = torch.utils.data.default_collate(items)
            losses.append(criterion(model(batch["image"]), batch)[1])
    return {k: float(np.mean([x[k] for x in losses])) for k in losses[0]}


def test_tiny_model_measurably_fits(export, tmp_path):
    config = train_config("tiny", epochs=3, steps_per_epoch=25)
    torch.manual_seed(config.seed)
    untrained = CascadeNet(config.model)
    messages = []
    result = train(config, export, tmp_path / "run", on_progress=lambda f, m: messages.append((f, m)))
    assert result["status"] == "completed" and result["epochs_completed"] == 3
    history = result["history"]
    model, meta = load_model(result["last_checkpoint"])
    data = MasksDataset(export, "train", augment=config.augment, seed=99)
    before, after = _mean_loss(untrained, data), _mean_loss(model, data)
    assert after["total"] < 0.7 * before["total"], (before, after)
    assert after["fg"] < 0.6 * before["fg"], (before, after)
    assert history[-1]["train_loss"] < 0.75 * history[0]["train_loss"]
    assert history[-1]["train_miou"] > 0.68, history
    assert history[-1]["val"]["miou"] > 0.6, history[-1]["val"]
    assert history[-1]["val"]["nail_iou"] > 0.3
    assert history[-1]["val"]["direction_error_deg"] is not None  # the export has landmarks
    assert history[-1]["val"]["finger_iou"]  # and classes
    # progress: fractions rise to 1, one message per step plus epoch summaries
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert sum("step" in m for _, m in messages) == 75
    assert any("val mIoU" in m for _, m in messages)
    assert json.loads((tmp_path / "run" / "history.json").read_text())[-1]["epoch"] == 3


def test_refined_cascade_trains_and_reloads(export, tmp_path):
    """A few steps of the tiny cascade with the boundary refinement: the loss over all four outputs falls,
    the refinement's weights learn, and its checkpoint rebuilds the same architecture."""
    config = train_config("tiny", epochs=1, steps_per_epoch=12, model={"refine_stride": 4, "refine_width": 8})
    torch.manual_seed(config.seed)
    untrained = CascadeNet(config.model)
    result = train(config, export, tmp_path / "run")
    model, meta = load_model(result["last_checkpoint"])
    assert model.refine is not None and meta["config"]["model"]["refine_stride"] == 4
    assert len(model(torch.rand(1, 3, 64, 64), all_scales=True)) == 4
    data = MasksDataset(export, "train", augment=config.augment, seed=99)
    before, after = _mean_loss(untrained, data), _mean_loss(model, data)
    assert after["fg"] < 0.8 * before["fg"], (before, after)
    trained = dict(model.named_parameters())
    for name, value in untrained.refine.named_parameters():
        assert not torch.equal(value, trained[f"refine.{name}"]), name


def test_a_teacher_pulls_the_student_toward_its_predictions(export, tmp_path):
    """Knowledge distillation (``TrainConfig.teacher``): a teacher's nail/background predictions are a second
    target. Here the teacher (a U-Net: any architecture) is made to call most pixels nail; the student trained
    with it ends far closer to it, calling many more pixels nail, than the same run without it. The
    distillation term is logged, and the teacher's checkpoint is read, never changed."""
    from ml.losses import distillation_kl
    from ml.models.config import model_config

    teacher_run = train(train_config("tiny", model=model_config("tiny-unet"), epochs=1, steps_per_epoch=2),
                        export, tmp_path / "teacher")
    teacher_path = teacher_run["last_checkpoint"]
    ckpt = load_checkpoint(teacher_path)
    ckpt["model"]["head.bias"][1] += 4.0  # nail logit up: a teacher that disagrees with the labels
    torch.save(ckpt, teacher_path)
    teacher_bytes = (tmp_path / "teacher" / "last.pt").read_bytes()
    base = train_config("tiny", epochs=2, steps_per_epoch=10, loss={"distill_weight": 5.0, "distill_ratio": 1.0})
    plain = train(base, export, tmp_path / "plain")
    taught = train(replace(base, teacher=teacher_path), export, tmp_path / "taught")
    assert plain["history"][0]["train_distill_loss"] == 0.0 and taught["history"][0]["train_distill_loss"] > 0
    assert load_checkpoint(taught["last_checkpoint"])["config"]["teacher"] == teacher_path
    assert (tmp_path / "teacher" / "last.pt").read_bytes() == teacher_bytes
    teacher, _ = load_model(teacher_path)
    data = MasksDataset(export, "val", train=False, eval_size=64)
    images = torch.stack([data[i]["image"] for i in range(len(data))])
    with torch.no_grad():  # the students on batch statistics: 20 steps leave their BN running means unsettled
        target = teacher(images).fg
        students = {name: load_model(run["last_checkpoint"])[0].train()(images, all_scales=False).fg
                    for name, run in (("plain", plain), ("taught", taught))}
    gaps = {name: distillation_kl(fg, target, ratio=1.0).item() for name, fg in students.items()}
    nail = {name: (fg.argmax(1) == 1).float().mean().item() for name, fg in students.items()}
    assert gaps["taught"] < 0.5 * gaps["plain"], gaps
    assert nail["taught"] > nail["plain"] + 0.2, nail
    with pytest.raises(FileNotFoundError):  # a teacher that is not there stops the run before it starts
        train(replace(base, teacher=str(tmp_path / "missing.pt")), export, tmp_path / "none")


class Killed(Exception):
    pass


def _state(path):
    return load_checkpoint(path)


def test_kill_and_resume_gives_identical_weights(export, tmp_path):
    config = train_config("tiny", epochs=2, steps_per_epoch=3, batch_size=4)
    straight = train(config, export, tmp_path / "straight")
    assert straight["status"] == "completed"

    def kill(fraction, message):
        if message.startswith("epoch 2/2 step 2/"):
            raise Killed  # the process dies mid-epoch 2: only epoch 1's checkpoint exists

    with pytest.raises(Killed):
        train(config, export, tmp_path / "killed", on_progress=kill)
    assert _state(tmp_path / "killed" / "last.pt")["epoch"] == 1
    assert not [p for p in (tmp_path / "killed").iterdir() if p.name.endswith(".tmp")]
    messages = []
    resumed = train(config, export, tmp_path / "killed", resume=True, on_progress=lambda f, m: messages.append(m))
    assert messages[0].startswith("resumed from last.pt after epoch 1")
    assert resumed["status"] == "completed" and resumed["epochs_completed"] == 2

    a, b = _state(tmp_path / "straight" / "last.pt"), _state(tmp_path / "killed" / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        for k in sa:
            assert torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k]))
    assert a["scheduler"] == b["scheduler"] and a["global_step"] == b["global_step"] == 6
    strip = (lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h])
    assert strip(a["history"]) == strip(b["history"])
    # a finished run resumed again does nothing
    again = train(config, export, tmp_path / "killed", resume=True)
    assert again["epochs_completed"] == 2
    # resuming with another config is refused
    with pytest.raises(ValueError, match="config differs in lr"):
        train(config, export, tmp_path / "killed", resume=True, lr=0.5)


def test_cancel_keeps_the_last_epoch(export, tmp_path):
    steps = []

    def should_stop():
        return len(steps) >= 4  # during epoch 2 (3 steps per epoch)

    result = train("tiny", export, tmp_path, epochs=3, steps_per_epoch=3, batch_size=4,
                   on_progress=lambda f, m: steps.append(m) if " step " in m else None, should_stop=should_stop)
    assert result["status"] == "cancelled" and result["epochs_completed"] == 1
    assert _state(result["last_checkpoint"])["epoch"] == 1
    assert result["checkpoint"].endswith("best.pt")


def test_early_stopping_on_val_miou(export, tmp_path, monkeypatch):
    scores = iter([0.5, 0.6, 0.55, 0.58, 0.9])
    monkeypatch.setattr(train_module, "validate", lambda *a, **k: {"miou": next(scores)})
    result = train("tiny", export, tmp_path, epochs=5, steps_per_epoch=1, batch_size=2, patience=2)
    assert result["status"] == "early_stopped"
    assert result["epochs_completed"] == 4 and result["best_epoch"] == 2
    assert result["best_metrics"] == {"miou": 0.6}
    best = load_checkpoint(result["checkpoint"])
    assert best["epoch"] == 2 and best["metrics"] == {"miou": 0.6}


def test_a_run_keeps_the_last_epoch_when_asked_and_says_which_it_kept(export, tmp_path, monkeypatch):
    """keep="last" (a fixed schedule): best.pt holds the last epoch and the platform registers its metrics,
    while best_* still name the best val epoch; keep="best-val" (the default) keeps the best val epoch;
    a resumed finished run says the same; an unknown keep is refused."""
    values = [0.5, 0.9, 0.7, 0.6] * 2
    scores = iter(values)
    monkeypatch.setattr(train_module, "validate", lambda *a, **k: {"miou": next(scores)})
    result = train("tiny", export, tmp_path / "last", epochs=4, steps_per_epoch=1, batch_size=2, keep="last")
    assert result["status"] == "completed" and result["keep"] == "last"
    assert (result["best_epoch"], result["best_metrics"]) == (2, {"miou": 0.9})
    assert (result["kept_epoch"], result["kept_metrics"]) == (4, {"miou": 0.6})
    kept = load_checkpoint(result["checkpoint"])
    assert kept["epoch"] == 4 and kept["metrics"] == {"miou": 0.6}
    last = _state(result["last_checkpoint"])["model"]
    assert all(torch.equal(value, last[key]) for key, value in kept["model"].items())  # the last epoch's weights
    again = train("tiny", export, tmp_path / "last", epochs=4, steps_per_epoch=1, batch_size=2, keep="last")
    assert (again["kept_epoch"], again["kept_metrics"]) == (4, {"miou": 0.6})  # the finished run, read back
    best = train("tiny", export, tmp_path / "best", epochs=4, steps_per_epoch=1, batch_size=2)
    assert best["keep"] == "best-val" and (best["kept_epoch"], best["kept_metrics"]) == (2, {"miou": 0.9})
    assert load_checkpoint(best["checkpoint"])["epoch"] == 2
    with pytest.raises(ValueError, match="keep must be one of best-val, last, got 'first'"):
        train_config("tiny", keep="first")


def test_config_round_trip_and_presets():
    for name in TRAIN_PRESETS:
        config = train_config(name)
        assert TrainConfig.from_dict(json.loads(config.to_json())) == config, name
    tiny = train_config("tiny")
    assert tiny.model.width_mult == 0.25 and tiny.model.fusion_width == 32 and tiny.augment.crop_size == 64
    assert train_config("web-336").augment.crop_size == 336 and train_config("native-448").augment.crop_size == 448
    config = train_config("web-336", epochs=5, model={"fusion_width": 128}, loss={"fg_loss": "weighted"})
    assert config.model.fusion_width == 128 and config.model.depth == 55 and config.loss.fg_loss == "weighted"
    with pytest.raises(ValueError, match="unknown train preset"):
        train_config("huge")


def test_checkpoint_evaluate_and_predict(export, tmp_path):
    result = train("tiny", export, tmp_path, epochs=1, steps_per_epoch=2)
    model, meta = load_model(result["checkpoint"])
    assert not model.training and meta["config"]["model"]["fusion_width"] == 32
    report = evaluate(result["checkpoint"], export, "val", sizes=(64, 96))
    assert set(report["sizes"]) == {64, 96}
    for size, metrics in report["sizes"].items():
        assert metrics["images"] == 4 and metrics["ms_per_image"] > 0
        assert 0.0 <= metrics["miou"] <= 1.0
    plain = evaluate(model, export, "val", sizes=(64,), optimize=False)
    assert plain["sizes"][64]["miou"] == pytest.approx(report["sizes"][64]["miou"], abs=0.02)
    image = MasksDataset(export, "val", train=False).load(0)["image"]
    out = predict(model, image, size=64)
    assert out.fg_prob.shape == image.shape[:2] and out.fg_prob.dtype == np.float32
    assert 0 <= out.fg_prob.min() and out.fg_prob.max() <= 1


def test_pretrained_encoders_get_measured_bn_statistics_before_training(export):
    from ml.weights.sources import default_weights_dir

    if not (default_weights_dir() / "mobilenet_v2_1.0_224_quant.tflite").is_file():
        pytest.skip("TFLite weights not present")
    config = train_config("tiny", model={"width_mult": 1.0, "pretrained": "imagenet-tflite", "depth": 43},
                          recalibrate_batches=1, batch_size=2)
    model = CascadeNet(config.model).eval()
    decoder_before = copy.deepcopy(model.fusion0.dilated.bn.state_dict())
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        before = model.low(model.normalize(x)).clone()
    data = MasksDataset(export, "train", augment=config.augment, seed=0)
    assert train_module._recalibrate(model, data, config, torch.device("cpu"))
    bn = model.low.stages[0].bn
    assert not torch.allclose(bn.running_var, torch.full_like(bn.running_var, 1 - bn.eps))  # measured now
    with torch.no_grad():
        after = model.low.eval()(model.normalize(x))
    assert torch.allclose(before, after, atol=1e-4)  # the pretrained function is kept in eval mode
    for key, value in model.fusion0.dilated.bn.state_dict().items():
        assert torch.equal(value, decoder_before[key]), key  # the decoder is not touched
    assert not train_module._recalibrate(CascadeNet(train_config("tiny").model), data, config, torch.device("cpu"))


@pytest.mark.parametrize("preset", ["tiny", "tiny-low1", "tiny-shared"])
def test_batchnorm_recalibration_feeds_each_encoder_what_the_forward_feeds_it(preset):
    """The BN statistics are measured on the encoders' own inputs: the low branch at half the photo's size, or
    at its full size when ``low_downsample=1`` (measured at half size, its statistics would be for the wrong
    scale); the high branch (when there is one) on the photo."""
    model = CascadeNet(train_config("tiny", model=model_config(preset)).model).train()
    seen: dict[str, list] = {"low": [], "high": []}
    hooks = [model.low.stages[0].register_forward_pre_hook(lambda m, a: seen["low"].append(tuple(a[0].shape[-2:])))]
    if model.high is not None:
        hooks.append(model.high.stages[0].register_forward_pre_hook(
            lambda m, a: seen["high"].append(tuple(a[0].shape[-2:]))))
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        model(x)
        train_module._Encoders(model)(x)
    for hook in hooks:
        hook.remove()
    assert len(seen["low"]) == 2 and seen["low"][0] == seen["low"][1]
    assert seen["low"][0] == ((64, 96) if model.config.low_downsample == 1 else (32, 48))
    assert seen["high"] == ([] if model.high is None else [(64, 96), (64, 96)])


def test_one_epoch_moves_the_run_and_its_checkpoint_resumes_the_config(export, tmp_path):
    """The pieces of train(): a fresh run, one epoch of steps, its record, the best-epoch tracking, the
    checkpoint it saves, and the resume check of that checkpoint's config."""
    config = train_config("tiny", epochs=2, steps_per_epoch=2, batch_size=4, device="cpu")
    device = torch.device("cpu")
    run = start_run(config, device, None, total_steps=4, load_pretrained=True)
    data = MasksDataset(export, "train", train=True, augment=config.augment, seed=config.seed)
    messages = []
    outcome = train_epoch(run, data, config, 2, device, None, lambda f, m: messages.append(m), lambda: False)
    assert isinstance(outcome, EpochOutcome) and outcome.steps == 2 and not outcome.cancelled
    assert run.global_step == 2 and run.epoch == 0 and len(messages) == 2
    train_metrics = outcome.metrics.compute()
    record = epoch_record(run, outcome, train_metrics, None, 1.0)
    assert record["epoch"] == 1 and record["train_loss"] == pytest.approx(outcome.sums["total"] / 2)
    assert track_best(run, {"miou": 0.5}, None) and run.best["epoch"] == 1 and run.bad_epochs == 0
    assert not track_best(run, {"miou": 0.4}, {"miou": None}) and run.bad_epochs == 1
    run.epoch = 1
    save_checkpoint(training_checkpoint(run, config, "running", False, {"snapshot": None}), tmp_path / "last.pt")
    ckpt, path = resume_checkpoint(config, tmp_path, True)
    assert path == tmp_path / "last.pt" and ckpt["epoch"] == 1 and ckpt["global_step"] == 2
    assert resume_checkpoint(config, tmp_path, False) == (None, None)
    assert resume_checkpoint(train_config(config, device="cuda"), tmp_path, True)[0]  # device may change
    with pytest.raises(ValueError, match="config differs in lr"):
        resume_checkpoint(train_config(config, lr=0.5), tmp_path, True)
    stopped = train_epoch(run, data, config, 2, device, None, lambda f, m: None, lambda: True)
    assert stopped.cancelled and stopped.steps == 0 and run.global_step == 2


def test_rng_state_round_trip():
    state = rng_state()
    first = (torch.rand(3), np.random.rand(), random.random())
    set_rng_state(state)
    again = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]


def test_cpu_amp_trains_in_bfloat16_only_where_the_cpu_has_it(export, tmp_path, monkeypatch):
    """``cpu_amp``: bfloat16 autocast on a CPU with native bf16, float32 elsewhere and when off; a run with it
    learns and its checkpoint is plain float32 weights (what the exports and the predictor load)."""
    import ml.device as device_module

    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda native=native: native)
        assert device_module.amp_dtype(cpu, cpu=True) == (torch.bfloat16 if native else None)
        assert device_module.amp_dtype(cpu, cpu=False) is None and device_module.amp_dtype(cpu) is None
    assert device_module.amp_dtype(torch.device("cuda"), cuda=False) is None
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: True)
    seen = []
    real_autocast = torch.autocast

    def recording_autocast(*args, **kwargs):
        seen.append((kwargs.get("dtype"), kwargs.get("enabled", True)))
        return real_autocast(*args, **kwargs)

    monkeypatch.setattr(torch, "autocast", recording_autocast)
    config = train_config("tiny", epochs=1, steps_per_epoch=12, cpu_amp=True)
    torch.manual_seed(config.seed)
    untrained = CascadeNet(config.model)
    result = train(config, export, tmp_path / "run")
    assert (torch.bfloat16, True) in seen
    model, meta = load_model(result["last_checkpoint"])
    assert meta["config"]["cpu_amp"] is True
    assert all(p.dtype == torch.float32 for p in model.parameters())
    data = MasksDataset(export, "train", augment=config.augment, seed=99)
    before, after = _mean_loss(untrained, data), _mean_loss(model, data)
    assert after["fg"] < 0.8 * before["fg"], (before, after)


def test_channels_last_trains_in_nhwc_and_changes_only_rounding(export, tmp_path):
    """``channels_last``: the model's conv weights and each batch's images are NHWC while the run trains (the
    masks keep their layout); the same weights give the same outputs in either layout up to float rounding;
    the run learns, and its checkpoint loads into a plain model that predicts what the trained one does."""
    from ml.device import memory_format
    from ml.train import _to

    assert memory_format(True) == torch.channels_last and memory_format(False) == torch.contiguous_format
    batch = {"image": torch.rand(2, 3, 8, 8), "fg": torch.zeros(2, 8, 8, dtype=torch.long)}
    moved = _to(batch, torch.device("cpu"), memory_format(True))
    assert moved["image"].is_contiguous(memory_format=torch.channels_last) and not batch["image"].is_contiguous(
        memory_format=torch.channels_last)
    assert moved["fg"].is_contiguous() and torch.equal(moved["image"], batch["image"])

    config = train_config("tiny", epochs=1, steps_per_epoch=12, channels_last=True)
    torch.manual_seed(config.seed)
    untrained = CascadeNet(config.model).eval()
    nhwc = copy.deepcopy(untrained).to(memory_format=torch.channels_last)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        plain_out, nhwc_out = untrained(images), nhwc(images.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(plain_out.fg, nhwc_out.fg, atol=1e-4) and torch.allclose(plain_out.field, nhwc_out.field,
                                                                                   atol=1e-4)
    layouts, as_trained = [], []

    def on_epoch(record, model):
        convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.weight.shape[-1] > 1]
        layouts.append(all(w.is_contiguous(memory_format=torch.channels_last) for w in convs))
        as_trained.append(copy.deepcopy(model).eval())  # the NHWC model itself, not its checkpoint

    result = train(config, export, tmp_path / "run", on_epoch=on_epoch)
    assert layouts == [True]
    model, meta = load_model(result["last_checkpoint"])
    assert meta["config"]["channels_last"] is True
    data = MasksDataset(export, "train", augment=config.augment, seed=99)
    before, after = _mean_loss(untrained, data), _mean_loss(model, data)
    assert after["fg"] < 0.8 * before["fg"], (before, after)
    plain = CascadeNet(config.model).eval()
    plain.load_state_dict(load_checkpoint(result["last_checkpoint"])["model"])
    assert not any(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
                   for p in plain.parameters())  # a plain NCHW model ...
    with torch.no_grad():  # ... predicts what the NHWC model that trained does
        nhwc_images = images.contiguous(memory_format=torch.channels_last)
        assert torch.allclose(plain(images).fg, as_trained[-1](nhwc_images).fg, atol=1e-4)
