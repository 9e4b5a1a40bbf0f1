"""Which end of a nail's axis is its tip, read from the photo: a small CNN (:mod:`ml.models.nail_tip`) on a
crop aligned with the axis (issue #16).

Plain Python + NumPy + OpenCV + PyTorch; never imports Django or an app. Used by
:mod:`ml.label_suggestions` as each nail's vote on its direction; trained from confirmed labels with
``bench/fit_label_suggestions.py`` (tuning participants only) into :data:`WEIGHTS_PATH`.

The crop (:func:`nail_crop`) runs ``ALONG`` nail lengths either way along the axis and ``ACROSS`` nail widths
either side, so it holds the nail, its free edge and cuticle, and the skin beyond both ends (the finger
runs on past the base; the fingertip ends just past the tip). Row 0 is the ``+u`` end. Channels: CIE L*, a*,
b* less the crop's mean (scaled), and the nail's mask. The network is antisymmetric (reading the axis the
other way gives ``1 - p``), so one forward pass votes on both ends.

Before it, a logistic regression on three colour cues of the nail alone (the free edge lighter and less
saturated than the nail at the cuticle) was the vote: 0.72 of nails right (leave-one-participant-out on the
tuning participants); this CNN: 0.967 (5 participant-grouped folds of them, ``bench/fit_label_suggestions.py``;
all of the 136 reads it is at least 0.9 sure of).

The finger-axis network (:func:`train_axis_net`, :func:`finger_axis_reads`, :data:`AXIS_WEIGHTS_PATH`) is the same
architecture on the same crop, trained to answer ``(1 + cos phi) / 2`` for a read turned ``phi`` away from the
confirmed base -> tip direction: a round nail says little about its axis, its finger does, and of
:data:`AXIS_TURNS` reads half a turn apart the one it is most decided on lies along the finger (within 30
degrees for 85 % of the tuning participants' round nails, 5 participant-grouped folds; their own major axis:
51 %).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from ml.small_nets import as_rgb, centred_lab, fit_small_net, load_npz_net, save_npz_net, warp_corners

__all__ = ["ALONG", "ACROSS", "AXIS_TURNS", "AXIS_WEIGHTS_PATH", "CROP_CHANNELS", "CROP_SIZE", "WEIGHTS_PATH",
           "finger_axis_reads", "load_axis_net", "load_tip_net", "nail_crop", "save_tip_net", "tip_probabilities",
           "train_axis_net", "train_tip_net"]

# torch (and ml.models.nail_tip, which needs it) is imported where it is used: the site's URLs import the label
# suggestions, which import this module, and the web process loads torch on first use only.
CROP_SIZE = (48, 24)    # rows (along the axis, row 0 at the +u end) x columns (across)
CROP_CHANNELS = 4       # L*, a*, b* (each less the crop's mean, scaled), the nail's mask
ALONG, ACROSS = 1.6, 1.4   # the crop's half extents: nail lengths along the axis, nail widths across
WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "nail_tip.npz"
AXIS_WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "nail_axis.npz"
AXIS_TURNS = 12         # the finger-axis network reads a nail every 15 degrees


def _frame(polygon, axis) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(centre, unit axis, length along it, width across) of a nail for this axis."""
    pts = np.asarray(polygon, np.float64)
    u = np.asarray(axis, np.float64)
    u = u / max(float(np.linalg.norm(u)), 1e-12)
    v = np.array([-u[1], u[0]])
    t, s = pts @ u, pts @ v
    centre = u * (t.max() + t.min()) / 2 + v * (s.max() + s.min()) / 2
    return centre, u, max(float(np.ptp(t)), 1.0), max(float(np.ptp(s)), 1.0)


