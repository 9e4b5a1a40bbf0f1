"""What the bench scripts share: docs/benchmarks.md, where each script owns one marked section
(<!-- NAME:start --> ... <!-- NAME:end -->) and replaces only that section, so the scripts can run in any
order; and small helpers (logging, machine facts, formatting, a scratch embedded instance's environment)."""
import math
import os
import platform
import re
import socket
import subprocess
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


def publish_report(report: dict, started: float, script: str, argv: list[str], render, section: str,
                   json_path: str | None, no_docs: bool) -> str:
    """The end of a bench run: stamp ``report`` with the load, the wall time and the command that reproduces
    it, write it as JSON to ``json_path`` (when given), print ``render(report)`` and put it into the
    document as section ``section`` unless ``no_docs``. Returns the rendered text."""
    import json
    import shlex
    report["load_end"] = loadavg()
    report["total_s"] = time.perf_counter() - started
    report["command"] = " ".join([".venv/bin/python", script, *map(shlex.quote, argv)])
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1, default=str))
    text = render(report)
    print(text)
    if not no_docs:
        write_section(section, text)
        log(f"wrote the {section} section of {DOC.relative_to(ROOT)}")
    return text


def measured_line(report: dict) -> str:
    """A generated section's first sentence: when, how long, the command, the commit and the machine (``report``:
    ``when``, ``wall_s`` (or :func:`publish_report`'s ``total_s``), ``command``, ``machine`` as
    :func:`machine_info` and :func:`git_commit` give them)."""
    m = report["machine"]
    seconds = report["wall_s"] if "wall_s" in report else report["total_s"]
    return (f"Measured {report['when']} in {seconds:.0f} s with `{report['command']}` (commit {m['commit']}); "
            f"{m.get('nproc', '?')} CPUs ({m['cpu']}), load average {' / '.join(f'{v:.1f}' for v in m['load'])} at the "
            "start (shared machine).")


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
                        help="wait up to this many seconds for other processes to keep fewer than half the CPUs busy")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows, else "unknown"."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    """What every bench records of the machine it ran on: the CPUs this process may use (``nproc``), the CPU
    model, RAM in GiB (None when unknown), the kernel, Python, and the load average now (1 / 5 / 15 min).
    Benches add their own library versions and commit (``git_commit``) beside it."""
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        nproc = os.cpu_count()
    return {"nproc": nproc, "cpu": cpu_model(), "mem_gib": mem, "kernel": platform.release(),
            "python": platform.python_version(), "load": loadavg()}


def git_commit(paths: tuple[str, ...] = (), changed: str = "", *, untracked: bool = True) -> str:
    """HEAD's short commit, followed by " with uncommitted changes" (" to CHANGED" when given) when ``git status``
    shows changes to ``paths`` (the whole work tree when empty; untracked files count unless ``untracked`` is
    False); "" when git cannot tell."""
    status = ["git", "status", "--porcelain", *([] if untracked else ["--untracked-files=no"]), "--", *paths]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(status, cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    if head and dirty:
        head += " with uncommitted changes" + (f" to {changed}" if changed else "")
    return head


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


# Process and machine measurements (Linux /proc)


def proc_status() -> dict:
    """VmRSS / VmHWM of this process in MiB."""
    text = Path("/proc/self/status").read_text()
    out = {}
    for key in ("VmRSS", "VmHWM"):
        match = re.search(rf"^{key}:\s+(\d+) kB", text, re.M)
        out[key] = int(match.group(1)) / 1024 if match else float("nan")
    return out


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0), so the next peak is the step's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def stat_ticks() -> dict | None:
    """CPU time of the whole machine so far (first line of /proc/stat), in ticks: total, idle (+ iowait), steal."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return {"total": sum(values[:8]), "idle": values[3] + values[4], "steal": values[7] if len(values) > 7 else 0}
    except (OSError, ValueError, IndexError):
        return None


def machine_ticks() -> tuple[int, int] | None:
    """(total, idle) jiffies of the whole machine so far."""
    ticks = stat_ticks()
    return (ticks["total"], ticks["idle"]) if ticks else None


def cpu_snapshot() -> dict:
    """CPU time so far of the whole machine (``stat_ticks``; None when unreadable) and of every process
    (``{pid: (comm, ppid, utime + stime)}`` from /proc/PID/stat), in ticks."""
    snapshot = {"machine": stat_ticks(), "procs": {}}
    try:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(entry.path, "stat").read_text()
            except OSError:
                continue
            comm = raw[raw.index("(") + 1:raw.rindex(")")]
            fields = raw[raw.rindex(")") + 2:].split()
            snapshot["procs"][int(entry.name)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
    except (OSError, ValueError, IndexError):
        snapshot["machine"] = None
    return snapshot


def busy_cores(before, after, wall: float) -> float | None:
    if not before or not after or wall <= 0:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total, idle = after[0] - before[0], after[1] - before[1]
    return (total - idle) / tick / wall


def wait_for_quiet(max_wait: float, threshold: float, window: float = 2.0) -> dict:
    """Wait (at most ``max_wait`` s) until the machine's CPUs are less busy than ``threshold`` cores.
    Returns what the last window saw and how long it waited."""
    started = time.monotonic()
    while True:
        before = machine_ticks()
        time.sleep(window)
        busy = busy_cores(before, machine_ticks(), window)
        waited = time.monotonic() - started
        if busy is None or busy < threshold or waited >= max_wait:
            return {"busy_cores": busy, "waited_s": waited, "loadavg": loadavg()}
        log(f"other processes keep {busy:.2f} cores busy; waiting up to {max_wait - waited:.0f} s more")


def run_measured(argv: list[str], env: dict, label: str) -> dict:
    """Run a child to completion; its wall time, CPU time, ru_maxrss and the machine's other load meanwhile."""
    load_before = loadavg()
    ticks = machine_ticks()
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    busy = busy_cores(ticks, machine_ticks(), wall)
    cpu = usage.ru_utime + usage.ru_stime
    if process.returncode != 0:
        raise RuntimeError(f"{label}: child exited with {process.returncode}")
    other = None if busy is None else max(0.0, busy - cpu / wall)
    return {"wall_s": wall, "cpu_s": cpu, "maxrss_mib": usage.ru_maxrss / 1024, "busy_cores": busy, "other_cores": other,
            "loadavg_before": load_before, "loadavg_after": loadavg()}
