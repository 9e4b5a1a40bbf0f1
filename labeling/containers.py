"""Where a photo or video file ends by its own structure, so that data hidden after it is found.

A JPEG+ZIP polyglot, a Motion Photo (a JPEG with its video appended), a PNG or an MP4 with another file
glued to its end: each decodes as a picture or a video, yet carries bytes no decoder looks at. This module
walks each format's own structure to the offset where the file should end:

* JPEG: segment by segment from SOI, through the entropy-coded data of every scan, to EOI. Complete
  JPEG images after it are part of the file when the first one declares a Multi-Picture index (APP2
  ``MPF``: the gain map of an Ultra HDR / iPhone HDR photo, a depth map); anything else is not.
* PNG: chunk by chunk to IEND.  WebP: the RIFF size.
* HEIC/HEIF, MP4, MOV (ISO-BMFF): the top-level boxes must cover the file exactly.
* WebM (EBML): the Segment's size, when it is given (a live recording's "unknown size" cannot be checked).

After that end only ``PADDING_BYTES`` of 0x00/0xFF padding are allowed (constant bytes carry nothing).
Plain Python, no Django.
"""
from __future__ import annotations

import mmap
import re
from dataclasses import dataclass
from pathlib import Path

PADDING_BYTES = 4096  # some cameras pad their files to a 512 B or 4 KiB block with zeros

_TOP_LEVEL_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"meta", b"wide", b"uuid", b"pnot", b"moof", b"mfra",
                    b"styp", b"sidx", b"ssix", b"prft", b"pdin", b"udta", b"emsg"}
_JPEG_NEXT_MARKER = re.compile(rb"\xff(?=[^\x00\xd0-\xd7\xff])")  # in scan data: a marker that is not stuffing nor RSTn


class ContainerError(ValueError):
    """The file's own structure is broken: it ends early or a length points past its end."""


@dataclass(frozen=True)
class TrailingData:
    offset: int  # where the file's own structure ends
    length: int  # the bytes after it


def trailing_data(path: str | Path, content_type: str, *, padding: int = PADDING_BYTES) -> TrailingData | None:
    """The data after the end of the file's structure (beyond ``padding`` bytes of 0x00/0xFF), or None.

    Raises ContainerError when the structure itself is broken. Types it does not know are not checked.
    """
    with open(path, "rb") as fh:
        if fh.seek(0, 2) == 0:
            return None
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            end = structure_end(buf, content_type)
            if end is None or end >= len(buf):
                return None
            rest = buf[end:end + padding + 1]
            if len(buf) - end <= padding and not rest.strip(b"\x00\xff"):
                return None
            return TrailingData(end, len(buf) - end)


def structure_end(buf, content_type: str) -> int | None:
    """The offset where the file ends by its own structure; None when that cannot be told."""
    walker = {"image/jpeg": _jpeg_file_end, "image/png": _png_end, "image/webp": _riff_end, "image/heic": _isobmff_end,
              "image/heif": _isobmff_end, "video/mp4": _isobmff_end, "video/quicktime": _isobmff_end,
              "video/webm": _ebml_end}.get(content_type)
    return walker(buf) if walker else None


def _jpeg_file_end(buf) -> int:
    end, multi_picture = _jpeg_end(buf, 0)
    if multi_picture:  # the images the MPF index lists follow the first one, each a complete JPEG
        while buf[end:end + 3] == b"\xff\xd8\xff":
            try:
                end, _ = _jpeg_end(buf, end)
            except ContainerError:
                break  # not a complete JPEG: trailing data from here
    return end


