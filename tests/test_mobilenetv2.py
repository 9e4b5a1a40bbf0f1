"""Tests of ml/models/mobilenetv2.py and ml/weights/: stage geometry, options, torchvision key mapping,
TFLite conversion.

Plain PyTorch, no Django: run with
``.venv/bin/python -m pytest tests/test_mobilenetv2.py -q -p no:django``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ml.models.backbones import mobilenet_v2, mobilenet_v2_classifier
from ml.models.mobilenetv2 import (
    OS16_STAGE_DILATIONS,
    OS16_STAGE_STRIDES,
    STAGE_SETTINGS,
    ConvBNAct,
    MobileNetV2,
    MobileNetV2Classifier,
    TFSamePad2d,
    make_divisible,
    tf_same_padding,
)
from ml.weights.loading import load_pretrained, recalibrate_batchnorm
from ml.weights.sources import (
    WEIGHT_SOURCES,
    WeightsError,
    default_weights_dir,
    load_imagenet_labels,
    normalize_input,
    resolve_weights_path,
)
from ml.weights.torchvision import torchvision_key_map, torchvision_state_dict

WIDTH1_CHANNELS = [32, 16, 24, 32, 64, 96, 160, 320]
SIZES_224 = [112, 112, 56, 28, 14, 14, 7, 7]
# ImageNet (1000-class) ids of the cat classes: tabby, tiger cat, Persian, Siamese, Egyptian cat.
CAT_IDS = set(range(281, 286))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One intra-op thread: these small CPU convolutions gain little from two threads, and on a busy
    2-core machine (CI runs the servers beside the tests) spinning OpenMP threads made them 3-5x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------
# Architecture
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def width1_outputs():
    model = mobilenet_v2().eval()
    with torch.no_grad():
        return model, model.forward_stages(torch.randn(1, 3, 224, 224))


def test_stage_channels_and_sizes_at_width_1(width1_outputs):
    model, outs = width1_outputs
    assert len(outs) == model.num_stages == 8
    assert [o.shape[1] for o in outs] == WIDTH1_CHANNELS == model.stage_channels
    assert [o.shape[2] for o in outs] == SIZES_224
    assert [o.shape[3] for o in outs] == SIZES_224
    assert model.stage_output_strides == [2, 2, 4, 8, 16, 16, 32, 32]
    assert model.out_channels == 320
    # Stages are the (t, c, n, s) groups: stage k holds n blocks; the stem is one conv.
    assert isinstance(model.stage(1), ConvBNAct)
    assert [len(model.stage(k)) for k in range(2, 9)] == [n for _, _, n, _ in STAGE_SETTINGS]
    # No 1280-channel conv nor classifier in the feature extractor.
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert max(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)) == 960


def test_forward_stages_upto_and_forward(width1_outputs):
    model, outs = width1_outputs
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        first4 = model.forward_stages(x, upto=4)
        assert len(first4) == 4
        torch.testing.assert_close(model(x), model.forward_stages(x)[-1])
    with pytest.raises(ValueError):
        model.forward_stages(x, upto=9)
    with pytest.raises(IndexError):
        model.stage(0)


def test_low_branch_dilation_keeps_14x14_at_stages_7_and_8():
    model = mobilenet_v2(stage_strides=OS16_STAGE_STRIDES, stage_dilations=OS16_STAGE_DILATIONS).eval()
    with torch.no_grad():
        outs = model.forward_stages(torch.randn(1, 3, 224, 224))
    assert [o.shape[-1] for o in outs] == [112, 112, 56, 28, 14, 14, 14, 14]
    assert [o.shape[1] for o in outs] == WIDTH1_CHANNELS
    assert model.stage_output_strides[-1] == 16
    # Stage 7's first block has stride 1; every depthwise conv of stages 7 and 8 has dilation 2.
    assert model.stage(7)[0].dw.conv.stride == (1, 1)
    for k in (7, 8):
        for block in model.stage(k):
            assert block.dw.conv.dilation == (2, 2) and block.dw.conv.padding == (2, 2)
    for k in range(2, 7):
        assert all(b.dw.conv.dilation == (1, 1) for b in model.stage(k))
    # Same parameter shapes as the plain network: pretrained weights load unchanged.
    plain = {k: v.shape for k, v in mobilenet_v2().state_dict().items()}
    assert {k: v.shape for k, v in model.state_dict().items()} == plain


def test_num_stages_builds_a_prefix():
    high = mobilenet_v2(num_stages=4).eval()
    assert len(high.stages) == 4 and high.out_channels == 32
    with torch.no_grad():
        out = high(torch.randn(2, 3, 96, 128))
    assert out.shape == (2, 32, 12, 16)
    assert set(high.state_dict()) < set(mobilenet_v2().state_dict())


@pytest.mark.parametrize(
    "width, channels",
    [(0.25, [8, 8, 8, 8, 16, 24, 40, 80]), (0.35, [16, 8, 8, 16, 24, 32, 56, 112])],
)
def test_tiny_width_builds_and_trains(width, channels):
    model = mobilenet_v2(width_mult=width, stage_strides=OS16_STAGE_STRIDES, stage_dilations=OS16_STAGE_DILATIONS)
    assert model.stage_channels == channels
    assert channels == [make_divisible(32 * width)] + [make_divisible(c * width) for _, c, _, _ in STAGE_SETTINGS]
    outs = model.forward_stages(torch.randn(2, 3, 64, 64))
    assert [o.shape[1] for o in outs] == channels
    assert outs[-1].shape[-1] == 4
    sum(o.mean() for o in outs).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_per_stage_argument_forms():
    seq = mobilenet_v2(width_mult=0.25, stage_strides=[2, 1, 2, 2, 2, 1, 1, 1])
    assert seq.stage_strides == [2, 1, 2, 2, 2, 1, 1, 1]
    short = mobilenet_v2(width_mult=0.25, num_stages=3, stage_strides=[1, 1, 2])
    assert short.stage_strides == [1, 1, 2] and short.stage(1).conv.stride == (1, 1)
    assert mobilenet_v2(width_mult=0.25, num_stages=3, stage_strides=[2] * 8).stage_strides == [2, 2, 2]
    for bad in ({9: 1}, {0: 1}, [2, 1, 2], {7: 0}, {7: 1.5}):
        with pytest.raises(ValueError):
            mobilenet_v2(width_mult=0.25, stage_strides=bad)
    with pytest.raises(ValueError):  # stage 7 is not built
        mobilenet_v2(width_mult=0.25, num_stages=4, stage_dilations=OS16_STAGE_DILATIONS)
    with pytest.raises(ValueError):
        MobileNetV2(num_stages=0)


def test_bn_settings_are_configurable():
    model = mobilenet_v2(width_mult=0.25, bn_eps=1e-3, bn_momentum=0.003)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(b.eps == 1e-3 and b.momentum == 0.003 for b in bns)
    default = [m for m in mobilenet_v2(width_mult=0.25).modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(b.eps == 1e-5 and b.momentum == 0.1 for b in default)


# --------------------------------------------------------------------------------------------------
# TensorFlow "SAME" padding
# --------------------------------------------------------------------------------------------------


def test_tf_same_padding_rule():
    assert tf_same_padding(224, 3, 2) == (0, 1)
    assert tf_same_padding(225, 3, 2) == (1, 1)
    assert tf_same_padding(112, 3, 1) == (1, 1)
    assert tf_same_padding(14, 3, 1, dilation=2) == (2, 2)
    assert tf_same_padding(7, 1, 1) == (0, 0)


def test_tf_padding_pads_bottom_right_before_stride_2_convs():
    conv = nn.Conv2d(4, 4, 3, stride=2, bias=False)
    pad = TFSamePad2d(3, 2)
    x = torch.randn(1, 4, 10, 12)
    torch.testing.assert_close(conv(pad(x)), conv(F.pad(x, (0, 1, 0, 1))))
    x = torch.randn(1, 4, 11, 12)
    torch.testing.assert_close(conv(pad(x)), conv(F.pad(x, (0, 1, 1, 1))))

    tf = mobilenet_v2(width_mult=0.25, tf_padding=True).eval()
    pt = mobilenet_v2(width_mult=0.25, tf_padding=False).eval()
    assert list(tf.state_dict()) == list(pt.state_dict())  # no key depends on the padding mode
    pt.load_state_dict(tf.state_dict())
    pads = [m for m in tf.modules() if isinstance(m, TFSamePad2d)]
    assert len(pads) == 5  # stem + the first blocks of stages 3, 4, 5, 7
    for size in (224, 225, 97):
        x = torch.randn(1, 3, size, size)
        with torch.no_grad():
            a, b = tf.forward_stages(x), pt.forward_stages(x)
        assert [o.shape for o in a] == [o.shape for o in b]
        # Odd sizes: "SAME" pads (1, 1) like PyTorch. Even sizes: (0, 1), so the sampling grid moves.
        assert torch.allclose(a[0], b[0]) == (size % 2 == 1)


# --------------------------------------------------------------------------------------------------
# torchvision checkpoints
# --------------------------------------------------------------------------------------------------


class _TVConvBNReLU(nn.Sequential):
    """torchvision's Conv2dNormActivation layout: [conv, bn, relu6]."""

    def __init__(self, inp, oup, kernel=3, stride=1, groups=1):
        super().__init__(
            nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(oup),
            nn.ReLU6(inplace=True),
        )


