"""The outline of the nail at a click: a small U-Net on a square crop centred on the click (issue #18).
Plain PyTorch; never imports Django. The crop, the weights and training live in :mod:`ml.click_outline`.

Input: ``in_channels`` maps of a ``size`` x ``size`` crop (the photo's colours and the clicks, see
``ml.click_outline.click_crop``); output: one logit per pixel, ``P(this pixel is the clicked nail)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["NailOutlineNet", "nail_outline_net"]


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class NailOutlineNet(nn.Module):
    """An encoder of three pooled stages (``width``, 2x, 4x channels) and a bottleneck (6x), a decoder that
    upsamples back with the encoder's features at each scale (U-Net), and a 1x1 read-out. The crop's side
    must be a multiple of 8."""

    def __init__(self, width: int = 16, in_channels: int = 5):
        super().__init__()
        self.width = int(width)
        c = self.width
        self.down = nn.ModuleList([_block(in_channels, c), _block(c, 2 * c), _block(2 * c, 4 * c)])
        self.bottom = _block(4 * c, 6 * c)
        self.up = nn.ModuleList([_block(6 * c + 4 * c, 4 * c), _block(4 * c + 2 * c, 2 * c), _block(2 * c + c, c)])
        self.read_out = nn.Conv2d(c, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, H, W)`` for crops ``(N, in_channels, H, W)``."""
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = nn.functional.max_pool2d(x, 2)
        x = self.bottom(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return self.read_out(x)[:, 0]


def nail_outline_net(width: int = 16, in_channels: int = 5) -> NailOutlineNet:
    """The builder (torchvision style): an untrained :class:`NailOutlineNet`."""
    return NailOutlineNet(width, in_channels)
