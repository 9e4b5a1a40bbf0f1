"""The format registry: Exporter / Importer, the @exporter / @importer decorators that fill EXPORTERS and
IMPORTERS, and get_exporter / get_importer. Every list of formats (pages, API, commands, benches) reads these.

Plain Python; this package must never import Django.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from .archives import safe_extract
from .errors import FormatError
from .labels import prepare_label_map

if TYPE_CHECKING:
    from .records import ImportedDataset
    from .targets import ExportTarget

@dataclass(frozen=True)
class Exporter:
    name: str
    ext: str
    func: Callable
    description: str = ""
    title: str = ""     # how pages name the format ("COCO", "LabelMe")

    def export(self, records: Iterable, target: "ExportTarget", meta: dict) -> dict:
        """Write ``records`` (consumed once, lazily) into ``target``; returns a summary dict."""
        return self.func(records, target, meta)

    __call__ = export


@dataclass(frozen=True)
class Importer:
    name: str
    ext: str
    func: Callable
    description: str = ""
    patterns: tuple[str, ...] = ()  # the annotation files of this format in a folder (globs), e.g. ("*.json",)
    embeds_images: bool = False     # its label files may carry the picture itself (LabelMe imageData)

    def parse(self, path, label_map: dict | None = None, *, extract_dir=None,
              max_archive_size: int | None = None, repair: bool = True) -> "ImportedDataset":
        """Read a file, a folder or a zip archive of this format.

        A zip is unpacked with ``safe_extract`` into ``extract_dir`` (kept, so
        ``ImportedImage.image_path`` stays valid) or, without it, into a temporary
        folder removed afterwards (``image_path`` is then None). ``repair``: fix polygons
        that touch or cross themselves (see ``repair_ring``; each fix is a warning).
        """
        labels = prepare_label_map(label_map)
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FormatError(f"{path} does not exist")
        if os.path.isfile(path) and zipfile.is_zipfile(path):
            limit = {} if max_archive_size is None else {"max_total_size": max_archive_size}
            if extract_dir is not None:
                safe_extract(path, extract_dir, **limit)
                return self.func(os.fspath(extract_dir), labels, repair=repair)
            with tempfile.TemporaryDirectory(prefix="nailset-import-") as tmp:
                safe_extract(path, tmp, **limit)
                result = self.func(tmp, labels, repair=repair)
            for image in result.images:
                image.image_path = None  # the folder is gone
            return result
        return self.func(path, labels, repair=repair)

    __call__ = parse


EXPORTERS: dict[str, Exporter] = {}
IMPORTERS: dict[str, Importer] = {}


def exporter(name: str, ext: str, description: str = "", *, title: str = ""):
    """Register ``func(records, target, meta) -> dict`` as the exporter ``name`` (``title``: its display name)."""
    def register(func):
        EXPORTERS[name] = Exporter(name, ext, func, description or (func.__doc__ or "").strip().split("\n")[0],
                                   title or name)
        return func
    return register


def importer(name: str, ext: str, description: str = "", *, patterns: tuple[str, ...] | None = None,
             embeds_images: bool = False):
    """Register ``func(path, label_map, *, repair) -> ImportedDataset`` (path: a file or folder) as the importer ``name``;
    ``patterns``: the globs of its annotation files in a folder (default ``*.<ext>``); ``embeds_images``: its files
    may hold the picture itself (``ImportedImage.image_data``)."""
    def register(func):
        IMPORTERS[name] = Importer(name, ext, func, description or (func.__doc__ or "").strip().split("\n")[0],
                                   tuple(patterns or (f"*.{ext}",)), embeds_images)
        return func
    return register


def _lookup(table: dict, name, kind: str):
    try:
        return table[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(table)) or "none"
        raise FormatError(f"unknown {kind} format {name!r}; known: {known}") from None


def get_exporter(name: str) -> Exporter:
    return _lookup(EXPORTERS, name, "export")


def get_importer(name: str) -> Importer:
    return _lookup(IMPORTERS, name, "import")
