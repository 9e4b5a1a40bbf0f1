"""The paper's ablation on real photos (model issue): baseline / + LMP / + cascade, pretrained vs random init.

    python bench/ablation.py [--epochs 12] [--device auto] [--rows paper|all] [--inits pretrained,random]
                             [--seeds 0] [--json results.json] [--section ablation-cpu]
    python bench/ablation.py --from-json results.json --section ablation-gpu   # write a run made elsewhere

1. Builds a "masks" export of ``--source`` (default ``../shared/data/nails-cc0``: a COCO file, its images and
   ``participants.csv``) with the platform's own core (``dataset.formats`` COCO import with polygon repair,
   ``dataset.geometry`` validation, ``dataset.splits.participant_split`` with a fixed seed, so no
   participant is in two splits, and ``dataset.formats.masks.export_masks``). No database.
2. Trains every row with ``ml.train.train`` on the same preset and budget (``ml.ablation``), picks the best
   val epoch (early stopping on val binary mIoU, as the training job), and evaluates that checkpoint on the
   held-out test split with ``ml.evaluate.evaluate`` at the val size.
3. Prints and writes the table to ``docs/benchmarks.md`` (section ``--section``) and the raw results to
   ``--json``. The device tool (a lent GPU) runs the same script with ``--device cuda`` and more epochs;
   its JSON comes back and ``--from-json`` writes it here.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import json
import shlex
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.benchdoc import fmt, git_commit, loadavg, log, machine_info, markers, write_section  # noqa: E402
from ml.train_presets import TRAIN_PRESETS  # noqa: E402  (plain Python, no torch)

DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "nails-cc0"


def build_export(source: Path, target: Path, seed: int = 0, labels: Path | None = None) -> dict:
    """A masks export of a COCO folder with a participant-grouped split; returns its summary. ``labels``: a demo
    label file (``curation.demo_labels``: fingers and base/tip by annotation id) merged into the COCO file first,
    so the export has finger classes and direction fields (the class and direction heads learn); None: the
    polygons alone."""
    from dataset.checksums import file_sha256
    from dataset.formats import ExportRecord, FolderTarget, get_importer
    from dataset.formats.masks import export_masks
    from dataset.geometry import validate_geometry
    from dataset.splits import participant_split

    coco = source / "annotations.coco.json"
    if labels is not None:
        from curation.demo_labels import write_merged_coco

        coco = write_merged_coco(coco, target.parent / f"{target.name}-coco", labels)  # photos stay in source
    dataset = get_importer("coco").parse(str(coco))
    for image in dataset.images:
        if image.image_path is None and (source / "images" / image.file_name).is_file():
            image.image_path = str(source / "images" / image.file_name)
    with open(source / "participants.csv", newline="", encoding="utf-8") as f:
        participant_of = {row["file_name"]: row["participant"] for row in csv.DictReader(f)}
    images, skipped = [], []
    for image in dataset.images:
        report = validate_geometry(image.geometry, image.width, image.height)
        if image.image_path is None or not report.ok:
            skipped.append(image.file_name)
            continue
        images.append(image)
    counts: dict[str, int] = {}
    for image in images:
        code = participant_of.get(image.file_name, f"file-{image.file_name}")
        counts[code] = counts.get(code, 0) + 1
    split_of = participant_split(counts, seed=seed)
    records = [
        ExportRecord(image_id=i + 1, file_name=image.file_name, source_path=image.image_path,
                     width=image.width, height=image.height,
                     participant=participant_of.get(image.file_name, f"file-{image.file_name}"),
                     split=split_of[participant_of.get(image.file_name, f"file-{image.file_name}")],
                     geometry=image.geometry, sha256=file_sha256(image.image_path))
        for i, image in enumerate(sorted(images, key=lambda im: im.file_name))
    ]
    if target.exists():
        shutil.rmtree(target)
    content_hash = hashlib.sha256("".join(r.sha256 + r.split for r in records).encode()).hexdigest()
    with FolderTarget(target) as out:
        summary = export_masks(records, out, {"snapshot": source.name, "content_hash": content_hash,
                                              "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    people = {split: sum(1 for s in split_of.values() if s == split) for split in ("train", "val", "test")}
    summary.update(participants=people, skipped=skipped, warnings=len(dataset.warnings),
                   labels=str(labels or "polygons"),
                   nails=sum(len(r.geometry.get("nails") or []) for r in records))
    return summary


def run_row(label: str, init: str, seed: int, export: Path, work: Path, args) -> dict:
    from ml.ablation import row_overrides
    from ml.evaluate import evaluate
    from ml.train import train, train_config
    from ml.train_presets import bench_warmup_steps

    overrides = row_overrides(label, pretrained=True if init == "pretrained" else None)
    config = train_config(args.preset, **overrides, epochs=args.epochs, batch_size=args.batch,
                          steps_per_epoch=args.steps, patience=args.patience, seed=seed, device=args.device,
                          num_workers=args.workers, cache_data=True, val_size=args.val_size,
                          warmup_steps=bench_warmup_steps(args.epochs, args.steps))
    slug = "".join(c if c.isalnum() else "-" for c in f"{label}-{init}-s{seed}").strip("-")
    out = work / "runs" / slug
    log(f"training {label} ({init}, seed {seed})")
    result = train(config, export, out, resume=False,
                   on_epoch=lambda e, model: log(f"  epoch {e['epoch']}: loss {e['train_loss']:.4f}, val mIoU "
                                          f"{100 * ((e['val'] or {}).get('miou') or float('nan')):.1f}"))
    test = evaluate(result["checkpoint"], export, "test", sizes=[config.eval_size], device=args.device,
                    optimize=False)["sizes"][config.eval_size]
    val = result["best_metrics"] or {}
    entry = {"row": label, "init": init, "seed": seed, "val": {k: val.get(k) for k in ("miou", "nail_iou")},
             "test": {k: test.get(k) for k in ("miou", "nail_iou")}, "best_epoch": result["best_epoch"],
             "epochs": result["epochs_completed"], "seconds": result["seconds"], "device": result["device"],
             "history": [{"epoch": h["epoch"], "train_loss": h["train_loss"], "val_miou": (h["val"] or {}).get("miou")}
                        for h in result["history"]]}
    log(f"  -> val mIoU {100 * (entry['val']['miou'] or 0):.1f}, test mIoU {100 * (entry['test']['miou'] or 0):.1f}, "
        f"{entry['seconds']:.0f} s")
    return entry


def aggregate(results: list[dict]) -> list[dict]:
    """Mean over seeds per (row, init), in first-seen order; ``*_sd`` when there are several seeds."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for result in results:
        groups.setdefault((result["row"], result["init"]), []).append(result)
    rows = []
    for (label, init), runs in groups.items():
        row = {"row": label, "init": init if len(runs) == 1 else f"{init} ({len(runs)} seeds)",
               "best_epoch": "/".join(str(r["best_epoch"]) for r in runs), "epochs": runs[0]["epochs"],
               "seconds": statistics.fmean(r["seconds"] for r in runs)}
        for part in ("val", "test"):
            row[part] = {k: statistics.fmean(r[part][k] for r in runs) for k in ("miou", "nail_iou")}
        row["val_per_seed"] = [r["val"]["miou"] for r in runs]
        rows.append(row)
    return rows


