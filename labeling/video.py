"""Frames from a hand video: sampled at a fixed rate, sharp, not near-duplicates, at most N.

Plain OpenCV + NumPy (no Django). The video is streamed from disk twice, so memory does not grow with
its length:

1. **Selection pass** (``select_frames``): every frame is grabbed, only the sampled ones are decoded to
   pixels, scored and dropped again. What stays is a small ``Candidate`` record per frame that may be
   kept (frame index, timestamp, sharpness, perceptual hash): never pixels, and never more than
   ``4 * max_frames + 1`` records.
2. **Reading pass** (``read_frames``): the video is grabbed again from the start up to the last selected
   frame, and each selected frame is decoded and handed to the caller's callback, one at a time: at most
   one full-resolution frame is alive at once. Frames are found by counting grabs, as in the first pass,
   not by seeking (``CAP_PROP_POS_FRAMES`` seeks by timestamp and can land on another frame in
   variable-frame-rate phone videos), so the frame read is the frame scored.

``extract_frames`` runs both. Selection:

1. sample ``rate`` frames per second (frames between samples are grabbed, never decoded to pixels);
2. drop blurry samples: variance of the Laplacian of the grey frame (at a fixed 640-px width, so the
   threshold does not depend on the resolution) under ``blur_threshold``;
3. drop near-duplicates: perceptual hash (of the full-resolution grey frame) within
   ``duplicate_distance`` bits of a candidate already kept;
4. keep at most ``max_frames``: when more remain, the sharpest frame of each of ``max_frames`` equal
   time slices. Whenever more than ``4 * max_frames`` candidates pile up they are thinned to the sharpest
   of ``2 * max_frames`` slices first: those slices nest in the final ones, so the thinning bounds the
   records and never drops a frame that would win a final slice.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from dataset.phash import hamming_distance, perceptual_hash

ANALYSIS_WIDTH = 640


class VideoError(ValueError):
    """The video cannot be used; the message says why."""


@dataclass
class VideoInfo:
    frame_count: int
    fps: float
    width: int
    height: int

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps if self.fps > 0 else 0.0


@dataclass(frozen=True)
class Candidate:
    """A sampled frame that passed the blur and near-duplicate checks: where it is and its scores, no pixels."""
    index: int
    timestamp_s: float
    sharpness: float
    phash: int


@dataclass(frozen=True, eq=False)
class Frame(Candidate):
    """A selected frame with its full-resolution pixels (RGB)."""
    rgb: np.ndarray


@contextmanager
def _capture(path: str):
    capture = cv2.VideoCapture(str(path))
    try:
        yield capture
    finally:
        capture.release()


def probe_video(path: str) -> VideoInfo:
    """Open the video and decode its first frame; VideoError when there is none."""
    with _capture(path) as capture:
        if not capture.isOpened():
            raise VideoError("the video cannot be opened: it may be damaged or in an unsupported format")
        ok, frame = capture.read()
        if not ok or frame is None:
            raise VideoError("the video has no frame that can be decoded")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return VideoInfo(frame_count=count, fps=float(fps), width=frame.shape[1], height=frame.shape[0])


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian of a grey frame, rescaled to ``ANALYSIS_WIDTH`` first."""
    if grey.shape[1] != ANALYSIS_WIDTH:
        scale = ANALYSIS_WIDTH / grey.shape[1]
        grey = cv2.resize(grey, (ANALYSIS_WIDTH, max(1, round(grey.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def select_frames(path: str, *, rate: float = 2.0, max_frames: int = 20, blur_threshold: float = 50.0,
                  duplicate_distance: int = 6, progress: Callable[[float], None] | None = None) -> list[Candidate]:
    """The selection pass: the frames to keep, in time order, without their pixels.
    ``progress(fraction)`` is called as it reads."""
    info = probe_video(path)
    fps = info.fps if info.fps > 0 else 30.0
    step = max(1, round(fps / rate)) if rate > 0 else 1
    candidates: list[Candidate] = []
    index = 0
    with _capture(path) as capture:
        while capture.grab():
            if index % step == 0:
                ok, bgr = capture.retrieve()
                if not ok:
                    break
                grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
                score = sharpness(grey)
                if score >= blur_threshold:
                    digest = perceptual_hash(grey)
                    if all(hamming_distance(digest, kept.phash) > duplicate_distance for kept in candidates):
                        candidates.append(Candidate(index, index / fps, score, digest))
                        if len(candidates) > 4 * max_frames:
                            candidates = _spread(candidates, 2 * max_frames, info.frame_count or index + 1)
                if progress and info.frame_count:
                    progress(min(1.0, index / info.frame_count))
            index += 1
    if index == 0:
        raise VideoError("the video has no frame that can be decoded")
    return _spread(candidates, max_frames, info.frame_count or index)


def read_frames(path: str, selected: list[Candidate], on_frame: Callable[[Frame], None], *,
                progress: Callable[[float], None] | None = None) -> None:
    """The reading pass: decode the ``selected`` frames (in time order) and call ``on_frame`` with each,
    one at a time; nothing of a frame is kept once its call returns. ``progress(fraction)`` is called
    after each frame."""
    if not selected:
        return
    last = selected[-1].index
    wanted = iter(selected)
    candidate = next(wanted)
    index = 0
    with _capture(path) as capture:
        while candidate is not None:
            if not capture.grab():
                raise VideoError(f"the video ended at frame {index} while reading it again for frame {candidate.index}")
            if index == candidate.index:
                on_frame(Frame(**asdict(candidate), rgb=_retrieve_rgb(capture)))
                if progress:
                    progress((index + 1) / (last + 1))
                candidate = next(wanted, None)
            index += 1


def _retrieve_rgb(capture: cv2.VideoCapture) -> np.ndarray:
    ok, bgr = capture.retrieve()
    if not ok:
        raise VideoError("a frame that could be decoded before cannot be decoded again")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def extract_frames(path: str, on_frame: Callable[[Frame], None], *, rate: float = 2.0, max_frames: int = 20,
                   blur_threshold: float = 50.0, duplicate_distance: int = 6,
                   progress: Callable[[float], None] | None = None) -> list[Candidate]:
    """Both passes: call ``on_frame`` with each selected frame in time order, one at a time, and return
    the selection. ``progress(fraction)``: the selection pass is the first half, the reading pass the second."""
    selected = select_frames(path, rate=rate, max_frames=max_frames, blur_threshold=blur_threshold,
                             duplicate_distance=duplicate_distance, progress=_share_of(progress, 0.0, 0.5))
    read_frames(path, selected, on_frame, progress=_share_of(progress, 0.5, 0.5))
    return selected


def _share_of(progress: Callable[[float], None] | None, start: float, share: float) -> Callable[[float], None] | None:
    """A progress callback for one part of the work: its 0..1 becomes ``start .. start + share``."""
    return (lambda fraction: progress(start + share * fraction)) if progress else None


def _spread(candidates: list[Candidate], limit: int, frame_count: int) -> list[Candidate]:
    """At most ``limit`` candidates: the sharpest of each of ``limit`` equal time slices."""
    if len(candidates) <= limit:
        return candidates
    slices: dict[int, Candidate] = {}
    for candidate in candidates:
        bucket = min(limit - 1, candidate.index * limit // max(1, frame_count))
        if bucket not in slices or candidate.sharpness > slices[bucket].sharpness:
            slices[bucket] = candidate
    return sorted(slices.values(), key=lambda c: c.index)
