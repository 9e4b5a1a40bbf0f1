"""Which end of a nail is its tip: a small CNN on a crop aligned with the nail's axis (issue #16).
Plain PyTorch; never imports Django. The crop and the weights live in :mod:`ml.nail_direction`.

The network is antisymmetric by construction: ``forward(x) = g(x) - g(rot180(x))``, so turning the crop
half a turn (reading the other end of the axis as ``+u``) negates the logit and
``P(tip at +u) = sigmoid(forward(x))`` is exactly ``1 - P(tip at -u)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["NailTipNet", "nail_tip_net"]


class NailTipNet(nn.Module):
    """Four 3x3 conv stages (``width``, 2x, 4x, 4x channels; the first three pooled) and a linear read-out
    of the whole feature map (6 x 3 for a 48 x 24 crop: where a cue lies along the axis matters).
    ``in_channels`` and ``crop_size`` (rows, columns) are those of ``ml.nail_direction``'s crop, which passes
    its own (``CROP_CHANNELS``, ``CROP_SIZE``); this file does not import it (it imports this one)."""

    def __init__(self, width: int = 16, in_channels: int = 4, crop_size: tuple = (48, 24)):
        super().__init__()
        self.width = int(width)
        c = self.width

        def stage(cin, cout, pool=True):
            layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            return layers + [nn.MaxPool2d(2)] if pool else layers

        self.features = nn.Sequential(*stage(in_channels, c), *stage(c, 2 * c), *stage(2 * c, 4 * c),
                                      *stage(4 * c, 4 * c, pool=False))
        rows, cols = crop_size[0] // 8, crop_size[1] // 8
        self.read_out = nn.Linear(4 * c * rows * cols, 1)

    def one_way(self, x: Tensor) -> Tensor:
        return self.read_out(self.features(x).flatten(1))[:, 0]

    def forward(self, x: Tensor) -> Tensor:
        """The logit of ``P(tip at the crop's first row)``, per crop of a batch ``(N, 4, 48, 24)``."""
        return self.one_way(x) - self.one_way(torch.flip(x, (2, 3)))


def nail_tip_net(width: int = 16, in_channels: int = 4, crop_size: tuple = (48, 24)) -> NailTipNet:
    """The builder (torchvision style): an untrained :class:`NailTipNet`."""
    return NailTipNet(width, in_channels, crop_size)