def _jpeg_end(buf, pos: int) -> tuple[int, bool]:
    """(offset just after the EOI of the JPEG starting at ``pos``, whether it has an MPF segment)."""
    n = len(buf)
    if buf[pos:pos + 2] != b"\xff\xd8":
        raise ContainerError("the JPEG start marker is missing")
    pos += 2
    multi_picture = False
    while True:
        if pos >= n:
            raise ContainerError("the JPEG ends before its end marker")
        if buf[pos] != 0xFF:
            raise ContainerError(f"the JPEG has garbage where a marker should be (byte {pos})")
        while pos < n and buf[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= n:
            raise ContainerError("the JPEG ends before its end marker")
        marker = buf[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            return pos, multi_picture
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # RSTn, TEM: no length
            continue
        if marker == 0x00 or pos + 2 > n:
            raise ContainerError(f"the JPEG has a broken marker (byte {pos})")
        length = int.from_bytes(buf[pos:pos + 2], "big")
        if length < 2 or pos + length > n:
            raise ContainerError("a JPEG segment runs past the end of the file")
        if marker == 0xE2 and buf[pos + 2:pos + 6] == b"MPF\x00":
            multi_picture = True
        pos += length
        if marker == 0xDA:  # SOS: entropy-coded data up to the next real marker
            found = _JPEG_NEXT_MARKER.search(buf, pos)
            if found is None:
                raise ContainerError("the JPEG ends inside its picture data")
            pos = found.start()


def _png_end(buf) -> int:
    n, pos = len(buf), 8
    if buf[:8] != b"\x89PNG\r\n\x1a\n":
        raise ContainerError("the PNG signature is missing")
    while True:
        if pos + 12 > n:
            raise ContainerError("the PNG ends before its IEND chunk")
        length, kind = int.from_bytes(buf[pos:pos + 4], "big"), buf[pos + 4:pos + 8]
        pos += 12 + length
        if pos > n:
            raise ContainerError("a PNG chunk runs past the end of the file")
        if kind == b"IEND":
            return pos


def _riff_end(buf) -> int:
    size = int.from_bytes(buf[4:8], "little")
    end = 8 + size
    if end > len(buf):
        raise ContainerError("the file is shorter than its RIFF header says")
    return end + 1 if size & 1 and end < len(buf) else end  # odd sizes are padded to even


def _isobmff_end(buf) -> int:
    """The end of the last top-level box (``size`` 0: to the end of the file); stops at the first thing
    that is not a box (trailing data from there)."""
    n, pos = len(buf), 0
    while n - pos >= 8:
        size, kind = int.from_bytes(buf[pos:pos + 4], "big"), buf[pos + 4:pos + 8]
        if not all(0x20 <= byte <= 0x7E for byte in kind):
            if pos == 0:
                raise ContainerError("the file does not start with a box")
            return pos
        header = 8
        if size == 1:
            if n - pos < 16:
                raise ContainerError("a box header runs past the end of the file")
            size, header = int.from_bytes(buf[pos + 8:pos + 16], "big"), 16
        elif size == 0:
            return n
        if size < header:
            return pos
        if pos + size > n:
            if pos and kind not in _TOP_LEVEL_BOXES:
                return pos  # not a box cut short but something else glued on
            raise ContainerError(f"the '{bytes(kind).decode('ascii')}' box runs past the end of the file (truncated?)")
        pos += size
    return pos


def _ebml_vint(buf, pos: int, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, position after it, whether all value bits are 1: EBML's "unknown size")."""
    if pos >= len(buf):
        raise ContainerError("the WebM file ends inside an element header")
    first = buf[pos]
    length = 9 - first.bit_length() if first else 9
    if length > 8 or pos + length > len(buf):
        raise ContainerError("the WebM file has a broken element header")
    value = int.from_bytes(buf[pos:pos + length], "big")
    data_bits = 7 * length
    unknown = (value & ((1 << data_bits) - 1)) == (1 << data_bits) - 1
    return (value if keep_marker else value & ((1 << data_bits) - 1)), pos + length, unknown


def _ebml_end(buf) -> int | None:
    element, pos, _ = _ebml_vint(buf, 0, True)
    if element != 0x1A45DFA3:
        raise ContainerError("the WebM file does not start with an EBML header")
    size, pos, _ = _ebml_vint(buf, pos, False)
    pos += size
    element, pos, _ = _ebml_vint(buf, pos, True)
    if element != 0x18538067:
        raise ContainerError("the WebM file has no Segment after its header")
    size, pos, unknown = _ebml_vint(buf, pos, False)
    if unknown:
        return None  # a live recording that never wrote its size: cannot be checked simply
    if pos + size > len(buf):
        raise ContainerError("the WebM Segment runs past the end of the file (truncated?)")
    return pos + size
