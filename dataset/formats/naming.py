"""Names of pictures inside an export: after the file the participant sent (``picture_name``) or the image id,
made unique per export (``ExportNames``); ``stem_of`` a file name.

Plain Python; this package must never import Django.
"""
from __future__ import annotations

import os
import re

from .errors import FormatError

NAME_CHOICES = ("original", "id")   # exports name images after what the participant sent, or by image id
MAX_STEM = 100
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f:*?"<>|]+')


def stem_of(file_name: str) -> str:
    stem, _ = os.path.splitext(file_name)
    return stem or file_name


def picture_name(original_name: str, frame_index: int | None, suffix: str) -> str:
    """The name of a picture after the file the participant sent: its base name without folders, unsafe
    characters as '_', with the stored image's ``suffix`` (its bytes are that type now); a frame of a video
    gets its index: ``clip.mp4`` frame 12 -> ``clip-frame0012.jpg``. "" when nothing usable is left."""
    base = str(original_name or "").replace("\\", "/").split("/")[-1]
    stem = os.path.splitext(base)[0] if "." in base.lstrip(".") else base
    stem = " ".join(_UNSAFE_NAME.sub("_", stem).split()).strip(". -")[:MAX_STEM].rstrip(". -")
    if not stem:
        return ""
    if frame_index is not None:
        stem = f"{stem}-frame{frame_index:04d}"
    return stem + suffix


class ExportNames:
    """File names of one export: what participants called their files (``names="original"``) or the image id
    (``names="id"``), made unique, e.g. ``hand.jpg``, ``hand-2.jpg``. Unique by stem and regardless of case:
    YOLO and masks name label files after the stem, and some file systems ignore case."""

    def __init__(self, names: str = "original"):
        if names not in NAME_CHOICES:
            raise FormatError(f"names must be one of {', '.join(NAME_CHOICES)}, got {names!r}")
        self.names = names
        self._used: set[str] = set()

    def name(self, image_id: int, suffix: str, original_name: str = "", frame_index: int | None = None) -> str:
        wanted = picture_name(original_name, frame_index, suffix) if self.names == "original" else ""
        stem = stem_of(wanted) if wanted else f"{image_id:07d}"
        candidate, number = stem, 1
        while candidate.casefold() in self._used:
            number += 1
            candidate = f"{stem}-{number}"
        self._used.add(candidate.casefold())
        return candidate + suffix
