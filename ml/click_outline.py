"""The nail at a click, read by a small network (:mod:`ml.models.nail_outline`): the image-only prior of
click-a-nail (issue #18). Plain Python + NumPy + OpenCV + PyTorch; never imports Django or an app.

:mod:`ml.click_segmentation` uses :func:`outline_probability` when no trained model is active: the network's
probability that each pixel is the clicked nail stands where a model's probability would (then GrabCut
refines it on the photo's colours when a negative point is given). Trained from confirmed outlines with
``bench/fit_click_outline.py`` (the tuning participants only) into :data:`WEIGHTS_PATH`.

The crop (:func:`click_crop`): a square ``CROP_NAILS`` expected nail sizes wide, centred on the first positive
point, warped to ``CROP_SIDE`` px; channels: CIE L*, a*, b* less the crop's mean (scaled), and Gaussian marks
of the positive and of the negative points.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ml.small_nets import as_rgb, centred_lab, fit_small_net, load_npz_net, save_npz_net, warp_corners

__all__ = ["CROP_NAILS", "CROP_SIDE", "WEIGHTS_PATH", "click_crop", "load_outline_net", "outline_probability",
           "save_outline_net", "train_outline_net"]

# torch (and ml.models.nail_outline) is imported where it is used: the site's URLs import click-a-nail.
CROP_SIDE = 96          # px of the network's square input
CROP_NAILS = 2.5        # the crop is this many expected nail sizes wide
CROP_CHANNELS = 5       # L*, a*, b* (less the crop's mean, scaled), positive points, negative points
POINT_SIGMA = 2.5       # px (of the crop) of a point's Gaussian mark
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "nail_outline.npz"


def crop_corners(centre, size: float, angle: float = 0.0, flip: bool = False) -> np.ndarray:
    """The crop's top-left, top-right and bottom-left corners in image coordinates: a square ``CROP_NAILS *
    size`` wide around ``centre``, turned by ``angle`` (radians), mirrored left-right when ``flip``."""
    half = CROP_NAILS * size / 2
    c, s = np.cos(angle), np.sin(angle)
    right, down = np.array([c, s]) * half, np.array([-s, c]) * half
    if flip:
        right = -right
    centre = np.asarray(centre, np.float64)
    return np.array([centre - right - down, centre + right - down, centre - right + down])


def click_crop(image: np.ndarray, points: Sequence, size: float, corners: np.ndarray | None = None
               ) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``(x, to_crop)``: the network's input for clicks ``points`` (``(x, y, label)``, image coordinates; the
    first positive one is the crop's centre) on a nail of about ``size`` px, float32 ``(5, 96, 96)``, and the
    map from image coordinates to the crop's pixel indices. ``corners`` (training: a turned or mirrored crop)
    replaces the plain square's."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if corners is None:
        corners = crop_corners(points[points[:, 2] == 1][0, :2], size)
    colours, to_crop = _crop_colours(image, corners)
    return _with_marks(colours, points, to_crop), to_crop


def _crop_colours(image: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The crop's colour channels (3 x 96 x 96, centred Lab) and the map from image coordinates to its pixels."""
    span = float(np.linalg.norm(np.asarray(corners[1]) - np.asarray(corners[0])))
    patch, to_crop = warp_corners(as_rgb(image), corners, (CROP_SIDE, CROP_SIDE), max(1.0, span / CROP_SIDE / 1.5),
                                  border=cv2.BORDER_REPLICATE)
    return centred_lab(patch).transpose(2, 0, 1), to_crop


def _with_marks(colours: np.ndarray, points, to_crop) -> np.ndarray:
    """The network's input: the colour channels and a Gaussian mark of each positive / negative point."""
    points = np.asarray(points, np.float64).reshape(-1, 3)
    marks = np.zeros((2, CROP_SIDE, CROP_SIDE), np.float32)
    grid = np.arange(CROP_SIDE, dtype=np.float32)
    for (x, y), label in zip(to_crop(points[:, :2]), points[:, 2]):
        bump = np.exp(-0.5 * ((grid[None, :] - x) ** 2 + (grid[:, None] - y) ** 2) / POINT_SIGMA ** 2)
        channel = marks[0 if label == 1 else 1]
        np.maximum(channel, bump, out=channel)
    return np.ascontiguousarray(np.concatenate([colours, marks], axis=0), np.float32)


def save_outline_net(net, path=WEIGHTS_PATH, about: dict | None = None) -> Path:
    """Write the network's weights (float16) and ``about`` (how it was trained) to an ``.npz``."""
    return save_npz_net(net, path, {"width": net.width, **(about or {})}, half=True)


def _build(meta: dict):
    from ml.models.nail_outline import nail_outline_net

    return nail_outline_net(int(meta["width"]), CROP_CHANNELS)


def load_outline_net(path=None):
    """The trained :class:`ml.models.nail_outline.NailOutlineNet` at ``path`` (default :data:`WEIGHTS_PATH`),
    read once per file version; None when there is no such file (click-a-nail then uses GrabCut alone)."""
    return load_npz_net(path if path is not None else WEIGHTS_PATH, _build)


