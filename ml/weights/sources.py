"""Named offline sources of ImageNet-pretrained MobileNetV2 weights, where their files are, and the
normalisation each was trained with. Plain Python + PyTorch; never imports Django nor a model.

A source is a :class:`WeightSource` in :data:`WEIGHT_SOURCES` ("imagenet-tflite", "imagenet-tflite-tf2",
"imagenet-torchvision"); the files live in :func:`default_weights_dir` (``$NAILSET_PRETRAINED_DIR``, else
``../shared/weights``). Converting a file into a state dict is :mod:`ml.weights.tflite` /
:mod:`ml.weights.torchvision`; loading it into a model is :mod:`ml.weights.loading`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dataset.checksums import file_sha256

__all__ = [
    "WEIGHTS_DIR_ENV",
    "WEIGHT_SOURCES",
    "WeightSource",
    "WeightsError",
    "check_hash",
    "default_weights_dir",
    "get_source",
    "load_imagenet_labels",
    "normalize_input",
    "resolve_weights_path",
]


class WeightsError(RuntimeError):
    """Pretrained weights were asked for but cannot be used (missing file, wrong format, keys, shapes
    or width). Never caught internally: asking for weights never silently yields a random network."""



_TF_MEAN = (0.5, 0.5, 0.5)  # (x / 255 - 0.5) / 0.5 == x / 127.5 - 1
_TF_STD = (0.5, 0.5, 0.5)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeightSource:
    """A named offline source of ImageNet-pretrained MobileNetV2 (width 1.0) weights.

    ``filenames`` are looked for, in order, in the weights directory (see :func:`resolve_weights_path`);
    ``mean``/``std`` normalise RGB images scaled to [0, 1] the way the weights were trained;
    ``tf_padding`` is the padding the converted network needs; ``sha256`` optionally pins files by name.
    """

    name: str
    format: str  # "tflite" or "torchvision"
    filenames: tuple[str, ...]
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    tf_padding: bool
    description: str
    sha256: Mapping[str, str] | None = None


WEIGHT_SOURCES: dict[str, WeightSource] = {
    s.name: s
    for s in (
        WeightSource(
            name="imagenet-tflite",
            format="tflite",
            filenames=("mobilenet_v2_1.0_224_quant.tflite",),
            num_classes=1001,
            mean=_TF_MEAN,
            std=_TF_STD,
            tf_padding=True,
            description="TF1 (slim) MobileNetV2 1.0/224, quantization-aware trained, uint8 per-tensor "
            "TensorFlow Lite; the default offline source",
            sha256={
                "mobilenet_v2_1.0_224_quant.tflite": (
                    "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776"
                )
            },
        ),
        WeightSource(
            name="imagenet-tflite-tf2",
            format="tflite",
            filenames=("tf2_mobilenet_v2_1.0_224_ptq.tflite",),
            num_classes=1001,
            mean=_TF_MEAN,
            std=_TF_STD,
            tf_padding=True,
            description="TF2 MobileNetV2 1.0/224, int8 post-training quantized (per-channel weights) "
            "TensorFlow Lite",
            sha256={
                "tf2_mobilenet_v2_1.0_224_ptq.tflite": (
                    "5d3137241276e79c86d14a74fe43581398ae0e815191d3dba45495b810840e8c"
                )
            },
        ),
        WeightSource(
            name="imagenet-torchvision",
            format="torchvision",
            filenames=("mobilenet_v2-b0353104.pth", "mobilenet_v2-7ebf99e0.pth"),
            num_classes=1000,
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
            tf_padding=False,
            description="torchvision's ImageNet checkpoint (IMAGENET1K_V1 b0353104 or IMAGENET1K_V2 "
            "7ebf99e0), float32 with batch-norm statistics",
        ),
    )
}

#: Environment variable naming the directory that holds the pretrained weight files.
WEIGHTS_DIR_ENV = "NAILSET_PRETRAINED_DIR"
_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_weights_dir() -> Path:
    """``$NAILSET_PRETRAINED_DIR`` if set, else ``<project root>/../shared/weights``."""
    env = os.environ.get(WEIGHTS_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return _PROJECT_ROOT.parent / "shared" / "weights"


def get_source(weights: str | WeightSource) -> WeightSource:
    if isinstance(weights, WeightSource):
        return weights
    try:
        return WEIGHT_SOURCES[weights]
    except (KeyError, TypeError):
        raise WeightsError(
            f"unknown weights {weights!r}; known sources: {', '.join(sorted(WEIGHT_SOURCES))}"
        ) from None


def resolve_weights_path(weights: str | WeightSource, weights_path: str | os.PathLike | None = None) -> Path:
    """The file holding ``weights``: ``weights_path`` itself if it is a file, else the first of the
    source's file names found in ``weights_path`` (a directory) or :func:`default_weights_dir`.
    Raises :class:`WeightsError` naming every path tried when none exists."""
    source = get_source(weights)
    if weights_path is not None:
        p = Path(weights_path).expanduser()
        if p.is_file():
            return p
        if not p.is_dir():
            raise WeightsError(f"weights {source.name!r}: file {p} does not exist")
        directory, how = p, "the given directory"
    else:
        directory = default_weights_dir()
        how = f"${WEIGHTS_DIR_ENV}" if os.environ.get(WEIGHTS_DIR_ENV) else "the default weights directory"
    tried = [directory / name for name in source.filenames]
    for candidate in tried:
        if candidate.is_file():
            return candidate
    raise WeightsError(
        f"weights {source.name!r}: no weight file in {how} {directory} (tried "
        + ", ".join(str(t) for t in tried)
        + f"); pass weights_path= or set ${WEIGHTS_DIR_ENV}"
    )


def check_hash(source: WeightSource, path: Path) -> None:
    """Known files must have their published sha256; torchvision's ``name-<hexprefix>.pth`` convention
    (torch.hub's check_hash) is honoured too."""
    expected = (source.sha256 or {}).get(path.name)
    prefix = None
    if source.format == "torchvision":
        m = re.fullmatch(r".*-([0-9a-f]{8,64})\.pth", path.name)
        prefix = m.group(1) if m else None
    if expected is None and prefix is None:
        return
    digest = file_sha256(path)
    if expected is not None and digest != expected:
        raise WeightsError(f"{path}: sha256 {digest} differs from the published {expected}; file corrupt?")
    if prefix is not None and not digest.startswith(prefix):
        raise WeightsError(f"{path}: sha256 {digest} does not start with {prefix} as its name says")




def normalize_input(images: Tensor, weights: str | WeightSource | None) -> Tensor:
    """Normalise RGB images scaled to [0, 1] (N x 3 x H x W) the way ``weights`` were trained:
    ``x * 2 - 1`` (i.e. pixel / 127.5 - 1) for TensorFlow sources, ImageNet mean/std for torchvision.
    ``None`` (random init) uses torchvision's mean/std."""
    source = get_source(weights) if weights is not None else WEIGHT_SOURCES["imagenet-torchvision"]
    mean = torch.tensor(source.mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(source.std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images - mean) / std


def load_imagenet_labels(path: str | os.PathLike | None = None, num_classes: int = 1000) -> list[str]:
    """Class names from ``imagenet_labels.txt`` (1001 lines, TensorFlow order, first = "background");
    ``num_classes=1000`` drops the background so index = ImageNet class id."""
    p = Path(path) if path is not None else default_weights_dir() / "imagenet_labels.txt"
    if not p.is_file():
        raise WeightsError(f"labels file {p} does not exist")
    labels = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(labels) != 1001:
        raise WeightsError(f"{p}: expected 1001 labels, found {len(labels)}")
    return labels[1:] if num_classes == 1000 else labels

