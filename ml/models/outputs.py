"""What every NailSet segmentation model outputs: :class:`Outputs` (fg/bg logits, finger-class logits,
direction field), the number of finger classes and the nail prior of the fg heads. Plain PyTorch; never
imports Django."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor

__all__ = ["FG_PRIOR", "NUM_FINGER_CLASSES", "Outputs"]

#: Finger classes predicted by the class head (1-5 left thumb..little, 6-10 right); logit k-1 = class k.
NUM_FINGER_CLASSES = 10
#: Initial nail probability of the fg/bg heads (bias prior, as RetinaNet's): nails are a few % of the
#: pixels; starting from p = 0.5 leaves Loss Max-Pooling on a long plateau where its top 10 % mixes
#: nails and background evenly.
FG_PRIOR = 0.05
ARCHS = ("cascade", "baseline", "unet")
DEPTHS = (55, 43)


class Outputs(NamedTuple):
    """One output branch: ``fg`` N x 2 logits (0 background, 1 nail), ``cls`` N x 10 logits (finger
    classes 1..10), ``field`` N x 2 direction field (x right, y down; trained towards unit vectors)."""

    fg: Tensor
    cls: Tensor
    field: Tensor

