"""Safe unzip of imported archives: ``safe_extract`` and its limits (members, total size, compression ratio).

Plain Python; this package must never import Django.
"""
from __future__ import annotations

import os
import re
import stat
import zipfile
import zlib

from .errors import FormatError, UnsafeArchiveError
from .targets import CHUNK

MAX_ARCHIVE_BYTES = 8 * 1024 ** 3      # total uncompressed size
MAX_ARCHIVE_MEMBERS = 200_000
MAX_COMPRESSION_RATIO = 1000           # for members over 1 MiB

def safe_extract(zip_path, target_dir, *, max_total_size: int = MAX_ARCHIVE_BYTES,
                 max_members: int = MAX_ARCHIVE_MEMBERS, max_ratio: float = MAX_COMPRESSION_RATIO) -> list[str]:
    """Unpack a zip archive into ``target_dir``, refusing anything unsafe; returns the files written.

    Every member is checked before anything is written: absolute names (``/x``,
    ``C:x``, ``\\\\x``), ``..`` components, backslash paths, symbolic links and
    other non-regular files, encrypted members, duplicate names, and names that
    resolve outside ``target_dir`` (e.g. through an existing link) raise
    ``UnsafeArchiveError``; so do more than ``max_members`` members, a declared
    total size over ``max_total_size`` and a member compressed more than
    ``max_ratio`` times (zip bombs). While unpacking, the bytes actually written
    are counted against ``max_total_size`` too (declared sizes can lie). On any
    error the files written so far are removed.
    """
    target = os.path.realpath(os.fspath(target_dir))
    os.makedirs(target, exist_ok=True)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise FormatError(f"not a readable zip archive: {exc}") from None
    written: list[str] = []
    with archive:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise UnsafeArchiveError(f"archive has {len(infos)} members (max {max_members})")
        plan, seen, total = [], set(), 0
        for info in infos:
            name = info.filename
            if "\x00" in name or "\\" in name:
                raise UnsafeArchiveError(f"archive member {name!r} has a backslash or NUL in its name")
            if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
                raise UnsafeArchiveError(f"archive member {name!r} has an absolute path")
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if ".." in parts:
                raise UnsafeArchiveError(f"archive member {name!r} points outside the archive folder ('..')")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UnsafeArchiveError(f"archive member {name!r} is a symbolic link")
            is_dir = info.is_dir()
            if mode and stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeArchiveError(f"archive member {name!r} is not a regular file")
            if info.flag_bits & 0x1:
                raise UnsafeArchiveError(f"archive member {name!r} is encrypted")
            if not parts:
                continue
            dest = os.path.realpath(os.path.join(target, *parts))
            if os.path.commonpath([target, dest]) != target or dest == target:
                raise UnsafeArchiveError(f"archive member {name!r} resolves outside the target folder")
            key = "/".join(parts)
            if key in seen:
                raise UnsafeArchiveError(f"archive member {name!r} appears twice")
            seen.add(key)
            total += info.file_size
            if total > max_total_size:
                raise UnsafeArchiveError(f"archive unpacks to more than {max_total_size} bytes")
            if info.file_size > CHUNK and info.file_size > max_ratio * max(info.compress_size, 1):
                raise UnsafeArchiveError(f"archive member {name!r} is compressed {info.file_size // max(info.compress_size, 1)}x "
                                         f"(max {max_ratio:g}x): refusing a likely zip bomb")
            plan.append((info, dest, is_dir))
        done = 0
        try:
            for info, dest, is_dir in plan:
                if is_dir:
                    os.makedirs(dest, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if os.path.islink(dest) or os.path.isdir(dest):
                    raise UnsafeArchiveError(f"archive member {info.filename!r} would replace a link or folder")
                with archive.open(info) as src, open(dest, "wb") as out:
                    written.append(dest)
                    while chunk := src.read(CHUNK):
                        done += len(chunk)
                        if done > max_total_size:
                            raise UnsafeArchiveError(f"archive unpacks to more than {max_total_size} bytes")
                        out.write(chunk)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError, ValueError) as exc:
            for path in written:
                _remove(path)
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"cannot unpack the archive: {exc}") from None
    return written


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass
