"""The one check every config dataclass of ml/ makes when it is read back from a dict (JSON, a checkpoint, a
job's arguments): an unknown key is an error that names it, never silently dropped."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

T = TypeVar("T")


def from_known_keys(cls: type[T], data: Mapping[str, Any], what: str) -> T:
    """``cls(**data)``, refusing keys that are not fields of ``cls`` ("unknown <what> config keys: ...")."""
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {what} config keys: {', '.join(sorted(unknown))}")
    return cls(**dict(data))
