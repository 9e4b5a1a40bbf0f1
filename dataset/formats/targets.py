"""Where exports are written: ExportTarget and its folder and zip kinds (``open_target`` picks one),
plus JsonArraySpool for JSON arrays too big to hold in memory.

Plain Python; this package must never import Django.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import stat
import tempfile
import time
import zipfile
from contextlib import contextmanager
from typing import IO, Iterator

from .errors import FormatError

CHUNK = 1 << 20   # bytes per read / write when streaming files
STORED_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif", ".gif", ".zip", ".gz", ".mp4", ".mov"}


def check_member_name(name: str) -> str:
    """A relative POSIX path without empty, '.' or '..' parts (names inside an export)."""
    parts = name.split("/") if isinstance(name, str) else []
    if (not parts or name.startswith("/") or "\\" in name or "\x00" in name
            or any(p in ("", ".", "..") for p in parts)):
        raise FormatError(f"bad name inside an export: {name!r}")
    return name


class ExportTarget:
    """Where an exporter writes: named entries, one open at a time."""

    def __init__(self):
        self.names: set[str] = set()

    def _claim(self, name: str) -> str:
        check_member_name(name)
        if name in self.names:
            raise FormatError(f"{name} is written twice")
        self.names.add(name)
        return name

    @contextmanager
    def open(self, name: str, size_hint: int | None = None) -> Iterator[IO[bytes]]:
        """A binary stream for the entry ``name``; close it (leave the with block) before the next."""
        raise NotImplementedError

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.open(name, len(data)) as out:
            out.write(data)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode("utf-8"))

    def copy_file(self, name: str, source_path) -> None:
        """Streamed copy of a file (never read whole into memory)."""
        try:
            size = os.path.getsize(source_path)
            src = open(source_path, "rb")
        except OSError as exc:
            raise FormatError(f"cannot read {source_path}: {exc.strerror or exc}") from None
        with src, self.open(name, size) as out:
            shutil.copyfileobj(src, out, CHUNK)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class FolderTarget(ExportTarget):
    """Writes entries as files under ``root`` (created if missing)."""

    def __init__(self, root):
        super().__init__()
        self.root = os.path.abspath(os.fspath(root))
        os.makedirs(self.root, exist_ok=True)

    def path(self, name: str) -> str:
        return os.path.join(self.root, *check_member_name(name).split("/"))

    @contextmanager
    def open(self, name, size_hint=None):
        path = self.path(self._claim(name))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as out:
            yield out


class ZipTarget(ExportTarget):
    """Writes a zip archive to a path or a writable binary file object (seekable or not, e.g. a stream).

    Entries are streamed through ``ZipFile.open(info, "w")``, so memory stays flat.
    Already compressed files (images, PNG, zip) are STORED; everything else (JSON,
    text, YAML, .npy) is DEFLATED (the direction-field .npy files are mostly zeros).
    A file object passed in is left open; a path is removed again when the export fails.
    """

    def __init__(self, path_or_fileobj, *, date_time: tuple | None = None):
        super().__init__()
        self._own_path = None if hasattr(path_or_fileobj, "write") else os.fspath(path_or_fileobj)
        self._date_time = date_time or time.localtime(time.time())[:6]
        self._zip = zipfile.ZipFile(path_or_fileobj, "w", allowZip64=True)
        self._closed = False

    def _claim(self, name: str) -> str:  # the zip's own name table, not a second set of names
        check_member_name(name)
        if name in self._zip.NameToInfo:
            raise FormatError(f"{name} is written twice")
        return name

    @contextmanager
    def open(self, name, size_hint=None):
        info = zipfile.ZipInfo(self._claim(name), date_time=self._date_time)
        suffix = os.path.splitext(name)[1].lower()
        info.compress_type = zipfile.ZIP_STORED if suffix in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        big = size_hint is None or size_hint > (1 << 30)
        with self._zip.open(info, "w", force_zip64=big and size_hint is not None) as out:
            yield out

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._zip.close()

    def __exit__(self, exc_type, exc, tb):
        self.close()
        if exc_type is not None and self._own_path and os.path.exists(self._own_path):
            os.remove(self._own_path)
        return False


def open_target(path) -> ExportTarget:
    """``ZipTarget`` for a path ending in .zip, else ``FolderTarget``."""
    path = os.fspath(path)
    return ZipTarget(path) if path.lower().endswith(".zip") else FolderTarget(path)


class JsonArraySpool:
    """A JSON array written item by item to a temporary file, copied out at the end (flat memory)."""

    def __init__(self):
        self._file = tempfile.TemporaryFile()
        self.count = 0

    def append(self, item) -> None:
        data = json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        self._file.write(b"," + data if self.count else data)
        self.count += 1

    def size(self) -> int:
        return self._file.tell() + 2

    def write_to(self, out) -> None:
        out.write(b"[")
        self._file.flush()
        self._file.seek(0)
        shutil.copyfileobj(self._file, out, CHUNK)
        self._file.seek(0, io.SEEK_END)
        out.write(b"]")

    def close(self) -> None:
        self._file.close()
