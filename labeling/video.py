"""Candidate frames from a hand video: sampled at a fixed rate, sharp, not near-duplicates, at most N.

Plain OpenCV + NumPy (no Django). The video is streamed from disk one frame at a time, so memory does
not grow with its length: only the kept candidates (at most ``max_frames`` of them, downscaled copies
for the hashes) stay in memory.

Selection:
1. sample ``rate`` frames per second (frames between samples are grabbed, never decoded to pixels);
2. drop blurry samples: variance of the Laplacian of the grey frame (at a fixed 640-px width, so the
   threshold does not depend on the resolution) under ``blur_threshold``;
3. drop near-duplicates: perceptual hash within ``duplicate_distance`` bits of a frame already kept;
4. keep at most ``max_frames``: when more remain, the sharpest frame of each of ``max_frames`` equal
   time slices.
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Frame:
    index: int
    timestamp_s: float
    sharpness: float
    phash: int
    rgb: np.ndarray


def probe_video(path: str) -> VideoInfo:
    """Open the video and decode its first frame; VideoError when there is none."""
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError("the video cannot be opened: it may be damaged or in an unsupported format")
        ok, frame = capture.read()
        if not ok or frame is None:
            raise VideoError("the video has no frame that can be decoded")
        fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        return VideoInfo(frame_count=count, fps=float(fps), width=frame.shape[1], height=frame.shape[0])
    finally:
        capture.release()


def sharpness(bgr: np.ndarray) -> float:
    grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if grey.shape[1] != ANALYSIS_WIDTH:
        scale = ANALYSIS_WIDTH / grey.shape[1]
        grey = cv2.resize(grey, (ANALYSIS_WIDTH, max(1, round(grey.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def extract_frames(path: str, *, rate: float = 2.0, max_frames: int = 20, blur_threshold: float = 50.0,
                   duplicate_distance: int = 6, progress=None) -> list[Frame]:
    """The selected frames in time order, as RGB arrays. ``progress(fraction)`` is called as it reads."""
    info = probe_video(path)
    fps = info.fps if info.fps > 0 else 30.0
    step = max(1, round(fps / rate)) if rate > 0 else 1
    capture = cv2.VideoCapture(str(path))
    candidates: list[Frame] = []
    index = 0
    try:
        while True:
            if index % step == 0:
                ok, bgr = capture.read()
                if not ok:
                    break
                score = sharpness(bgr)
                if score >= blur_threshold:
                    digest = perceptual_hash(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
                    if all(hamming_distance(digest, kept.phash) > duplicate_distance for kept in candidates):
                        candidates.append(Frame(index, index / fps, score, digest, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
                        if len(candidates) > 4 * max_frames:  # bound memory on long videos
                            candidates = _spread(candidates, 2 * max_frames, info.frame_count or index + 1)
                if progress and info.frame_count:
                    progress(min(1.0, index / info.frame_count))
            elif not capture.grab():
                break
            index += 1
    finally:
        capture.release()
    if not candidates and index == 0:
        raise VideoError("the video has no frame that can be decoded")
    return _spread(candidates, max_frames, info.frame_count or index)


def _spread(frames: list[Frame], limit: int, frame_count: int) -> list[Frame]:
    """At most ``limit`` frames: the sharpest of each of ``limit`` equal time slices."""
    if len(frames) <= limit:
        return frames
    slices: dict[int, Frame] = {}
    for frame in frames:
        bucket = min(limit - 1, frame.index * limit // max(1, frame_count))
        if bucket not in slices or frame.sharpness > slices[bucket].sharpness:
            slices[bucket] = frame
    return sorted(slices.values(), key=lambda f: f.index)
