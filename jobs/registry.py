"""The registry of job kinds, in the manner of CVAT's ``@exporter``: ``@job_kind("verify_media")``.

A job kind is a plain function ``func(ctx, **arguments) -> dict``: it reports through ``ctx.progress`` /
``ctx.log`` (which also raise ``JobCancelled`` once a cancel was asked for) and returns a JSON result.
``validate`` checks and normalises arguments before anything is queued, raising ``JobArgumentError``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Callable


class JobArgumentError(ValueError):
    """The arguments of a job are not acceptable; the message says which and why."""


@dataclass(frozen=True)
class JobKind:
    name: str
    func: Callable[..., Any]
    queue: str = "default"
    title: str = ""
    validate: Callable[[dict], dict] | None = None

    def clean_arguments(self, arguments: Any) -> dict:
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise JobArgumentError("arguments must be a JSON object")
        return self.validate(dict(arguments)) if self.validate else dict(arguments)


JOB_KINDS: dict[str, JobKind] = {}


def job_kind(name: str, *, queue: str = "default", title: str = "", validate: Callable[[dict], dict] | None = None):
    def register(func):
        if name in JOB_KINDS and JOB_KINDS[name].func is not func:
            raise RuntimeError(f"job kind {name!r} is registered twice")
        JOB_KINDS[name] = JobKind(name=name, func=func, queue=queue, title=title or name, validate=validate)
        return func

    return register


def get_job_kind(name: str) -> JobKind:
    try:
        return JOB_KINDS[name]
    except KeyError:
        known = ", ".join(sorted(JOB_KINDS)) or "none"
        raise JobArgumentError(f"unknown job kind {name!r} (known: {known})") from None


def job_key(kind: str, arguments: dict) -> str:
    """Deterministic id of a piece of work: the same kind with the same arguments gives the same key."""
    canonical = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return f"{kind}:{hashlib.sha256(canonical.encode()).hexdigest()[:32]}"