def outline_probability(image: np.ndarray, points: Sequence, size: float, net=None
                        ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(prob, affine)``: the network's probability that each crop pixel is the clicked nail (``CROP_SIDE``
    square, float32) and the 2 x 3 map from image pixel indices to the crop's; None without a trained network."""
    net = net if net is not None else load_outline_net()
    if net is None:
        return None
    import torch

    x, to_crop = click_crop(image, points, size)
    net.eval()
    with torch.no_grad():
        prob = torch.sigmoid(net(torch.from_numpy(x)[None]))[0].numpy()
    return prob.astype(np.float32), _affine_of(to_crop)


def _training_crop(image, polygon, size, click, rng) -> tuple[np.ndarray, np.ndarray]:
    """One augmented training crop (turned, mirrored, scaled; corrective points near the edge; lightness and
    colour contrast scaled) and its target, the clicked nail's mask (float32 96 x 96)."""
    points = [(click[0], click[1], 1)]
    size = size * float(np.exp(rng.normal(0, 0.2)))
    corners = crop_corners(click, size, rng.uniform(-np.pi, np.pi), bool(rng.random() < 0.5))
    colours, to_crop = _crop_colours(image, corners)
    target = np.zeros((CROP_SIDE, CROP_SIDE), np.uint8)
    cv2.fillPoly(target, [np.round(to_crop(polygon) * 16).astype(np.int32)], 1, shift=4)
    if target.any():  # corrective points near the edge, as an annotator adds them
        for label, share in ((1, 0.3), (0, 0.3)):
            if rng.random() < share:
                region = target if label == 1 else 1 - target
                distance = cv2.distanceTransform(region, cv2.DIST_L2, 3)
                reach = (0.12 if label == 1 else 0.2) * CROP_SIDE / CROP_NAILS
                rows, cols = np.nonzero((distance >= 1) & (distance <= reach))
                if len(rows):
                    k = rng.integers(len(rows))
                    inverse = cv2.invertAffineTransform(_affine_of(to_crop))
                    px, py = inverse @ np.array([cols[k], rows[k], 1.0])
                    points.append((px + 0.5, py + 0.5, label))
    x = _with_marks(colours, points, to_crop)
    x[0] *= np.exp(rng.normal(0, 0.2))
    x[1:3] *= np.exp(rng.normal(0, 0.3))
    return x, target.astype(np.float32)


def _affine_of(to_crop) -> np.ndarray:
    """The 2 x 3 map from image pixel indices to crop pixel indices of ``to_crop``."""
    origin, ex, ey = to_crop(np.array([[0.5, 0.5], [1.5, 0.5], [0.5, 1.5]]))
    return np.stack([ex - origin, ey - origin, origin], axis=1).astype(np.float64)


def train_outline_net(samples: Sequence[tuple], *, epochs: int = 30, crops_per_nail: int = 4, width: int = 16,
                      seed: int = 0, batch_size: int = 16, learning_rate: float = 3e-3,
                      progress: Callable[[int, float], None] | None = None):
    """Train a :class:`NailOutlineNet` on ``(image, polygon, nail size, click region)`` samples, where the click
    region is ``(pole, radius)``: clicks fall uniformly in the disk of ``radius`` around the pole. Each crop
    is turned at random, mirrored, scaled (sd 20 %), its lightness and colour contrast scaled, and gets a
    corrective positive point inside near the edge and a negative one outside near it (30 % each).
    Loss: binary cross-entropy + soft Dice. AdamW, one-cycle. Deterministic for a seed; returns the network
    in eval mode."""
    import torch

    from ml.models.nail_outline import nail_outline_net

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = nail_outline_net(width, CROP_CHANNELS)
    if not samples:
        return net.eval()
    per_epoch = len(samples) * crops_per_nail
    steps = epochs * ((per_epoch + batch_size - 1) // batch_size)

    def epoch_batches(epoch):
        order = rng.permutation(np.repeat(np.arange(len(samples)), crops_per_nail))
        for start in range(0, len(order), batch_size):
            xs, ys = [], []
            for k in order[start:start + batch_size]:
                image, polygon, size, (pole, radius) = samples[k]
                r, t = radius * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
                click = np.asarray(pole, np.float64) + r * np.array([np.cos(t), np.sin(t)])
                x, y = _training_crop(image, polygon, size, click, rng)
                xs.append(x)
                ys.append(y)
            yield xs, ys

    def loss_of(logits, ys):
        target = torch.from_numpy(np.stack(ys))
        prob = torch.sigmoid(logits)
        dice = 1 - (2 * (prob * target).sum((1, 2)) + 1) / (prob.sum((1, 2)) + target.sum((1, 2)) + 1)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, target) + dice.mean()
    return fit_small_net(net, epoch_batches, loss_of, epochs=epochs, steps=steps, learning_rate=learning_rate,
                         weight_decay=1e-4, progress=progress)

