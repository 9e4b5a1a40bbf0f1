"""What every exported artifact promises and every export step shares, in plain Python (no torch, so that
apps and argument checks can read it cheaply): input and output names, the size rule, the metadata file's
name, :class:`ExportError`, the progress and log callbacks.

The exported function (all formats)::

    image      RGB in [0, 1] (Core ML: an RGB image, 0..255, scaled by 1/255 inside); H and W multiples of 32
    fg_prob    nail probability, softmax of the fg/bg logits (= sigmoid(logit_nail - logit_background))
    class_prob finger-class probabilities, softmax over the 10 classes (channel k-1 = finger class k)
    field      the direction field (x right, y down), as the model predicts it

The model's input normalisation (the pretrained source's mean/std) runs inside the exported graph.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["INPUT_NAME", "METADATA_FILE", "OUTPUT_NAMES", "PROJECT_ROOT", "SIZE_MULTIPLE", "ExportError", "Log",
           "Progress", "check_size", "noop", "parse_size"]

INPUT_NAME = "image"
OUTPUT_NAMES = ("fg_prob", "class_prob", "field")
#: H and W of every input must be multiples of this (five stride-2 stages on the half-size low branch).
SIZE_MULTIPLE = 32
METADATA_FILE = "nailset-export.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class ExportError(RuntimeError):
    """An export that cannot be made or cannot be trusted; the message says why."""


Progress = Callable[[float, str], None]
Log = Callable[[str], None]


def noop(*_args, **_kwargs) -> None:
    return None


def check_size(height: int, width: int) -> tuple[int, int]:
    if height <= 0 or width <= 0 or height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
        raise ExportError(f"input size {height}x{width}: height and width must be positive multiples of {SIZE_MULTIPLE}")
    return int(height), int(width)


def parse_size(value: str | Sequence[int] | None) -> tuple[int, int] | None:
    """``"352x480"`` / ``(352, 480)`` -> (h, w), checked; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            h, w = (int(v) for v in value.lower().split("x"))
        except ValueError:
            raise ExportError(f"size must read HEIGHTxWIDTH, e.g. 352x480, not {value!r}") from None
    else:
        h, w = (int(v) for v in value)
    return check_size(h, w)
