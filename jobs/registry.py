"""The registry of job kinds, in the manner of CVAT's ``@exporter``: ``@job_kind("verify_media")``.

A job kind is a plain function ``func(ctx, **arguments) -> dict``: it reports through ``ctx.progress`` /
``ctx.log`` (which also raise ``JobCancelled`` once a cancel was asked for) and returns a JSON result.
``validate`` checks and normalises arguments before anything is queued, raising ``JobArgumentError``.
``reads`` / ``writes`` name the arguments that are paths on the server (a dotted name reaches into a nested
object, a list holds several paths): jobs started over the API get them confined to the server's import
and export folders (``JobKind.confine_paths``) before ``validate`` runs; management commands do not.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
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
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()

    def confine_paths(self, arguments: Any, *, read_root, write_root) -> Any:
        """A copy of ``arguments`` whose path arguments are resolved (``..``, symlinks) to absolute paths,
        relative ones taken from the root: ``reads`` below ``read_root``, ``writes`` below ``write_root``.
        A path that resolves outside its root raises ``JobArgumentError`` naming the argument and the root."""
        if not isinstance(arguments, dict):
            return arguments  # clean_arguments says what is wrong with it
        confined = copy.deepcopy(arguments)
        for names, root, folder in ((self.reads, read_root, "import"), (self.writes, write_root, "export")):
            root = os.path.realpath(root)
            for name in names:
                *parents, last = name.split(".")
                holder = confined
                for part in parents:
                    holder = holder.get(part) if isinstance(holder, dict) else None
                if not isinstance(holder, dict) or holder.get(last) in (None, ""):
                    continue
                value = holder[last]
                if isinstance(value, list):
                    holder[last] = [_inside(item, root, name, folder) for item in value]
                else:
                    holder[last] = _inside(value, root, name, folder)
        return confined

    def clean_arguments(self, arguments: Any) -> dict:
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise JobArgumentError("arguments must be a JSON object")
        return self.validate(dict(arguments)) if self.validate else dict(arguments)


def _inside(value: Any, root: str, name: str, folder: str) -> str:
    if not isinstance(value, str) or "\0" in value:
        raise JobArgumentError(f"{name} must be a path (text)")
    resolved = os.path.realpath(os.path.join(root, value))
    if os.path.commonpath([root, resolved]) != root:
        raise JobArgumentError(f"{name}: {value} is outside the server's {folder} folder {root}; "
                               f"give a path inside it (a relative path is taken from there)")
    return resolved


JOB_KINDS: dict[str, JobKind] = {}


def job_kind(name: str, *, queue: str = "default", title: str = "", validate: Callable[[dict], dict] | None = None,
             reads: tuple[str, ...] = (), writes: tuple[str, ...] = ()):
    """Register ``func`` as the job kind ``name``; ``reads`` / ``writes``: its path arguments (see above)."""
    def register(func):
        if name in JOB_KINDS and JOB_KINDS[name].func is not func:
            raise RuntimeError(f"job kind {name!r} is registered twice")
        JOB_KINDS[name] = JobKind(name=name, func=func, queue=queue, title=title or name, validate=validate,
                                  reads=tuple(reads), writes=tuple(writes))
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
