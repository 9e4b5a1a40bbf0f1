"""What the project's small shipped networks share (``ml.nail_direction``'s tip reader, ``ml.click_outline``'s
click-to-outline): their input crops (a region of the photo warped to a fixed grid, its colours as CIE Lab
less the crop's mean) and their weights as ``.npz`` files (float32 arrays and a JSON ``__meta__``), read
once per file version. Plain NumPy + OpenCV; torch is imported only where a network is built.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

__all__ = ["LAB_SCALE", "centred_lab", "fit_small_net", "load_npz_net", "save_npz_net", "warp_corners"]

LAB_SCALE = np.array([20.0, 10.0, 10.0], np.float32)


def centred_lab(patch: np.ndarray) -> np.ndarray:
    """float32 H x W x 3: a uint8 RGB patch as CIE L*, a*, b*, each less the patch's mean, scaled by ``LAB_SCALE``."""
    lab = cv2.cvtColor(patch.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    return (lab - lab.reshape(-1, 3).mean(axis=0)) / LAB_SCALE


def as_rgb(image: np.ndarray) -> np.ndarray:
    """The photo as H x W x 3 (a grey one repeated, an alpha channel dropped)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return image[..., :3]


def warp_corners(image: np.ndarray, corners: np.ndarray, size: tuple[int, int], shrink: float,
                 border: int = cv2.BORDER_REFLECT) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """``(patch, to_patch)``: the region of ``image`` whose first three ``corners`` (image coordinates, pixel
    centres at i + 0.5) go to the patch's top-left, top-right and bottom-left corners, warped to ``size``
    (columns, rows); ``to_patch(points)`` maps image coordinates to the patch's pixel indices. When
    ``shrink`` > 1 (the region is that many times larger than the patch along its larger scale, over 1.5) the
    region is first reduced by area averaging, so the warp does not alias."""
    cols, rows = size
    corners = np.asarray(corners, np.float64)
    origin = np.zeros(2)
    source = image
    if shrink > 1.0:
        height, width_px = image.shape[:2]
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + 2
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width_px, x1), min(height, y1)
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            region = image[y0:y1, x0:x1]
            reduced = (max(1, round((x1 - x0) / shrink)), max(1, round((y1 - y0) / shrink)))
            source = cv2.resize(np.ascontiguousarray(region), reduced, interpolation=cv2.INTER_AREA)
            origin = np.array([x0, y0], np.float64)
            shrink = np.array([(x1 - x0) / reduced[0], (y1 - y0) / reduced[1]])
        else:
            shrink = 1.0
    # Image coordinates put pixel centres at i + 0.5; OpenCV's warp, at i.
    to_source = lambda p: (np.asarray(p, np.float64) - origin) / shrink - 0.5  # noqa: E731
    transform = cv2.getAffineTransform(np.float32(to_source(corners[:3])),
                                       np.float32([[-0.5, -0.5], [cols - 0.5, -0.5], [-0.5, rows - 0.5]]))
    patch = cv2.warpAffine(np.ascontiguousarray(source), transform, (cols, rows), flags=cv2.INTER_LINEAR,
                           borderMode=border)

    def to_patch(points) -> np.ndarray:
        return cv2.transform(np.float32(to_source(np.asarray(points, np.float64).reshape(-1, 2)))[None], transform)[0]
    return patch, to_patch


def save_npz_net(net, path, meta: dict, half: bool = False) -> Path:
    """Write a network's weights (float32 arrays, or float16 when ``half``: read back as float32) and ``meta``
    (what builds it, how it was trained) to an ``.npz``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"w:{key}": value.detach().cpu().numpy() for key, value in net.state_dict().items()}
    if half:
        arrays = {key: value.astype(np.float16) if value.dtype == np.float32 else value
                  for key, value in arrays.items()}
    with path.open("wb") as fh:
        np.savez_compressed(fh, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    return path


@functools.lru_cache(maxsize=8)
def _load(path: str, stamp: tuple, build: Callable):
    import torch

    with np.load(path) as data:
        meta = json.loads(bytes(data["__meta__"]).decode())
        state = {key[2:]: torch.from_numpy(np.array(data[key], np.float32 if data[key].dtype == np.float16 else None))
                 for key in data.files if key.startswith("w:")}
    net = build(meta)
    net.load_state_dict(state)
    return net.eval()


def load_npz_net(path, build: Callable):
    """The network saved at ``path`` by :func:`save_npz_net`, built by ``build(meta)`` (a module-level function)
    and read once per file version, in eval mode; None when there is no such file."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return _load(str(path), (stat.st_mtime_ns, stat.st_size), build)


def fit_small_net(net, epoch_batches: Callable[[int], Iterable[tuple[list, list]]], loss_of: Callable, *, epochs: int,
                  steps: int, learning_rate: float, weight_decay: float,
                  progress: Callable[[int, float], None] | None = None):
    """The small networks' training loop: AdamW with a one-cycle schedule over ``steps`` steps;
    ``epoch_batches(epoch)`` yields ``(inputs, targets)`` lists (a batch of fewer than two is skipped: batch norm
    needs two), ``loss_of(output, targets)`` is the loss. ``progress(epoch, mean loss)`` after each epoch.
    Returns the network, in eval mode."""
    import torch

    optimizer = torch.optim.AdamW(net.parameters(), learning_rate, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=max(steps, 1))
    for epoch in range(epochs):
        net.train()
        losses = []
        for xs, ys in epoch_batches(epoch):
            if len(xs) < 2:
                continue
            loss = loss_of(net(torch.from_numpy(np.stack(xs))), ys)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
        if progress is not None:
            progress(epoch + 1, float(np.mean(losses)) if losses else float("nan"))
    return net.eval()
