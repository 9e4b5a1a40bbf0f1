"""The torch device a run or a prediction uses. Plain PyTorch; never imports Django."""

from __future__ import annotations

import torch

__all__ = ["amp_dtype", "cpu_has_native_bf16", "memory_format", "resolve_device"]


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"`` (or None): CUDA when available, else CPU; anything else as ``torch.device`` reads it."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16, read from ``/proc/cpuinfo``):
    there oneDNN's bf16 convolutions beat float32; elsewhere they are emulated and slower."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def amp_dtype(device: torch.device, cuda: bool = True, cpu: bool = False) -> torch.dtype | None:
    """The autocast dtype of a run on ``device`` (None: float32). ``cuda``: mixed precision on a GPU (bfloat16
    where it has it, else float16); ``cpu``: bfloat16 on a CPU that computes it natively
    (:func:`cpu_has_native_bf16`), float32 on any other."""
    if device.type == "cuda":
        return (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
    return torch.bfloat16 if cpu and device.type == "cpu" and cpu_has_native_bf16() else None


def memory_format(channels_last: bool) -> torch.memory_format:
    """The layout a run keeps its model's weights and input batches in: ``torch.channels_last`` (NHWC) or the
    default (NCHW). oneDNN runs the CPU convolutions, the depthwise ones above all, faster in NHWC: the default
    preset trains in half the time on 2 cores (``docs/model.md``, "Memory layout"); the results are the same up
    to float rounding."""
    return torch.channels_last if channels_last else torch.contiguous_format
