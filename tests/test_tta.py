"""Flip test-time augmentation (ml.tta, issue #17): a mirror-symmetric model is left unchanged, a random model
becomes mirror-equivariant (finger classes 1-5 <-> 6-10, field x negated), unknown names are refused."""
import numpy as np
import pytest
import torch
from torch import nn

from ml.data import FINGER_FLIP, make_synthetic_export
from ml.models.outputs import Outputs
from ml.models.registry import build_model
from ml.predict import Predictor
from ml.tta import FINGER_CHANNEL_FLIP, TTA_MODES, FlipTTA, check_tta, mirror_outputs, with_tta

torch.set_num_threads(1)


def _symmetric(conv: nn.Conv2d, sign: float = 1.0) -> nn.Conv2d:
    """The conv with its kernels made even (sign 1) or odd (sign -1) along x."""
    with torch.no_grad():
        conv.weight.copy_((conv.weight + sign * conv.weight.flip(-1)) / 2)
        if sign < 0 and conv.bias is not None:
            conv.bias.zero_()
    return conv


class MirrorSymmetricNet(nn.Module):
    """A network whose outputs mirror with the image, written without ml.tta: even kernels everywhere, each
    left-hand class channel a copy of the right-hand one, the field's x from an odd kernel (it changes sign)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body = nn.Sequential(_symmetric(nn.Conv2d(3, 8, 3, padding=1)), nn.ReLU(),
                                  _symmetric(nn.Conv2d(8, 8, 3, padding=1)), nn.ReLU())
        self.fg = _symmetric(nn.Conv2d(8, 2, 3, padding=1))
        self.cls = _symmetric(nn.Conv2d(8, 5, 3, padding=1))
        self.fx = _symmetric(nn.Conv2d(8, 1, 3, padding=1), -1.0)
        self.fy = _symmetric(nn.Conv2d(8, 1, 3, padding=1))

    def forward(self, x):
        f = self.body(x)
        cls = self.cls(f)
        return Outputs(self.fg(f), torch.cat([cls, cls], 1), torch.cat([self.fx(f), self.fy(f)], 1))


def _random_model() -> nn.Module:
    """The tiny preset with every weight perturbed: outputs far from the heads' constant prior."""
    torch.manual_seed(0)
    model = build_model("tiny", load_pretrained=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


def _probs(out: Outputs):
    return torch.softmax(out.fg, 1), torch.softmax(out.cls, 1), out.field


def _mirrored_by_hand(out: Outputs) -> Outputs:
    """Mirror written out literally: flip x, channels (1..5, 6..10) -> (6..10, 1..5), field x negated."""
    order = [5, 6, 7, 8, 9, 0, 1, 2, 3, 4]
    field = out.field.flip(-1).clone()
    field[:, 0] = -field[:, 0]
    return Outputs(out.fg.flip(-1), out.cls[:, order].flip(-1), field)


def test_the_class_swap_is_the_training_flips():
    assert FINGER_CHANNEL_FLIP == (5, 6, 7, 8, 9, 0, 1, 2, 3, 4)
    assert all(FINGER_FLIP[k + 1] == FINGER_CHANNEL_FLIP[k] + 1 for k in range(10))


@torch.no_grad()
def test_a_mirror_symmetric_model_is_unchanged_by_flip_tta():
    net = MirrorSymmetricNet().eval()
    x = torch.rand(2, 3, 24, 40)
    plain = net(x)
    for a, b in zip(_mirrored_by_hand(plain), net(x.flip(-1))):  # the model really is symmetric
        assert torch.allclose(a, b, atol=1e-5)
    assert plain.field[:, 0].abs().max() > 0.01  # and its field has an x component to negate
    for batched in (True, False):
        for a, b in zip(_probs(plain), _probs(with_tta(net, "flip", batched=batched)(x))):
            assert torch.allclose(a, b, atol=1e-5)


@torch.no_grad()
def test_flip_tta_of_a_random_model_is_mirror_equivariant():
    model = _random_model()
    x = torch.rand(1, 3, 64, 96)
    tta = with_tta(model, "flip")
    on_image, on_mirror = tta(x), tta(x.flip(-1))
    for a, b in zip(_probs(_mirrored_by_hand(on_image)), _probs(on_mirror)):
        assert torch.allclose(a, b, atol=1e-4)
    for a, b in zip(_mirrored_by_hand(on_image), mirror_outputs(on_image)):
        assert torch.equal(a, b)
    plain = model(x)  # the model itself is not symmetric: TTA changes its outputs
    assert (torch.softmax(plain.fg, 1) - torch.softmax(on_image.fg, 1)).abs().max() > 0.1
    assert (torch.softmax(plain.cls, 1) - torch.softmax(on_image.cls, 1)).abs().max() > 0.1
    assert (plain.field - on_image.field).abs().max() > 0.1
    for a, b in zip(_probs(on_image), _probs(with_tta(model, "flip", batched=False)(x))):  # batch of 2 = two runs
        assert torch.allclose(a, b, atol=1e-4)
    # the probabilities are the averages of the model's own, returned as log-probabilities
    expected = (torch.softmax(plain.fg, 1) + torch.softmax(model(x.flip(-1)).fg, 1).flip(-1)) / 2
    assert torch.allclose(torch.exp(on_image.fg), expected, atol=1e-5)


@torch.no_grad()
def test_the_equivariance_check_catches_a_wrong_class_swap(monkeypatch):
    import ml.tta

    model, x = _random_model(), torch.rand(1, 3, 64, 96)

    def class_error() -> float:
        tta = with_tta(model, "flip")
        expected, got = _mirrored_by_hand(tta(x)), tta(x.flip(-1))
        return float((torch.softmax(expected.cls, 1) - torch.softmax(got.cls, 1)).abs().max())

    assert class_error() < 1e-4
    monkeypatch.setattr(ml.tta, "FINGER_CHANNEL_FLIP", tuple(range(10)))  # no left/right swap
    assert class_error() > 0.05


def test_unknown_tta_names_are_refused():
    model = build_model("tiny", load_pretrained=False)
    assert TTA_MODES == ("none", "flip") and check_tta(None) == "none"
    assert with_tta(model, "none") is model and isinstance(with_tta(model, "flip"), FlipTTA)
    for bad in ("mirror", "Flip", ""):
        with pytest.raises(ValueError, match="unknown test-time augmentation .*known: none, flip"):
            with_tta(model, bad)
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        Predictor(model, tta="multiscale")


def test_predictor_with_flip_mirrors_with_the_photo():
    model = _random_model()
    photo = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    plain, flip = Predictor(model), Predictor(model, tta="flip")
    assert flip.tta == "flip" and plain.tta == "none"
    a, b = flip(photo), flip(np.ascontiguousarray(photo[:, ::-1]))
    np.testing.assert_allclose(a.fg_prob[:, ::-1], b.fg_prob, atol=1e-4)
    np.testing.assert_allclose(a.class_prob[:, ::-1][..., list(FINGER_CHANNEL_FLIP)], b.class_prob, atol=1e-4)
    np.testing.assert_allclose(a.field[:, ::-1] * [-1, 1], b.field, atol=1e-4, rtol=1e-4)
    alone = plain(photo)  # the model itself is not symmetric: the option changes what the predictor returns
    assert np.abs(alone.class_prob - a.class_prob).max() > 0.1 and np.abs(alone.field - a.field).max() > 0.1


def test_flip_tta_exports_to_onnx_with_the_same_outputs():
    ort = pytest.importorskip("onnxruntime")
    from bench.model_latency import export_onnx

    model = _random_model()
    x = torch.rand(1, 3, 64, 96)
    session = ort.InferenceSession(export_onnx(with_tta(model, "flip"), 64, 96), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        want = with_tta(model, "flip")(x)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b.numpy(), atol=1e-3, rtol=1e-4)


def test_evaluate_with_flip_reports_it_and_refuses_unknown_names(tmp_path):
    from ml.evaluate import evaluate

    export = make_synthetic_export(tmp_path / "export", train=2, val=2, size=(48, 40))
    model = build_model("tiny", load_pretrained=False)
    plain = evaluate(model, export, sizes=(64,), optimize=False)
    flip = evaluate(model, export, sizes=(64,), tta="flip")
    assert plain["tta"] == "none" and flip["tta"] == "flip" and flip["images"] == 2
    assert 0 <= flip["sizes"][64]["miou"] <= 1
    with pytest.raises(ValueError, match="unknown test-time augmentation 'flop'"):
        evaluate(model, export, sizes=(64,), tta="flop")