class _TVInvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, t):
        super().__init__()
        hidden = int(round(inp * t))
        self.use_res_connect = stride == 1 and inp == oup
        layers = [] if t == 1 else [_TVConvBNReLU(inp, hidden, kernel=1)]
        layers += [
            _TVConvBNReLU(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, oup, 1, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TorchvisionLayoutMobileNetV2(nn.Module):
    """A reference written the way torchvision.models.mobilenetv2 is, so that its state-dict keys are
    produced by PyTorch from torchvision's module layout (features.N..., classifier.1...)."""

    def __init__(self, width_mult=1.0, num_classes=1000):
        super().__init__()
        inp = make_divisible(32 * width_mult)
        last = make_divisible(1280 * max(1.0, width_mult))
        features = [_TVConvBNReLU(3, inp, stride=2)]
        for t, c, n, s in STAGE_SETTINGS:
            oup = make_divisible(c * width_mult)
            for i in range(n):
                features.append(_TVInvertedResidual(inp, oup, s if i == 0 else 1, t))
                inp = oup
        features.append(_TVConvBNReLU(inp, last, kernel=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))

    def forward(self, x):
        x = F.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


def _randomize(model: nn.Module) -> nn.Module:
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.2, generator=g)
                m.running_mean.normal_(0, 0.2, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
                m.num_batches_tracked.fill_(1234)
    return model.eval()


@pytest.fixture(scope="module")
def tv_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    ref = _randomize(TorchvisionLayoutMobileNetV2())
    path = tmp_path_factory.mktemp("tv") / "tv_layout_mobilenet_v2.pth"
    torch.save(ref.state_dict(), path)
    return ref, path


def test_torchvision_key_map_covers_both_layouts():
    mapping = torchvision_key_map()
    tv_keys = set(TorchvisionLayoutMobileNetV2().state_dict())
    ours = MobileNetV2Classifier().state_dict()
    assert set(mapping) == tv_keys
    assert set(mapping.values()) == set(ours)
    assert len(set(mapping.values())) == len(mapping)  # one-to-one
    assert mapping["features.0.0.weight"] == "features.stages.0.conv.weight"
    assert mapping["features.1.conv.0.0.weight"] == "features.stages.1.0.dw.conv.weight"
    assert mapping["features.1.conv.1.weight"] == "features.stages.1.0.project.conv.weight"
    assert mapping["features.2.conv.0.0.weight"] == "features.stages.2.0.expand.conv.weight"
    assert mapping["features.17.conv.3.running_var"] == "features.stages.7.0.project.bn.running_var"
    assert mapping["features.18.0.weight"] == "head.conv.weight"
    assert mapping["classifier.1.weight"] == "fc.weight"
    tv_shapes = TorchvisionLayoutMobileNetV2().state_dict()
    for tv_key, our_key in mapping.items():
        assert tv_shapes[tv_key].shape == ours[our_key].shape, tv_key


def test_torchvision_checkpoint_loads_and_reproduces_outputs(tv_checkpoint):
    ref, path = tv_checkpoint
    model = mobilenet_v2_classifier(weights="imagenet-torchvision", weights_path=path).eval()
    assert model.weights_source is WEIGHT_SOURCES["imagenet-torchvision"]
    assert not model.features.tf_padding
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-4, atol=1e-4)
        # The high-branch prefix (stages 1..4 = torchvision features[0:7]) gets the same weights.
        high = mobilenet_v2(weights="imagenet-torchvision", weights_path=path, num_stages=4).eval()
        torch.testing.assert_close(high(x), ref.features[:7](x), rtol=1e-4, atol=1e-4)
    assert int(model.features.stage(1).bn.num_batches_tracked) == 1234
    # A directory holding a file under torchvision's name works too (name-hash convention checked).
    assert resolve_weights_path("imagenet-torchvision", path) == path


def test_torchvision_checkpoint_wrappers_and_optional_counters(tv_checkpoint):
    ref, _ = tv_checkpoint
    sd = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}
    out = torchvision_state_dict({f"module.{k}": v for k, v in sd.items()})
    assert len(out) == len(sd)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda sd: sd.pop("features.5.conv.1.0.weight"), "features.5.conv.1.0.weight"),
        (lambda sd: sd.__setitem__("features.19.0.weight", torch.zeros(1)), "features.19.0.weight"),
        (lambda sd: sd.pop("classifier.1.bias"), "missing"),
    ],
)
def test_torchvision_missing_or_extra_key_is_a_clear_error(tv_checkpoint, tmp_path, edit, message):
    ref, _ = tv_checkpoint
    sd = dict(ref.state_dict())
    edit(sd)
    path = tmp_path / "broken.pth"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(WeightsError, match=message) as err:
        mobilenet_v2_classifier(weights="imagenet-torchvision", weights_path=path)
    assert str(path) in str(err.value)