def nail_crop(image: np.ndarray, polygon, axis, jitter: tuple | None = None) -> np.ndarray:
    """The network's input for one nail read along ``axis``: float32 ``(4, 48, 24)``, row 0 at the ``+axis``
    end. ``image``: uint8 RGB (or grey). ``jitter`` (training only): (angle rad, scale, shift along in
    lengths, shift across in widths). The crop for ``-axis`` is exactly the one for ``axis`` turned half a
    turn (one of the two is sampled, the other turned), so the network's two reads add up to 1."""
    if jitter is None:
        u = np.asarray(axis, np.float64)
        if u[1] > 0 or (u[1] == 0 and u[0] < 0):
            return nail_crop(image, polygon, -u)[:, ::-1, ::-1].copy()
    image = as_rgb(image)
    rows, cols = CROP_SIZE
    centre, u, length, width = _frame(polygon, axis)
    half_along, half_across = ALONG * length, ACROSS * max(width, 0.5 * length)
    if jitter is not None:
        angle, scale, shift_along, shift_across = jitter
        c, s = np.cos(angle), np.sin(angle)
        centre = centre + shift_along * length * u + shift_across * width * np.array([-u[1], u[0]])
        u = np.array([c * u[0] - s * u[1], s * u[0] + c * u[1]])
        half_along, half_across = half_along * scale, half_across * scale
    v = np.array([-u[1], u[0]])
    corners = np.array([centre + half_along * u - half_across * v, centre + half_along * u + half_across * v,
                        centre - half_along * u - half_across * v, centre - half_along * u + half_across * v])
    # A large nail: its region is shrunk first (area averaging), so the warp does not alias.
    patch, to_patch = warp_corners(image, corners, (cols, rows), max(1.0, (2 * half_along / rows) / 1.5))
    lab = centred_lab(patch)
    mask = np.zeros((rows, cols), np.uint8)
    outline = to_patch(polygon)
    cv2.fillPoly(mask, [np.round(outline * 16).astype(np.int32)], 1, shift=4)
    return np.concatenate([lab, mask[..., None].astype(np.float32)], axis=2).transpose(2, 0, 1).copy()


def save_tip_net(net, path=WEIGHTS_PATH, about: dict | None = None) -> Path:
    """Write the network's weights (float32 arrays) and ``about`` (how it was trained) to an ``.npz``."""
    return save_npz_net(net, path, {"width": net.width, **(about or {})})


def _build(meta: dict):
    from ml.models.nail_tip import nail_tip_net

    return nail_tip_net(int(meta["width"]), CROP_CHANNELS, CROP_SIZE)


def load_tip_net(path=None):
    """The trained :class:`ml.models.nail_tip.NailTipNet` at ``path`` (default :data:`WEIGHTS_PATH`), read once
    per file version; None when there is no such file (the suggestions then read no direction from the photo)."""
    return load_npz_net(path if path is not None else WEIGHTS_PATH, _build)


def load_axis_net(path=None):
    """The trained finger-axis network (:func:`train_axis_net`) at ``path`` (default :data:`AXIS_WEIGHTS_PATH`);
    None when there is no such file."""
    return load_npz_net(path if path is not None else AXIS_WEIGHTS_PATH, _build)


def tip_probabilities(image: np.ndarray | None, reads: Sequence[tuple], net=None) -> list[float | None]:
    """``P(the tip is at the +axis end)`` for each ``(polygon, axis)`` of one photo (one batch); None for
    every read without a photo or without a trained network."""
    net = net if net is not None else load_tip_net()
    if image is None or net is None or not reads:
        return [None] * len(reads)
    import torch

    batch = torch.from_numpy(np.stack([nail_crop(image, polygon, axis) for polygon, axis in reads]))
    net.eval()
    with torch.no_grad():
        return [float(p) for p in torch.sigmoid(net(batch)).numpy()]


def _fit_reads(samples: Sequence, read: Callable, *, epochs: int, width: int, seed: int, batch_size: int,
               learning_rate: float, progress: Callable[[int, float], None] | None):
    """Train a :class:`NailTipNet` on reads of ``samples``: ``read(sample, rng)`` gives ``(image, polygon, axis,
    answer, jitter)`` (the answer: P(tip at the +axis end)); each crop is then read either way along its axis
    half the time (the answer flips with it), mirrored across half the time, its lightness and colour contrast
    scaled. AdamW, one-cycle schedule; deterministic for a seed. Returns the network, in eval mode."""
    import torch

    from ml.models.nail_tip import nail_tip_net

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = nail_tip_net(width, CROP_CHANNELS, CROP_SIZE)
    if not samples:
        return net.eval()
    steps = epochs * ((len(samples) + batch_size - 1) // batch_size)

    def epoch_batches(epoch):
        order = rng.permutation(len(samples))
        for start in range(0, len(order), batch_size):
            xs, ys = [], []
            for k in order[start:start + batch_size]:
                image, polygon, axis, y, jitter = read(samples[k], rng)
                x = nail_crop(image, polygon, axis, jitter)
                if rng.random() < 0.5:
                    x, y = x[:, ::-1, ::-1], 1.0 - y
                if rng.random() < 0.5:
                    x = x[:, :, ::-1]
                x = x.copy()
                x[0] *= np.exp(rng.normal(0, 0.2))
                x[1:3] *= np.exp(rng.normal(0, 0.3))
                xs.append(x)
                ys.append(y)
            yield xs, ys

    def loss_of(logits, ys):
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor(ys, dtype=logits.dtype))
    return fit_small_net(net, epoch_batches, loss_of, epochs=epochs, steps=steps, learning_rate=learning_rate,
                         weight_decay=1e-3, progress=progress)


