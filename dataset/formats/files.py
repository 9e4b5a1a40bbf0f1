"""Reading an import's files: annotation files below a folder (``walk_files``), the images they name
(``ImageFinder``, never outside the folder) and JSON (``read_json``).

Plain Python; this package must never import Django.
"""
from __future__ import annotations

import json
import os

from .errors import FormatError

def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == "__MACOSX"


def walk_files(root: str, suffixes: tuple[str, ...]) -> list[str]:
    """Files under ``root`` with one of ``suffixes`` (lower case), sorted; hidden files and __MACOSX skipped."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(d))
        found += [os.path.join(folder, f) for f in files if not _is_hidden(f) and f.lower().endswith(suffixes)]
    return sorted(found)


class ImageFinder:
    """Locate an image file named in an annotation file: next to it, in images/, or a unique match below root.
    Only files that really lie below root count: a symbolic link to elsewhere is never followed."""

    def __init__(self, root: str):
        self.root = root
        self._real_root = os.path.realpath(root)
        self._index: dict[str, list[str]] | None = None

    def _is_file_inside(self, path: str) -> bool:
        return os.path.isfile(path) and os.path.commonpath([self._real_root, os.path.realpath(path)]) == self._real_root

    def find(self, file_name: str, near: str, extra: tuple[str, ...] = ()) -> str | None:
        rel = file_name.replace("\\", "/").lstrip("/")
        parts = [p for p in rel.split("/") if p not in ("", ".", "..")]
        if not parts:
            return None
        base = parts[-1]
        parent = os.path.dirname(os.path.abspath(near))
        root = os.path.abspath(self.root)
        inside = os.path.commonpath([root, parent]) == root
        for folder in dict.fromkeys((near, *((parent,) if inside else ()), self.root)):
            for candidate in (os.path.join(folder, *parts), os.path.join(folder, base),
                              os.path.join(folder, "images", base), *(os.path.join(folder, e, base) for e in extra)):
                if self._is_file_inside(candidate):
                    return os.path.abspath(candidate)
        if self._index is None:
            self._index = {}
            for path in filter(self._is_file_inside, walk_files(self.root, ("",))):
                self._index.setdefault(os.path.basename(path), []).append(path)
        matches = self._index.get(base, [])
        return os.path.abspath(matches[0]) if len(matches) == 1 else None


def read_json(path: str):
    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise FormatError(f"{os.path.basename(path)} is not readable JSON: {exc}") from None