def test_torchvision_wrong_shapes_are_a_clear_error(tmp_path):
    path = tmp_path / "half.pth"
    torch.save(TorchvisionLayoutMobileNetV2(width_mult=0.5).state_dict(), path)
    with pytest.raises(WeightsError, match=r"has shape .* expects"):
        mobilenet_v2(weights="imagenet-torchvision", weights_path=path)


def test_torchvision_file_name_hash_is_checked(tmp_path):
    path = tmp_path / "mobilenet_v2-b0353104.pth"
    torch.save({"not": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="sha256"):
        mobilenet_v2(weights="imagenet-torchvision", weights_path=tmp_path)


# --------------------------------------------------------------------------------------------------
# Missing / mismatched weights never fall back to random ones
# --------------------------------------------------------------------------------------------------


def test_missing_weight_file_raises(tmp_path, monkeypatch):
    missing = tmp_path / "nope.tflite"
    with pytest.raises(WeightsError, match="does not exist") as err:
        mobilenet_v2(weights="imagenet-tflite", weights_path=missing)
    assert str(missing) in str(err.value)
    with pytest.raises(WeightsError, match="mobilenet_v2-b0353104.pth"):
        mobilenet_v2(weights="imagenet-torchvision", weights_path=tmp_path)
    monkeypatch.setenv("NAILSET_PRETRAINED_DIR", str(tmp_path))
    assert default_weights_dir() == tmp_path
    with pytest.raises(WeightsError, match="NAILSET_PRETRAINED_DIR"):
        mobilenet_v2(weights="imagenet-tflite")


def test_wrong_width_or_unknown_source_raises(tmp_path):
    with pytest.raises(WeightsError, match="width_mult"):
        mobilenet_v2(width_mult=0.35, weights="imagenet-tflite")
    with pytest.raises(WeightsError, match="width_mult"):
        load_pretrained(mobilenet_v2(width_mult=0.25), "imagenet-torchvision", tmp_path)
    with pytest.raises(WeightsError, match="width_mult"):
        mobilenet_v2_classifier(width_mult=0.5, weights="imagenet-torchvision")
    with pytest.raises(WeightsError, match="known sources"):
        mobilenet_v2(weights="imagenet-keras")
    with pytest.raises(WeightsError, match="num_classes"):
        mobilenet_v2_classifier(weights="imagenet-torchvision", num_classes=1001)


def test_not_a_tflite_file_raises(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(WeightsError, match="not a TensorFlow Lite flatbuffer"):
        mobilenet_v2(weights="imagenet-tflite", weights_path=path)


def test_normalize_input():
    x = torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    torch.testing.assert_close(normalize_input(x, "imagenet-tflite")[0, 0, 0], torch.tensor([-1.0, 0.0, 1.0]))
    y = normalize_input(x, "imagenet-torchvision")
    assert y[0, 0, 0, 0] == pytest.approx(-0.485 / 0.229)


def test_recalibrate_batchnorm_keeps_eval_output_and_matches_training_mode():
    model = _randomize(mobilenet_v2(width_mult=0.35))
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        before = model(x)
    recalibrate_batchnorm(model, [x[:2], x[2:]])
    assert not model.training
    with torch.no_grad():
        torch.testing.assert_close(model(x), before, rtol=1e-4, atol=1e-4)
        # On the calibration batch, batch statistics equal the running ones: training mode agrees.
        torch.testing.assert_close(model.train()(x), before, rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------------------------------
# TensorFlow Lite ImageNet weights (shared/weights; CI always has them)
# --------------------------------------------------------------------------------------------------

SHARED_WEIGHTS = Path(__file__).resolve().parents[1].parent / "shared" / "weights"
TFLITE_SOURCES = ["imagenet-tflite", "imagenet-tflite-tf2"]


@pytest.fixture
def weights_dir():
    if not SHARED_WEIGHTS.is_dir():
        pytest.skip(f"pretrained weights directory {SHARED_WEIGHTS} is absent")
    return SHARED_WEIGHTS


def _photo(name: str) -> torch.Tensor:
    """A scikit-image sample photo, centre-cropped and resized to 224 x 224, RGB in [0, 1]."""
    import skimage.data

    img = getattr(skimage.data, name)()
    h, w = img.shape[:2]
    s = min(h, w)
    img = img[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s, :3]
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=(224, 224), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255) / 255.0


@pytest.fixture(scope="module")
def photos():
    return {name: _photo(name) for name in ("chelsea", "coffee", "rocket")}


@pytest.mark.parametrize("source", TFLITE_SOURCES)
def test_tflite_weights_classify_the_cat(weights_dir, photos, source):
    model = mobilenet_v2_classifier(weights=source, weights_path=weights_dir).eval()
    assert model.features.tf_padding and model.num_classes == 1000
    with torch.no_grad():
        probs = model(normalize_input(photos["chelsea"], source)).softmax(1)[0]
    top5 = probs.topk(5).indices.tolist()
    labels = load_imagenet_labels(weights_dir / "imagenet_labels.txt")
    assert CAT_IDS & set(top5), [labels[i] for i in top5]
    assert top5[0] in CAT_IDS, [labels[i] for i in top5]
    assert float(probs[list(CAT_IDS)].sum()) > 0.8


# Reference: the TFLite interpreter (tflite-runtime 2.14.0, run once outside this project) on the same
# 224 x 224 uint8 inputs, softmax of its dequantized logits; TensorFlow's 1001-class indices.
TFLITE_QUANT_REFERENCE = {
    "chelsea": [(283, 0.531), (286, 0.293), (282, 0.162)],  # tiger cat, Egyptian cat, tabby
    "coffee": [(968, 0.964)],  # espresso
    "rocket": [(658, 0.583), (745, 0.239), (541, 0.132)],  # missile, projectile, drilling platform
}


def test_tflite_quant_conversion_matches_interpreter_reference(weights_dir, photos):
    model = mobilenet_v2_classifier(weights="imagenet-tflite", weights_path=weights_dir, num_classes=1001).eval()
    for name, expected in TFLITE_QUANT_REFERENCE.items():
        # The interpreter's input quantization: (q - 128) / 128.
        x = (photos[name] * 255.0 - 128.0) / 128.0
        with torch.no_grad():
            probs = model(x).softmax(1)[0]
        top = probs.topk(len(expected)).indices.tolist()
        assert top == [i for i, _ in expected], name
        for i, p in expected:
            assert float(probs[i]) == pytest.approx(p, abs=0.05), (name, i)


def test_tflite_1001_and_1000_class_heads_agree(weights_dir, photos):
    m1001 = mobilenet_v2_classifier(weights="imagenet-tflite", weights_path=weights_dir, num_classes=1001).eval()
    m1000 = mobilenet_v2_classifier(weights="imagenet-tflite", weights_path=weights_dir).eval()
    x = normalize_input(photos["chelsea"], "imagenet-tflite")
    with torch.no_grad():
        torch.testing.assert_close(m1001(x)[:, 1:], m1000(x))
    labels = load_imagenet_labels(weights_dir / "imagenet_labels.txt", num_classes=1001)
    assert labels[0] == "background" and labels[282].startswith("tabby")
    assert load_imagenet_labels(weights_dir / "imagenet_labels.txt")[281].startswith("tabby")


def test_tflite_weights_load_into_the_cascade_encoders(weights_dir, photos):
    full = mobilenet_v2_classifier(weights="imagenet-tflite", weights_path=weights_dir).eval()
    high = mobilenet_v2(weights="imagenet-tflite", weights_path=weights_dir, num_stages=4).eval()
    low = mobilenet_v2(
        weights="imagenet-tflite",
        weights_path=weights_dir,
        stage_strides=OS16_STAGE_STRIDES,
        stage_dilations=OS16_STAGE_DILATIONS,
    ).eval()
    assert high.weights_source is low.weights_source is WEIGHT_SOURCES["imagenet-tflite"]
    assert high.tf_padding and low.tf_padding
    x = normalize_input(photos["chelsea"], "imagenet-tflite")
    with torch.no_grad():
        ref = full.features.forward_stages(x)
        torch.testing.assert_close(high(x), ref[3])
        low_out = low.forward_stages(x)
    torch.testing.assert_close(low_out[5], ref[5])  # identical up to stage 6
    assert low_out[7].shape == (1, 320, 14, 14)
    # Folded batch norm: unit scale, zero mean, variance 1 - eps (exact in eval mode).
    bn = low.stage(1).bn
    assert torch.all(bn.weight == 1) and torch.all(bn.running_mean == 0)
    torch.testing.assert_close(bn.running_var + bn.eps, torch.ones_like(bn.running_var))


def test_corrupt_or_truncated_tflite_raises(weights_dir, tmp_path):
    src = weights_dir / "mobilenet_v2_1.0_224_quant.tflite"
    corrupt = tmp_path / src.name
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="sha256"):
        mobilenet_v2(weights="imagenet-tflite", weights_path=tmp_path)
    truncated = tmp_path / "truncated.tflite"
    truncated.write_bytes(src.read_bytes()[: 200_000])
    with pytest.raises(WeightsError, match="truncated.tflite"):
        mobilenet_v2(weights="imagenet-tflite", weights_path=truncated)
    # The layer-by-layer check refuses a graph that is not MobileNetV2 1.0 rather than loading part of it.
    import ml.weights.tflite as tflite_weights

    layers = tflite_weights.canonical_convs()
    monkey = pytest.MonkeyPatch()
    monkey.setattr(tflite_weights, "canonical_convs",
                   lambda: layers[:1] + [(layers[1][0], "conv", 1, True)] + layers[2:])
    try:
        with pytest.raises(WeightsError, match=r"operator 1 \(our features.stages.1.0.dw\): is a dw convolution"):
            tflite_weights.tflite_state_dict(src)
    finally:
        monkey.undo()
