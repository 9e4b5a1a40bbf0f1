"""Every GPU figure the open issues need (#16, #17, #18), in stages that one `run` call on a lent GPU makes.

    bash bench/gpu_session.sh prepare                # here, first: .gpu-carry/ (photos, weights, wheels, commit)
    bash bench/gpu_session.sh cv train               # there: ONE run call (docs/gpu-session.md)
    bash bench/gpu_session.sh labels click           # here afterwards (CPU benches), or there if time is left
    bash bench/gpu_session.sh --smoke cv train labels click   # here, on the CPU: a tiny budget, every stage

``bench/gpu_session.sh`` sets up Python (the machine's own ``python3`` with torch, plus the carried wheels)
and calls this script with the output folder (``$OUT`` there), the shared photos and the weights. Stages run
in the order given, each writing its JSON under ``--out`` and its output to ``--out``/gpu-session.log:

* ``cv`` (#17): starts ``bench/cv.py`` over the five participant folds, one process per fold at once on the one
  GPU (``CV``'s budget and rows), and goes on with the next stage while they train; after the last stage it
  waits for them, measures the rows' ONNX Runtime latency alone and merges everything into ``cv-gpu.json``.
* ``train`` (#16): ``bench/annotation_effort.py``'s ``train_model`` on the tuning participants' photos (every
  participant not in ``bench/complete_labels.py``'s ``HELD_OUT``), with their fingers and base/tip, at
  ``TRAIN``'s budget; writes ``model.pt`` (the best epoch's checkpoint), ``training.json`` and ``history.json``.
* ``labels`` (#16): ``bench/complete_labels.py --held-out --model model.pt --json complete_labels.json``.
* ``click`` (#18): ``bench/click_nail.py --model model.pt --json click_nail.json`` (no browser). Its latencies
  are only worth quoting from a machine with nothing else running (not beside ``cv``).

A stage that fails is logged and the next one runs. ``--deadline`` (seconds from the start) bounds the whole
command: training stops at its share (the best epoch so far is kept), cv's fold processes are stopped and what
they finished is merged, and a stage is skipped when too little time is left. Back here, the results go into
the docs with each bench's ``--from-json`` (docs/gpu-session.md).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.benchdoc import git_commit, log  # noqa: E402

STAGES = ("train", "labels", "click", "cv")
# The training of #16's model on a lent GPU (bench/annotation_effort.py's train_model) and its smoke size.
TRAIN = {"preset": "gpu-336", "epochs": 60, "steps_per_epoch": 12, "batch_size": 16, "threads": 4,
         "device": "cuda", "workers": 6}
TRAIN_SMOKE = {"preset": "gpu-336", "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "threads": 2,
               "device": "cpu", "workers": 1}
# #17's cross-validation (bench/cv.py's options): every fold in its own process, at once.
# The rows #17 asks about first: a fold stopped at the deadline lacks its last rows.
# cascade-shared-f128(-refined): one encoder on the full-resolution photo, the CPU CV's best cascades (docs/benchmarks.md,
# cv-cpu-8x: refined 88.3 against the U-Net's 88.2 at 28.8 ms, 3.35x its speed; the training presets' default).
# cascade-f128: the paper's cascade at the one fusion width that meets #17's speed bars with room (cv-cpu-4x).
ROWS = "cascade,cascade-f256,unet,cascade-shared-f128-refined,cascade-shared-f128,cascade-f128,baseline,lmp"
CV = {"folds": 5, "only_folds": "0,1,2,3,4", "rows": ROWS,
      "epochs": 25, "steps": 12, "batch": 16, "device": "cuda", "workers": 2, "extra": []}
CV_SMOKE = {"folds": 5, "only_folds": "0,1", "rows": ROWS,
            "epochs": 1, "steps": 1, "batch": 2, "device": "cpu", "workers": 1,
            "extra": ["--size", "128", "--val-size", "128", "--max-side", "256", "--latency-runs", "2"]}
# Seconds a stage needs at least (else it is skipped) and, for train and cv, the most it may take.
MIN_SECONDS = {"train": 60, "labels": 60, "click": 60, "cv": 120}
TRAIN_MAX_SECONDS = 240
LATENCY_SECONDS = 60  # kept free after cv's training for the latency and the merge
DEADLINE = 540.0  # one run call's stages together (its timeout_s leaves room for the set-up and a margin)
DEADLINE_SMOKE = 2400.0  # the smoke budget on a shared 2-core machine


def prepared_commit() -> str:
    """The commit ``bench/gpu_session.sh prepare`` noted in .gpu-carry/commit.txt (the GPU machine may have no
    git), "" when it is not there."""
    path = ROOT / ".gpu-carry" / "commit.txt"
    return path.read_text().splitlines()[0].strip() if path.is_file() else ""


class Session:
    def __init__(self, args) -> None:
        self.args = args
        self.out: Path = args.out
        self.work: Path = args.work
        self.started = time.monotonic()
        self.stages: list[dict] = []
        self.done: set[str] = set()
        self.cv_alongside: list[str] = []  # the stages that ran while cv's folds trained

    def left(self) -> float:
        return self.args.deadline - (time.monotonic() - self.started)

    def checkpoint(self) -> Path:
        model = self.args.model or self.out / "model.pt"
        if not Path(model).is_file():
            raise FileNotFoundError(f"no checkpoint {model}: run the train stage first or give --model")
        return Path(model)

    def command(self, argv: list[str], env: dict | None = None, timeout: float | None = None) -> int:
        """Run ``python argv`` in the repository root, its output into ours (the session log); its exit status."""
        full = [sys.executable, *argv]
        log("$ " + shlex.join(full))
        return subprocess.run(full, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=timeout).returncode

    # -- stages ---------------------------------------------------------------------------------------

    def train(self) -> None:
        from bench.annotation_effort import train_model

        budget = TRAIN_SMOKE if self.args.smoke else TRAIN
        share = min(TRAIN_MAX_SECONDS, self.left() - 30)
        stop_at = time.monotonic() + share
        log(f"train: budget {budget}, stops after {share:.0f} s at most")
        info = train_model(self.work / "model", dict(budget), data_dir=self.args.data,
                           should_stop=lambda: time.monotonic() > stop_at)
        if not Path(info["checkpoint"]).is_file():
            raise RuntimeError(f"training stopped ({info['status']}) before its first epoch ended: no checkpoint")
        run = Path(info["checkpoint"]).parent
        shutil.copyfile(info["checkpoint"], self.out / "model.pt")
        shutil.copyfile(run / "history.json", self.out / "history.json")
        (self.out / "training.json").write_text(json.dumps({**info, "trained_as": info["checkpoint"],
                                                            "checkpoint": "model.pt"}, indent=1))
        last = json.loads((run / "history.json").read_text())[-1]
        log(f"train: {info['status']}, {info['epochs_completed']} epochs in {info['wall_s']} s on {info['device']}; "
            f"last epoch train mIoU {last.get('train_miou')}; model.pt {(self.out / 'model.pt').stat().st_size / 2**20:.1f} MiB")

    def labels(self) -> None:
        argv = ["bench/complete_labels.py", "--held-out", "--data", str(self.args.data), "--model",
                str(self.checkpoint()), "--no-docs", "--json", str(self.out / "complete_labels.json")]
        if self.command(argv):
            raise RuntimeError("bench/complete_labels.py failed")

    def click(self) -> None:
        argv = ["bench/click_nail.py", "--data", str(self.args.data), "--model", str(self.checkpoint()), "--no-docs",
                "--json", str(self.out / "click_nail.json")]
        if self.args.smoke:  # two photos, no 12 MP copies
            names = sorted(p.name for p in (self.args.data / "images").iterdir())[:2]
            argv += ["--no-12mp", "--only", *names]
        if self.command(argv):
            raise RuntimeError("bench/click_nail.py failed")

    def cv(self) -> None:
        """Starts the fold processes and returns; :meth:`cv_finish` (after the other stages) collects them."""
        from bench.ablation import build_export

        plan = CV_SMOKE if self.args.smoke else CV
        self.cv_started = time.monotonic()
        export, work = self.work / "cv-export", self.work / "cv"
        build_export(self.args.data, export)
        self.cv_common = ["bench/cv.py", "--export", str(export), "--work", str(work), "--folds", str(plan["folds"]),
                          "--rows", plan["rows"], "--epochs", str(plan["epochs"]), "--steps", str(plan["steps"]),
                          "--batch", str(plan["batch"]), "--device", plan["device"], "--no-doc",
                          "--title", "H200" if plan["device"] == "cuda" else "smoke", *plan["extra"]]
        folds = [int(i) for i in plan["only_folds"].split(",")]
        # a few CPU threads each: the folds share the machine's cores (their loader processes use one each)
        env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENCV_FOR_THREADS_NUM": "2"}
        work.mkdir(parents=True, exist_ok=True)
        self.cv_procs = {}
        for fold in folds:
            argv = [sys.executable, *self.cv_common, "--only-folds", str(fold), "--workers", str(plan["workers"]),
                    "--no-latency", "--json", str(work / f"fold{fold}.json")]
            log("$ " + shlex.join(argv) + f"  > {work}/fold{fold}.log &")
            with open(work / f"fold{fold}.log", "w") as sink:
                self.cv_procs[fold] = subprocess.Popen(argv, cwd=ROOT, env=env, start_new_session=True, stdout=sink,
                                                       stderr=subprocess.STDOUT)

    def cv_finish(self) -> None:
        """Waits for the fold processes (stopping them at the deadline less ``LATENCY_SECONDS``: what each
        finished is in its JSON), measures the rows' latency alone, merges everything into ``cv-gpu.json``."""
        from bench.cv import merge_reports, section

        plan = CV_SMOKE if self.args.smoke else CV
        work, procs = self.work / "cv", self.cv_procs
        stop_at = time.monotonic() + self.left() - LATENCY_SECONDS
        while any(p.poll() is None for p in procs.values()) and time.monotonic() < stop_at:
            time.sleep(2)
        stopped = [fold for fold, p in procs.items() if p.poll() is None]
        for fold in stopped:
            os.killpg(procs[fold].pid, signal.SIGTERM)
            procs[fold].wait()
        for fold, proc in procs.items():
            text = (work / f"fold{fold}.log").read_text(errors="replace")
            print(f"----- fold {fold} (exit status {proc.returncode}) -----\n{text}", flush=True)
        training_s = time.monotonic() - self.cv_started
        latency_json = work / "latency.json"
        latency = [*self.cv_common, "--latency-only", "--threads", "2", "--json", str(latency_json)]
        try:
            if self.command(latency, env={"OMP_NUM_THREADS": "2"}, timeout=max(1.0, self.left())):
                log("cv: the latency run failed; the table has no latency")
        except subprocess.TimeoutExpired:
            log("cv: the latency run reached the deadline; the table has no latency")
        paths = [work / f"fold{fold}.json" for fold in procs] + [latency_json]
        reports = [json.loads(p.read_text()) for p in paths if p.is_file()]
        reports = [r for r in reports if r["results"] or r.get("latency")]
        if not any(r["results"] for r in reports):
            raise RuntimeError("no fold finished a row")
        merged = merge_reports(reports)
        merged["seconds"] = time.monotonic() - self.cv_started
        if merged["commit"] in ("", "unknown"):  # no git there: the commit `prepare` noted
            merged["commit"] = prepared_commit() or "unknown"
        fold_argv = ["python", *self.cv_common, "--only-folds", "I", "--workers", str(plan["workers"]), "--no-latency"]
        merged["command"] = (f"bash bench/gpu_session.sh: {len(procs)} processes at once ({shlex.join(fold_argv)} for I in "
                             f"{', '.join(map(str, procs))}), then {shlex.join(['python', *latency])}")
        where = "on the one GPU" if plan["device"] == "cuda" else f"on {plan['device']}"
        merged["machine"]["parallel"] = (
            f"the {len(procs)} folds trained at once, one process each with {plan['workers']} loader processes, "
            f"{where} ({training_s / 60:.1f} min)"
            + (f", while bench/gpu_session.py's {' and '.join(self.cv_alongside)} ran beside them"
               if self.cv_alongside else "")
            + (f"; folds {stopped} stopped at the deadline, their unfinished rows missing" if stopped else ""))
        (self.out / "cv-gpu.json").write_text(json.dumps(merged, indent=1))
        print(section(merged, "cv-gpu"), flush=True)
        if stopped:
            raise RuntimeError(f"folds {stopped} did not finish before the deadline (what they finished is merged)")

    # -- driver ---------------------------------------------------------------------------------------

    def step(self, name: str) -> bool:
        """Run one stage (its method), logged and timed; a failure is logged and does not stop the session."""
        entry = {"stage": name, "status": "skipped", "seconds": 0.0}
        self.stages.append(entry)
        if self.left() < MIN_SECONDS.get(name, 0):
            log(f"== {name}: skipped, {self.left():.0f} s left")
            return False
        log(f"== {name}")
        t0 = time.monotonic()
        try:
            getattr(self, name)()
            entry["status"] = "ok"
            self.done.add(name)
        except Exception as exc:  # noqa: BLE001 - logged; the next stage still runs
            import traceback

            traceback.print_exc()
            entry["status"] = f"failed: {exc}"
        entry["seconds"] = round(time.monotonic() - t0, 1)
        log(f"== {name}: {entry['status']} in {entry['seconds']} s")
        return entry["status"] == "ok"

    def run(self, stages: list[str]) -> int:
        import torch

        log(f"gpu session: stages {stages}, smoke {self.args.smoke}, deadline {self.args.deadline:.0f} s, out {self.out}")
        log(f"commit: {git_commit() or '?'} (bench/gpu_session.sh prepare noted: {prepared_commit() or '-'})")
        log(f"python {sys.version.split()[0]}, torch {torch.__version__}, cuda "
            + (torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none") + f", {os.cpu_count()} CPUs")
        for name in stages:
            if self.step(name) and name != "cv" and "cv" in self.done:
                self.cv_alongside.append(name)
        if "cv" in self.done:  # its folds ran beside the stages after it
            self.step("cv_finish")
        log("stages: " + "; ".join(f"{e['stage']} {e['status']} ({e['seconds']} s)" for e in self.stages))
        return 0 if all(e["status"] == "ok" for e in self.stages) else 1


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stages", nargs="+", choices=STAGES, help="run in this order")
    parser.add_argument("--smoke", action="store_true", help="a tiny budget on the CPU: proves every stage runs")
    parser.add_argument("--out", type=Path, required=True, help="where the results go ($OUT on the GPU machine)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "nails-cc0")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-session"))
    parser.add_argument("--model", type=Path, help="checkpoint for labels / click (default: OUT/model.pt)")
    parser.add_argument("--deadline", type=float, help="seconds for all the stages together (default: "
                        f"{DEADLINE:.0f}; {DEADLINE_SMOKE:.0f} with --smoke)")
    args = parser.parse_args(argv)
    if args.deadline is None:
        args.deadline = DEADLINE_SMOKE if args.smoke else DEADLINE
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    return Session(args).run(args.stages)


if __name__ == "__main__":
    sys.exit(main())
