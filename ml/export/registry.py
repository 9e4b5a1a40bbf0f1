"""The export formats by name, like CVAT's ``@exporter(name, ext)``: each format module registers the function
that makes its artifact with :func:`export_format`; :func:`ml.export.pipeline.export_model` looks it up.

:data:`EXPORT_FORMATS` names the formats there are, in the order apps list them. It is declared here, not
collected from the registrations, so that it reads without importing PyTorch (an app's choices, an argument
check); a registration of any other name is refused, and the tests check that every name is registered.
This module imports no format module (they import it), so there is no import circle.

A format's function takes an :class:`ExportRequest` (the model, the empty output folder, the parity photos,
the options, the callbacks) and returns an :class:`ExportResult` (the metadata block, the parity report and
the artifact's files); the pipeline does the rest (folder checks, timing, ``nailset-export.json``, the
parity verdict).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .spec import ExportError, Log, Progress, noop

__all__ = ["EXPORT_FORMATS", "ExportFormat", "ExportRequest", "ExportResult", "export_format", "get_export_format"]

#: Every export format, name -> title, in the order apps list them (choices, commands, pages).
EXPORT_FORMATS: dict[str, str] = {"onnx": "ONNX", "coreml": "Core ML", "tfjs": "TensorFlow.js"}


@dataclass
class ExportRequest:
    """One export, as the pipeline hands it to a format: ``model`` (a CPU eval-mode copy), the empty folder
    ``out``, the parity ``photos``, the checkpoint ``meta`` and version names (for the metadata block), the
    format options (``precision``, ``size``: Core ML; ``quantize``, ``browser``, ``backends``,
    ``browser_repeats``: TF.js; ``parity_long_side``: ONNX and TF.js) and the callbacks."""

    model: Any
    fmt: str
    out: Path
    photos: Sequence[Any]
    meta: dict | None = None
    model_version: str | None = None
    snapshot_content_hash: str | None = None
    precision: str | None = None
    size: str | Sequence[int] | None = None
    quantize: str | None = None
    parity_long_side: int | None = None
    browser: bool | None = None
    backends: Sequence[str] = ("cpu", "webgl")
    browser_repeats: int = 1
    progress: Progress = noop
    log: Log = noop

    def metadata(self, info: dict) -> dict[str, Any]:
        """The metadata block of this export (:func:`ml.export.metadata.build_metadata`) with the format's
        ``info`` (input size, precision, opset, tools...)."""
        from .metadata import build_metadata  # local: this module reads without PyTorch

        return build_metadata(self.model, self.fmt, meta=self.meta, model_version=self.model_version,
                              snapshot_content_hash=self.snapshot_content_hash, info=info)


class ExportResult(NamedTuple):
    """What a format made: the metadata block, the parity report and the artifact's files (names in ``out``)."""

    metadata: dict[str, Any]
    report: dict[str, Any]
    files: list[str]


@dataclass(frozen=True)
class ExportFormat:
    """A registered format: its ``name`` (one of :data:`EXPORT_FORMATS`) and the function that makes its
    artifact."""

    name: str
    run: Callable[[ExportRequest], ExportResult]

    @property
    def title(self) -> str:
        return EXPORT_FORMATS[self.name]


_REGISTRY: dict[str, ExportFormat] = {}


def export_format(name: str) -> Callable[[Callable[[ExportRequest], ExportResult]],
                                                         Callable[[ExportRequest], ExportResult]]:
    """Register the decorated function as the maker of format ``name``'s artifacts."""
    if name not in EXPORT_FORMATS:
        raise ValueError(f"export format {name!r} is not one of EXPORT_FORMATS ({', '.join(EXPORT_FORMATS)})")

    def register(func: Callable[[ExportRequest], ExportResult]) -> Callable[[ExportRequest], ExportResult]:
        if name in _REGISTRY and _REGISTRY[name].run is not func:
            raise ValueError(f"export format {name!r} is registered twice")
        _REGISTRY[name] = ExportFormat(name, func)
        return func

    return register


def get_export_format(name: str) -> ExportFormat:
    """The registered format ``name``; :class:`ExportError` for an unknown one."""
    if name not in EXPORT_FORMATS:
        raise ExportError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {name!r}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ExportError(f"export format {name!r} is not registered: import ml.export.pipeline") from None