def section(report: dict, name: str) -> str:
    """The doc section ``name`` (markers included) of a run's report."""
    from ml.ablation import ablation_table

    args, export = report["args"], report["export"]
    machine = report["machine"]
    seeds = sorted({r["seed"] for r in report["results"]})
    start, end = markers(name)
    lines = [
        start,
        f"## Ablation on nails-cc0, {report['title']} (`bench/ablation.py`)",
        "",
        f"Measured {report['date']} in {fmt(report['seconds'] / 60)} min with `{report['command']}` "
        f"(commit {report['commit']}); every figure below comes from that run.",
        "",
        "### Set-up",
        "",
        f"- **Data**: `../shared/data/nails-cc0` imported with the platform's COCO importer ({export['nails']} nails, "
        f"{export['warnings']} repair warnings), split by participant with `participant_split(seed=0)`: "
        f"train {export['splits']['train']} / val {export['splits']['val']} / test {export['splits']['test']} images "
        f"({export['participants']['train']} / {export['participants']['val']} / {export['participants']['test']} "
        "participants). No finger classes or landmarks: only the fg/bg heads learn.",
        f"- **Budget (every row the same)**: preset `{args['preset']}` ({args['crop']}x{args['crop']} random crops "
        f"with the hand augmentations), {args['epochs']} epochs x {args['steps']} steps x batch {args['batch']} "
        f"(= {args['epochs'] * args['steps'] * args['batch']} crops), AdamW, poly schedule, seeds {seeds}; val "
        f"every epoch at long side {args['val_size']}; the best val epoch is kept (early stopping patience "
        f"{args['patience']}) and evaluated once on test.",
        "- **Init**: pretrained = both MobileNetV2 encoders from the TFLite ImageNet weights "
        "(`../shared/weights`, dequantized); random = He init.",
        f"- **Machine**: {machine['where']}; torch {machine['torch']}, device `{machine['device']}`"
        f"{' with bf16 mixed precision (ml.train on CUDA)' if machine['device'].startswith('cuda') else ''}, "
        f"load average {machine.get('load', 'n/a')} at the start.",
        "",
        "### Results (binary mIoU = mean of nail IoU and background IoU, %, as the paper)",
        "",
        ablation_table(aggregate(report["results"]), test=True),
        "",
        f"Val has {export['splits']['val']} images and test {export['splits']['test']}: one image moves the "
        "figures by a point or more, so differences of that size are noise. The paper's figures come from "
        "941 train / 254 val images of >300 participants (`../shared/paper-notes.md`). Train time is the "
        "wall time of the run, validation included, on a machine shared with other work.",
        end,
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--export", type=Path, help="an existing masks export (skips building one)")
    parser.add_argument("--work", type=Path, default=ROOT / "var" / "bench" / "ablation")
    parser.add_argument("--preset", default="web-336", choices=list(TRAIN_PRESETS),
                        help="the base config; --epochs, --steps and --batch set the budget")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--steps", type=int, default=8, help="steps per epoch")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patience", type=int, default=1000)
    parser.add_argument("--val-size", type=int, default=480)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rows", choices=["paper", "extra", "all"], default="paper",
                        help="paper: the paper's three rows; extra: fusion 256 / 128 and the U-Net; all: both")
    parser.add_argument("--inits", default="pretrained,random")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--from-json", type=Path, nargs="+",
                        help="only write the doc section of earlier runs' JSON (several: results merged, in order)")
    parser.add_argument("--section", default="ablation-cpu")
    parser.add_argument("--title", default="CPU budget")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()

    if args.from_json:
        reports = [json.loads(path.read_text()) for path in args.from_json]
        report = {**reports[0], "results": [r for rep in reports for r in rep["results"]],
                  "seconds": sum(rep["seconds"] for rep in reports),
                  "command": " && ".join(rep["command"] for rep in reports)}
        text = section(report, args.section)
        write_section(args.section, text)
        print(text)
        return

    import torch

    from ml.ablation import ABLATION_ROWS, EXTRA_ROWS
    from ml.device import resolve_device

    started = time.monotonic()
    args.work.mkdir(parents=True, exist_ok=True)
    export = args.export or args.work / "export"
    if args.export is None:
        summary = build_export(args.source, export)
        (args.work / "export-summary.json").write_text(json.dumps(summary, indent=1))
    else:
        summary = json.loads((args.export.parent / "export-summary.json").read_text())
    log(f"export: {summary['splits']} images, participants {summary['participants']}")
    rows = {"paper": ABLATION_ROWS, "extra": EXTRA_ROWS, "all": ABLATION_ROWS + EXTRA_ROWS}[args.rows]
    results: list[dict] = []
    device = resolve_device(args.device)
    info = machine_info()
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{info['nproc']} CPUs ({info.get('cpu', 'unknown')}), {torch.get_num_threads()} threads")
    report = {
        "title": args.title, "date": time.strftime("%Y-%m-%d"), "seconds": time.monotonic() - started,
        "command": "python " + shlex.join([Path(sys.argv[0]).as_posix()] + sys.argv[1:]),
        "commit": git_commit(("ml", "bench"), "ml/ or bench/") or "unknown",
        "args": {"preset": args.preset, "crop": TRAIN_PRESETS[args.preset].crop_size, "epochs": args.epochs,
                 "steps": args.steps, "batch": args.batch, "patience": args.patience, "val_size": args.val_size},
        "export": summary, "results": results,
        "machine": {"where": where, "torch": torch.__version__, "device": str(device),
                    "load": " / ".join(f"{x:.1f}" for x in loadavg()) if device.type == "cpu" else "n/a"},
    }
    for seed in [int(s) for s in args.seeds.split(",")]:
        for label, _ in rows:
            for init in args.inits.split(","):
                results.append(run_row(label, init, seed, export, args.work, args))
                report["seconds"] = time.monotonic() - started
                if args.json:  # after every run: a run cut short still leaves what it finished
                    args.json.write_text(json.dumps(report, indent=1))
    text = section(report, args.section)
    print(text)
    if not args.no_doc:
        write_section(args.section, text)


if __name__ == "__main__":
    main()
