"""Small synthetic media for intake tests: videos written with OpenCV, a PNG decompression bomb."""
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np


def video_bytes(seconds: float = 2, fps: int = 10, size=(160, 120), static_from: float | None = None,
                blurred_until: float = 0.0) -> bytes:
    """An MP4 of a textured disc moving over a textured background: sharp, changing frames. From
    ``static_from`` seconds on the picture is a different, still scene; before ``blurred_until`` it is
    heavily blurred."""
    width, height = size
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "video.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        for index in range(int(seconds * fps)):
            t = index / fps
            moving_t = min(t, static_from) if static_from is not None else t
            frame = background.copy()
            offset = int(moving_t * 37) % width
            frame = np.roll(frame, offset, axis=1)
            if static_from is not None and t >= static_from:
                frame = np.ascontiguousarray(frame[::-1, ::-1])  # another scene, the same from here on
            cv2.circle(frame, (int(20 + moving_t * 30) % width, height // 2), 25, (30, 60, 230), -1)
            cv2.putText(frame, f"{moving_t:.1f}", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            if t < blurred_until:
                frame = cv2.GaussianBlur(frame, (31, 31), 15)
            writer.write(frame)
        writer.release()
        return path.read_bytes()


def png_bomb(side: int = 20000) -> bytes:
    """A tiny PNG that claims side x side pixels (1-bit grey, all zero): megabytes that decode to gigapixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
