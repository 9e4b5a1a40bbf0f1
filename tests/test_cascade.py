"""Tests of ml/models (cascade.py, unet.py, config.py, inference.py, registry.py): shapes and strides of every output, the 55/43-layer readings,
fusion width, the no-cascade baseline, heads before upsampling, BN folding, configs, pretrained loading.

Tiny widths and 64 px inputs keep it fast on CPU."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from ml.models.cascade import (
    CascadeNet,
    cascade_43,
    cascade_55,
    cascade_baseline,
    cascade_net,
    count_decoder_convs,
    count_low_path_convs,
)
from ml.models.config import ARCHS, MODEL_PRESETS, ModelConfig, model_config
from ml.models.inference import fold_batchnorm, inference_model
from ml.models.outputs import FG_PRIOR, Outputs
from ml.models.registry import ARCHITECTURES, MODEL_BUILDERS, build_model, get_builder
from ml.models.unet import UNet, unet_mobilenet_v2
from ml.weights.sources import WeightsError, default_weights_dir

ROOT = Path(__file__).resolve().parent.parent
TINY = {"width_mult": 0.25, "fusion_width": 32, "pretrained": None}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Small CPU convolutions gain nothing from two threads on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomize_bn(model: nn.Module) -> None:
    """Non-trivial BN statistics and affine parameters, so that eval-mode tests mean something."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