def train_tip_net(samples: Sequence[tuple], *, epochs: int = 30, width: int = 16, seed: int = 0,
                  batch_size: int = 32, learning_rate: float = 3e-3, off_axis_share: float = 0.25,
                  progress: Callable[[int, float], None] | None = None):
    """Train a :class:`NailTipNet` on ``(image, polygon, axis, tip_at_plus_axis)`` samples: AdamW, one-cycle
    schedule; each crop jittered (rotation sd 0.15 rad, scale sd 15 %, shift sd 8 %), read either way along
    the axis (the label flips with it), mirrored across, its lightness and colour contrast scaled; a share
    (``off_axis_share``) is read across the nail (the axis turned a quarter) with the answer 0.5, so that a
    read along the wrong axis of a round nail is unsure rather than a confident guess.
    Deterministic for a seed. ``progress(epoch, mean loss)`` after each epoch. Returns the network, in eval mode."""
    def read(sample, rng):
        image, polygon, axis, tip_ahead = sample
        jitter = (rng.normal(0, 0.15), float(np.exp(rng.normal(0, 0.15))), *rng.normal(0, 0.08, 2))
        y = float(bool(tip_ahead))
        if rng.random() < off_axis_share:  # read across the nail: no answer either way
            axis, y = np.array([-axis[1], axis[0]]), 0.5
        return image, polygon, axis, y, jitter

    return _fit_reads(samples, read, epochs=epochs, width=width, seed=seed, batch_size=batch_size,
                      learning_rate=learning_rate, progress=progress)


def train_axis_net(samples: Sequence[tuple], *, epochs: int = 30, width: int = 16, seed: int = 0,
                   batch_size: int = 32, learning_rate: float = 3e-3, turned_share: float = 0.5,
                   progress: Callable[[int, float], None] | None = None):
    """Train the finger-axis network (:func:`finger_axis_reads`) on ``(image, polygon, base -> tip unit
    vector)`` samples: each read along the confirmed direction turned by an angle ``phi`` answers
    ``(1 + cos phi) / 2``; ``phi`` is uniform on the circle for a share (``turned_share``) of the reads, about 0
    for the rest (sd 0.15 rad). So its answer falls off smoothly as a read turns away from the finger, and
    the read a round nail is most decided on points along its finger. Otherwise as :func:`train_tip_net`."""
    def read(sample, rng):
        image, polygon, direction = sample
        phi = rng.uniform(-np.pi, np.pi) if rng.random() < turned_share else rng.normal(0, 0.15)
        c, s = np.cos(phi), np.sin(phi)
        d = np.asarray(direction, np.float64)
        axis = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
        return image, polygon, axis, 0.5 + 0.5 * float(np.cos(phi)), (0.0, float(np.exp(rng.normal(0, 0.15))),
                                                                      *rng.normal(0, 0.08, 2))

    return _fit_reads(samples, read, epochs=epochs, width=width, seed=seed, batch_size=batch_size,
                      learning_rate=learning_rate, progress=progress)


def finger_axis_reads(image: np.ndarray | None, polygons: Sequence, net=None, turns: int = AXIS_TURNS
                      ) -> list[tuple[np.ndarray, float] | None]:
    """Per nail, ``(unit axis, decision)``: of ``turns`` reads half a turn apart by steps, the one the
    finger-axis network (:func:`train_axis_net`; default: :data:`AXIS_WEIGHTS_PATH`) is most decided on, and
    ``|P - 0.5|`` there; the axis is signed toward the end the network calls the tip. None for every nail
    without a photo or without a trained network."""
    net = net if net is not None else load_axis_net()
    if image is None or net is None or not polygons:
        return [None] * len(polygons)
    angles = np.arange(turns) * np.pi / turns
    axes = [np.array([np.cos(a), np.sin(a)]) for a in angles]
    ps = tip_probabilities(image, [(polygon, axis) for polygon in polygons for axis in axes], net)
    out = []
    for k in range(len(polygons)):
        mine = ps[k * turns:(k + 1) * turns]
        best = int(np.argmax([abs(p - 0.5) for p in mine]))
        out.append((axes[best] * (1.0 if mine[best] >= 0.5 else -1.0), abs(mine[best] - 0.5)))
    return out
