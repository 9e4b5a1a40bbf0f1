"""What the bench scripts share: docs/benchmarks.md, where each script owns one marked section
(<!-- NAME:start --> ... <!-- NAME:end -->) and replaces only that section, so the scripts can run in any
order; and small helpers (logging, machine facts, formatting, a scratch embedded instance's environment)."""
import math
import os
import platform
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

DOC = ROOT / "docs" / "benchmarks.md"
DOC_HEADER = ("# Benchmarks\n\nWritten by the scripts in `bench/` (see the README); each section is replaced by the "
              "run of its script and says the command, the machine and the data it was measured with.\n")


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->", f"<!-- {name}:end -->"


def write_section(name: str, section: str) -> None:
    """Put ``section`` (which starts and ends with the markers of ``name``) into the document."""
    start, end = markers(name)
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else DOC_HEADER
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + section.rstrip("\n") + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOC.write_text(text)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def loadavg() -> list[float]:
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return [float("nan")] * 3


def add_timing_arguments(parser, runs: int) -> None:
    """The options every timing bench takes: --runs, --warmup, --no-docs, --wait-idle (``wait_for_quiet``)."""
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true", help="print only; do not touch docs/benchmarks.md")
    parser.add_argument("--wait-idle", type=float, default=120.0,
                        help="wait up to this many seconds for the 1-minute load average to drop under half the CPUs")


def wait_for_quiet(max_seconds: float, busy_fraction: float = 0.5) -> float:
    """Wait (at most ``max_seconds``) until the 1-minute load average is under ``busy_fraction`` of the
    CPUs, so a measurement does not start on a busy machine; returns the seconds waited."""
    started = time.monotonic()
    while (os.getloadavg()[0] > busy_fraction * (os.cpu_count() or 1)
           and time.monotonic() - started < max_seconds):
        time.sleep(5)
    return time.monotonic() - started


def machine_info() -> dict:
    model, mem = "unknown", None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": model, "mem_gib": mem, "kernel": platform.release(),
            "python": platform.python_version()}


def fmt(value, digits=1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    import django

    django.setup()


def child_env(var_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CELERY_", "DJANGO_", "NAILSET_")) and k not in ("MEDIA_ROOT", "STATIC_ROOT", "DATABASE_URL")}
    env.update(NAILSET_VAR_DIR=str(var_dir), DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}",
               DJANGO_SETTINGS_MODULE="annotation_site.settings", PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""))
    return env