@pytest.mark.parametrize("hw", [(64, 64), (96, 128)])
def test_cascade_output_shapes_and_strides(hw):
    h, w = hw
    model = cascade_net("tiny").train()
    x = torch.rand(2, 3, h, w)
    outs = model(x)
    assert isinstance(outs, list) and len(outs) == 3 and all(isinstance(o, Outputs) for o in outs)
    assert model.output_strides == [1, 8, 16]
    for out, stride in zip(outs, model.output_strides):
        assert out.fg.shape == (2, 2, h // stride, w // stride)
        assert out.cls.shape == (2, 10, h // stride, w // stride)
        assert out.field.shape == (2, 2, h // stride, w // stride)
    # the intermediate maps of the reading: high4 at H/8, low4 at H/16, low8 at H/32 (low branch OS16)
    feats = {}
    hooks = [
        model.high.stages[3].register_forward_hook(lambda m, i, o: feats.__setitem__("high4", o)),
        model.low.stages[3].register_forward_hook(lambda m, i, o: feats.__setitem__("low4", o)),
        model.low.stages[7].register_forward_hook(lambda m, i, o: feats.__setitem__("low8", o)),
        model.fusion0.register_forward_hook(lambda m, i, o: feats.__setitem__("fusion0", o)),
        model.fusion1.register_forward_hook(lambda m, i, o: feats.__setitem__("fusion1", o)),
    ]
    model.eval()
    with torch.no_grad():
        final = model(x)
    for hook in hooks:
        hook.remove()
    assert isinstance(final, Outputs) and final.fg.shape == (2, 2, h, w)
    assert feats["high4"].shape[-2:] == (h // 8, w // 8)
    assert feats["low4"].shape[-2:] == (h // 16, w // 16)
    assert feats["low8"].shape[-2:] == (h // 32, w // 32)
    assert feats["fusion0"].shape == (2, 32, h // 16, w // 16)
    assert feats["fusion1"].shape == (2, 32, h // 8, w // 8)
    assert model.low.stage_strides[6] == 1 and model.low.stage_dilations[6:] == [2, 2]
    assert model.high.num_stages == 4


def test_55_and_43_layer_readings():
    deep, shallow = cascade_55(**TINY), cascade_43(**TINY)
    assert count_low_path_convs(deep) == 51 and count_decoder_convs(deep) == 4
    assert count_low_path_convs(deep) + count_decoder_convs(deep) == 55
    assert count_low_path_convs(shallow) + count_decoder_convs(shallow) == 43
    assert shallow.low.num_stages == 6 and deep.low.num_stages == 8
    # the 43-layer Fusion0 takes the 96-ch (here 24-ch at width 0.25) stage-6 map as F1, at H/32
    assert shallow.fusion0.dilated.conv.in_channels == shallow.low.stage_channels[5]
    assert shallow.low.stage_output_strides[-1] == 16
    out = shallow.train()(torch.rand(1, 3, 64, 64))
    assert [tuple(o.fg.shape[-2:]) for o in out] == [(64, 64), (8, 8), (4, 4)]


def test_full_width_channels_and_fusion_width_parameter_count():
    full = cascade_net(pretrained=None)
    assert full.low.stage_channels == [32, 16, 24, 32, 64, 96, 160, 320]
    assert (full.fusion0.dilated.conv.in_channels, full.fusion0.projection.conv.in_channels) == (320, 32)
    assert (full.fusion1.dilated.conv.in_channels, full.fusion1.projection.conv.in_channels) == (320, 32)
    assert full.fusion0.dilated.conv.dilation == (2, 2) and full.fusion0.dilated.conv.kernel_size == (3, 3)
    assert full.fusion0.projection.conv.kernel_size == (1, 1)

    def params(model):
        return sum(p.numel() for p in model.parameters())

    counts = {c: params(cascade_net(pretrained=None, fusion_width=c)) for c in (320, 256, 128)}
    assert counts[320] > counts[256] > counts[128]

    # exactly the parameters that depend on C: Fusion0 (320*C*9 + 32*C + 2 BN * 2C), Fusion1
    # (C*C*9 + 32*C + 4C), the Fusion1 and final heads (2 * (C*14 + 14)); the Fusion0 head sees low8.
    def depends(c):
        return (320 * c * 9 + 32 * c + 4 * c) + (c * c * 9 + 32 * c + 4 * c) + 2 * (c * 14 + 14)

    assert counts[320] - counts[128] == depends(320) - depends(128)
    assert counts[256] - counts[128] == depends(256) - depends(128)


def test_baseline_variant():
    model = cascade_baseline(**TINY)
    assert model.high is None and model.fusion1 is None and model.aux1 is None
    assert count_low_path_convs(model) + count_decoder_convs(model) == 53
    outs = model.train()(torch.rand(2, 3, 96, 128))
    assert model.output_strides == [1, 16]
    assert [tuple(o.fg.shape[-2:]) for o in outs] == [(96, 128), (6, 8)]
    with torch.no_grad():
        final = model.eval()(torch.rand(1, 3, 64, 64))
    assert final.cls.shape == (1, 10, 64, 64)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in cascade_net("tiny").parameters())


@pytest.mark.parametrize("preset", ["tiny", "tiny-baseline", "tiny-refined"])
def test_heads_before_upsample_equals_upsample_then_heads(preset):
    config = model_config(preset)
    fast = CascadeNet(config)
    slow = CascadeNet(config.replace(heads_before_upsample=False))
    slow.load_state_dict(fast.state_dict())
    _randomize_bn(fast)
    slow.load_state_dict(fast.state_dict())
    for branch in [b for b in (fast.head, fast.aux0, fast.aux1, fast.aux_fused) if b is not None]:
        for conv in (branch.fg, branch.cls, branch.field):  # heads with weight, not the 0.01 init
            nn.init.normal_(conv.weight, 0, 0.5)
            nn.init.normal_(conv.bias, 0, 0.5)
    slow.load_state_dict(fast.state_dict())
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        a = fast.eval()(x, all_scales=True)
        b = slow.eval()(x, all_scales=True)
    for oa, ob in zip(a, b):
        for ta, tb in zip(oa, ob):
            assert ta.shape == tb.shape
            assert (ta - tb).abs().max().item() < 1e-5


@pytest.mark.parametrize("preset", ["tiny", "tiny-refined", "tiny-low1", "tiny-shared"])
def test_fold_batchnorm_and_channels_last_keep_outputs(preset):
    model = cascade_net(preset, tf_padding=True)
    _randomize_bn(model)
    model.eval()
    fast = inference_model(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # a copy: the original is kept
    for x in (torch.rand(1, 3, 96, 128), torch.rand(1, 3, 90, 118)):  # odd strides: every upsample meets its skip
        with torch.no_grad():
            ref = model(x)
            got = fast(x.contiguous(memory_format=torch.channels_last))
        for r, g in zip(ref, got):
            assert r.shape == g.shape and (r - g).abs().max().item() < 1e-4
    unet = unet_mobilenet_v2("tiny-unet")
    _randomize_bn(unet)
    unet.eval()
    with torch.no_grad():
        ref = unet(x)
        got = fold_batchnorm(unet)(x)
    assert (ref.fg - got.fg).abs().max().item() < 1e-4


def test_low_branch_at_full_resolution():
    """low_downsample=1: the low branch reads the photo itself (not x2 downsampled), so stage_low4 and Fusion0
    sit at H/8 beside the high branch; the output keeps its size and the paper's variant is unchanged."""
    h, w = 96, 128
    model = cascade_net("tiny-low1").train()
    seen = {}
    hooks = [model.low.stages[0].register_forward_pre_hook(lambda m, args: seen.__setitem__("low_in", args[0].shape)),
             model.fusion0.register_forward_hook(lambda m, i, o: seen.__setitem__("fusion0", o.shape))]
    outs = model(torch.rand(2, 3, h, w))
    assert seen["low_in"][-2:] == (h, w) and seen["fusion0"][-2:] == (h // 8, w // 8)
    assert model.output_strides == [1, 8, 8]
    assert [tuple(o.fg.shape[-2:]) for o in outs] == [(h, w), (h // 8, w // 8), (h // 8, w // 8)]
    paper = cascade_net("tiny").train()
    paper.low.stages[0].register_forward_pre_hook(lambda m, args: seen.__setitem__("low_in", args[0].shape))
    paper(torch.rand(2, 3, h, w))
    assert seen["low_in"][-2:] == (h // 2, w // 2) and paper.output_strides == [1, 8, 16]
    baseline = cascade_net("tiny-baseline", low_downsample=1)
    assert baseline.output_strides == [1, 8] and baseline.eval()(torch.rand(1, 3, h, w)).fg.shape[-2:] == (h, w)
    for hook in hooks:
        hook.remove()
    with pytest.raises(ValueError, match="low_downsample must be one of"):
        ModelConfig(low_downsample=4)
    with pytest.raises(ValueError, match="the U-Net has none"):
        ModelConfig(arch="unet", low_downsample=1)
    assert model_config("cascade-55-low1-f128").to_dict()["low_downsample"] == 1
    assert ModelConfig.from_dict({"arch": "cascade"}).low_downsample == 2  # older checkpoints: the paper's


def test_shared_encoder_cascade_has_one_encoder_whose_stages_feed_both_fusions():
    """shared_encoder: no high branch; Fusion0 fuses the low branch's last map with its stage 6 at H/16, Fusion1
    takes the low branch's own stage 4 (H/8) where the paper takes the high branch's, and the refinement its
    stages 3 and 2."""
    h, w = 96, 128
    model = cascade_net("tiny-shared").train()
    assert model.high is None and model.fusion1 is not None and model.fusion0_stage == 6
    assert model.output_strides == [1, 8, 16]
    seen = {}
    hooks = [model.low.stages[k].register_forward_hook(lambda m, i, o, k=k: seen.__setitem__(f"stage{k + 1}", o))
             for k in range(8)]
    hooks += [model.fusion0.projection.register_forward_pre_hook(lambda m, a: seen.__setitem__("f0_f2", a[0])),
              model.fusion1.projection.register_forward_pre_hook(lambda m, a: seen.__setitem__("f1_f2", a[0]))]
    outs = model(torch.rand(2, 3, h, w))
    assert [tuple(o.fg.shape[-2:]) for o in outs] == [(h, w), (h // 8, w // 8), (h // 16, w // 16)]
    assert seen["f0_f2"] is seen["stage6"] and seen["f1_f2"] is seen["stage4"]
    assert seen["stage1"].shape[-2:] == (h // 2, w // 2)  # the photo itself, not x2 downsampled
    refined = cascade_net("tiny-shared", refine_stride=2).train()
    skips = []
    hooks += [level.skip.register_forward_pre_hook(lambda m, a: skips.append(tuple(a[0].shape[1:])))
              for level in refined.refine.levels]
    assert len(refined(torch.rand(2, 3, h, w))) == 4 and refined.output_strides == [1, 8, 8, 16]
    assert skips == [(refined.low.stage_channels[2], h // 4, w // 4), (refined.low.stage_channels[1], h // 2, w // 2)]
    for hook in hooks:
        hook.remove()
    # one encoder: the second encoder's parameters are gone, nothing else is added
    paper = cascade_net("tiny-low1")
    assert {k for k in model.state_dict() if k.startswith("high.")} == set()
    assert {k for k in paper.state_dict() if not k.startswith("high.") and not k.startswith("fusion0.projection")} == \
        {k for k in model.state_dict() if not k.startswith("fusion0.projection")}
    for bad in ({"low_downsample": 2}, {"arch": "baseline"}, {"depth": 43}):
        with pytest.raises(ValueError, match="shared_encoder is the cascade whose low branch reads the photo"):
            ModelConfig(shared_encoder=True, **{"low_downsample": 1, **bad})
    assert model_config("cascade-55-shared-f128").to_dict()["shared_encoder"] is True
    assert ModelConfig.from_dict({"arch": "cascade"}).shared_encoder is False  # older checkpoints: two encoders


@pytest.mark.parametrize("refine_stride", [4, 2])
def test_refined_cascade_shapes_strides_and_head_resolution(refine_stride):
    h, w = 96, 128
    model = cascade_net("tiny-refined", refine_stride=refine_stride).train()
    outs = model(torch.rand(2, 3, h, w))
    # deep supervision: the refined final output, the paper's final branch (H/8), Fusion1's F1 (H/8), Fusion0's (H/16)
    assert model.output_strides == [1, 8, 8, 16] and len(outs) == 4
    for out, stride in zip(outs, model.output_strides):
        assert out.fg.shape == (2, 2, h // stride, w // stride)
        assert out.cls.shape == (2, 10, h // stride, w // stride) and out.field.shape == (2, 2, h // stride, w // stride)
    skips = {}
    hooks = [model.refine.register_forward_hook(lambda m, i, o: skips.__setitem__("refined", o))]
    hooks += [level.skip.register_forward_hook(lambda m, i, o, k=k: skips.__setitem__(k, o))
              for k, level in enumerate(model.refine.levels)]
    with torch.no_grad():
        final = model.eval()(torch.rand(2, 3, h, w))
    for hook in hooks:
        hook.remove()
    assert final.fg.shape == (2, 2, h, w)
    # the heads run on 8 channels at H/4 (or H/2): the high branch's stride-4 (then stride-2) features joined in
    assert skips["refined"].shape == (2, 8, h // refine_stride, w // refine_stride)
    assert [tuple(skips[k].shape[-2:]) for k in range(len(model.refine.levels))] == \
        [(h // 4, w // 4), (h // 2, w // 2)][:len(model.refine.levels)]
    assert model.head.fg.in_channels == 8
    # the paper's cascade is untouched: every one of its tensors is in the refined model with the same shape,
    # except the final heads, which read the refinement's 8 channels instead of the fusion's 32
    paper, refined = cascade_net("tiny").state_dict(), model.state_dict()
    assert {k: v.shape for k, v in paper.items() if not k.startswith("head.")} == \
        {k: refined[k].shape for k in paper if not k.startswith("head.")}
    assert {k.split(".")[0] for k in set(refined) - set(paper)} == {"refine", "aux_fused"}


def test_refined_output_is_the_paper_output_plus_a_correction():
    """The refined heads add to the upsampled H/8 output (the paper's final branch); they start with a zero fg
    bias, and with zero weights the final output is exactly the H/8 output upsampled x2 then x4."""
    import torch.nn.functional as F

    model = cascade_net("tiny-refined").eval()
    assert model.head.fg.bias.abs().max().item() == 0 and model.aux_fused.fg.bias[1].item() < -2  # the prior
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        for p in model.head.parameters():
            p.zero_()
        final, coarse = model(x, all_scales=True)[:2]
        up = F.interpolate(F.interpolate(torch.cat(coarse, 1), size=(24, 32), mode="bilinear", align_corners=False),
                           size=(96, 128), mode="bilinear", align_corners=False)
        assert (torch.cat(final, 1) - up).abs().max().item() < 1e-6
        nn.init.normal_(model.head.fg.weight, 0, 0.5)  # a correction moves the final output, not the H/8 one
        moved, same = model(x, all_scales=True)[:2]
    assert (moved.fg - final.fg).abs().max().item() > 1e-2 and torch.equal(same.fg, coarse.fg)


def test_config_json_round_trip_presets_and_errors():
    config = model_config("cascade-43", fusion_width=128)
    assert ModelConfig.from_json(config.to_json()) == config
    assert build_model(config.to_dict(), load_pretrained=False).config == config
    assert set(MODEL_PRESETS) >= {"cascade-55", "cascade-43", "baseline-55", "unet", "tiny"}
    with pytest.raises(WeightsError, match="width_mult 1.0"):
        ModelConfig(width_mult=0.25)  # pretrained by default
    with pytest.raises(ValueError, match="depth"):
        ModelConfig(depth=50)
    with pytest.raises(ValueError, match="refine_stride"):
        ModelConfig(refine_stride=8)
    with pytest.raises(ValueError, match="high branch"):
        ModelConfig(arch="baseline", refine_stride=4)
    assert model_config("cascade-55-refined").refine_stride == 4 and model_config("cascade-55").refine_stride == 0
    with pytest.raises(ValueError, match="unknown model preset"):
        model_config("cascade-99")
    with pytest.raises(ValueError, match="unknown model config keys"):
        ModelConfig.from_dict({"arch": "cascade", "layers": 55})
    # the nail prior of the fg heads
    model = cascade_net("tiny")
    p = torch.softmax(model.head.fg.bias, 0)[1].item()
    assert abs(p - FG_PRIOR) < 1e-6


def test_input_normalisation_follows_the_source():
    tf = CascadeNet(ModelConfig(pretrained="imagenet-tflite"), load_pretrained=False)
    assert tf.low.tf_padding and tf.high.tf_padding
    x = torch.rand(1, 3, 8, 8)
    assert torch.allclose(tf.normalize(x), x * 2 - 1, atol=1e-6)
    tv = cascade_net("tiny")
    assert not tv.low.tf_padding
    assert torch.allclose(tv.input_mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))


def test_pretrained_encoders_are_separate_copies():
    if not (default_weights_dir() / "mobilenet_v2_1.0_224_quant.tflite").is_file():
        pytest.skip("TFLite weights not present")
    model = cascade_net(depth=43, fusion_width=32)  # imagenet-tflite by default
    for k in range(4):
        a, b = model.high.stages[k], model.low.stages[k]
        for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
            assert torch.equal(pa, pb), name
            assert pa.data_ptr() != pb.data_ptr()  # two backbones, not shared
    assert model.low.weights_source.name == "imagenet-tflite"


def test_unet_shapes():
    model = unet_mobilenet_v2("tiny-unet")
    assert isinstance(model, UNet)
    for h, w in ((64, 64), (96, 128)):
        outs = model.train()(torch.rand(2, 3, h, w))
        assert len(outs) == 1 and outs[0].fg.shape == (2, 2, h, w) and outs[0].cls.shape == (2, 10, h, w)
        with torch.no_grad():
            assert model.eval()(torch.rand(1, 3, h, w)).field.shape == (1, 2, h, w)
    assert [b.conv2.conv.out_channels for b in model.decoder] == [32, 16, 16, 8, 8]
    assert model.encoder_head.conv.out_channels == 1280  # smp's mobilenet_v2 encoder ends at 1280 ch
    full = build_model("unet", pretrained=None)
    assert [b.conv2.conv.out_channels for b in full.decoder] == [256, 128, 64, 32, 16]


def test_registry_builds_every_architecture_and_names_the_builders():
    assert set(ARCHITECTURES) == set(ARCHS)
    for arch in ARCHS:
        model = build_model("tiny-unet" if arch == "unet" else "tiny", arch=arch)
        assert isinstance(model, ARCHITECTURES[arch]) and model.config.arch == arch
    assert get_builder("cascade_43") is cascade_43 and get_builder("unet_mobilenet_v2") is unet_mobilenet_v2
    assert {"cascade_net", "cascade_55", "cascade_baseline", "mobilenet_v2"} <= set(MODEL_BUILDERS)
    with pytest.raises(ValueError, match="unknown model builder"):
        get_builder("resnet50")


def test_ml_core_does_not_import_django():
    code = ("import sys; import ml.models.registry, ml.losses, ml.data, ml.metrics, ml.train, ml.evaluate; "
            "bad = [m for m in sys.modules if m == 'django' or m.startswith('django.')]; "
            "assert not bad, bad; print('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("preset", ["tiny", "tiny-refined", "tiny-low1", "tiny-shared"])
def test_onnx_export_matches_eager(preset):
    ort = pytest.importorskip("onnxruntime")
    import io
    import warnings

    model = cascade_net(preset)
    _randomize_bn(model)
    fast = inference_model(model.eval(), channels_last=False)
    x = torch.rand(1, 3, 96, 128)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(fast, (x,), buffer, dynamo=False, opset_version=17, input_names=["image"],
                          output_names=["fg", "cls", "field"])
    session = ort.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])
    got = session.run(None, {"image": x.numpy()})
    with torch.no_grad():
        ref = model(x)
    for r, g in zip(ref, got):
        assert r.shape == g.shape and (r - torch.from_numpy(g)).abs().max().item() < 1e-4


def test_tf_same_padding_merged_into_the_conv_is_exact():
    from ml.models.inference import SameStride2Conv, remove_tf_padding
    from ml.models.mobilenetv2 import TFSamePad2d

    for groups, channels in ((1, 3), (8, 8)):
        conv = nn.Conv2d(channels, 8, 3, stride=2, padding=0, groups=groups, bias=True)
        merged = SameStride2Conv(conv)
        for hw in ((8, 8), (9, 8), (8, 9), (9, 9), (2, 1)):
            x = torch.randn(2, channels, *hw)
            ref = conv(TFSamePad2d(3, 2)(x))
            assert torch.allclose(merged(x), ref, atol=1e-6), hw
            if hw == (8, 8):  # PyTorch's symmetric padding is a different function
                assert not torch.allclose(torch.nn.functional.conv2d(x, conv.weight, conv.bias, 2, 1, 1, groups), ref)
    model = CascadeNet(ModelConfig(pretrained="imagenet-tflite", fusion_width=32), load_pretrained=False)
    _randomize_bn(model)
    model.eval()
    fast = inference_model(model)
    assert sum(isinstance(m, SameStride2Conv) for m in fast.modules()) == 7  # stride-2 convs of both encoders
    assert not any(isinstance(m, TFSamePad2d) for m in fast.modules())
    x = torch.rand(1, 3, 90, 122)  # odd and even sizes on the way down
    with torch.no_grad():
        ref = model(x)
        got = fast(x.contiguous(memory_format=torch.channels_last))
    for r, g in zip(ref, got):
        assert (r - g).abs().max().item() < 1e-4
    assert remove_tf_padding(cascade_net("tiny")) is not None  # nothing to replace: unchanged
