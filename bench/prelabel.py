#!/usr/bin/env python
"""Pre-labeling: throughput of one CPU worker, and how close the model's drafts are to the ground truth.

    .venv/bin/python bench/prelabel.py                          # train (a few minutes on 2 cores), measure, write docs
    .venv/bin/python bench/prelabel.py --checkpoint run/best.pt --no-docs   # measure an existing model

1. Data: ``../shared/data/nails-cc0`` (40 photos, 227 nails, CC0; one class "nail": no finger classes, no
   landmarks), imported with the platform's COCO importer, split by participant with the platform's
   splitter (``dataset.splits.participant_split``, 0.65 / 0.18 / 0.17, seed 0), written as the platform's
   masks export (what training reads).
2. Model: trained on the train split only with ``ml.train.train`` (preset and reductions from the options,
   printed in the section), best val checkpoint kept.
3. Throughput: the pre-labeling job's per-image work without the database: read the stored photo, network
   at 480 px (longer side), post-processing, uncertainty, the draft geometry (per-nail validation) and the
   probability PNG, one image at a time in one process with ``--threads`` torch threads (1 = one CPU worker
   as deployed, ``NAILSET_PRELABEL_THREADS``), over every photo, after one warm-up image.
4. Drafts vs ground truth on the val split (and test, for a second opinion: val is small): each
   ground-truth nail is matched to a draft nail (``prelabel.metrics.match_nails``: greedy polygon IoU,
   at least 0.1); its IoU with that draft polygon (0 when missed) gives the mean nail IoU and the share of
   nails needing no correction (IoU >= 0.9). Draft nails matching nothing are counted as extra.

Results go into the ``prelabel`` section of ``docs/benchmarks.md`` (``--no-docs``: print only).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image as PILImage  # noqa: E402

from dataset.formats import ExportRecord, FolderTarget, get_exporter, get_importer  # noqa: E402
from dataset.geometry import normalize_geometry, validate_geometry  # noqa: E402
from dataset.splits import participant_split  # noqa: E402

from benchdoc import git_commit, machine_info, markers, write_section  # noqa: E402  (bench/ is on sys.path when run as a script)

SECTION = "prelabel"
SHARED = ROOT.parent / "shared" / "data" / "nails-cc0"
SIZE = 480


def load_dataset(root: Path = SHARED) -> list[dict]:
    """Every photo with its validated geometry, participant and split."""
    parsed = get_importer("coco").parse(str(root / "annotations.coco.json"))
    with open(root / "participants.csv", newline="") as handle:
        owners = {row["file_name"]: row["participant"] for row in csv.DictReader(handle)}
    counts: dict[str, int] = {}
    for image in parsed.images:
        counts[owners[image.file_name]] = counts.get(owners[image.file_name], 0) + 1
    splits = participant_split(counts, seed=0)
    items = []
    for image in parsed.images:
        report = validate_geometry(image.geometry, image.width, image.height)
        nails = image.geometry["nails"]
        if not report.ok:  # drop only the nails that break a rule (none in nails-cc0 after the importer's repair)
            bad = {issue.nail for issue in report.errors if issue.nail is not None}
            nails = [n for i, n in enumerate(nails) if i not in bad]
        items.append({"file_name": image.file_name, "path": str(image.image_path), "width": image.width, "height": image.height,
                      "participant": owners[image.file_name], "split": splits[owners[image.file_name]],
                      "geometry": normalize_geometry({"nails": nails, "ignore": image.geometry.get("ignore") or []})})
    return items


def write_masks(items: list[dict], out: Path) -> Path:
    records = [ExportRecord(i + 1, it["file_name"], it["path"], it["width"], it["height"], it["participant"], it["split"],
                            it["geometry"], hashlib.sha256(Path(it["path"]).read_bytes()).hexdigest()) for i, it in enumerate(items)]
    with FolderTarget(out) as target:
        get_exporter("masks").export(records, target, {"snapshot": "nails-cc0-bench", "content_hash": "bench",
                                                       "created_at": dt.datetime.now(dt.timezone.utc).isoformat()})
    return out


def train_model(data: Path, out: Path, args) -> tuple[Path, dict]:
    from ml.train import train

    overrides = {"epochs": args.epochs, "device": "cpu", "val_size": SIZE}
    if args.steps_per_epoch:
        overrides["steps_per_epoch"] = args.steps_per_epoch
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if args.fusion:
        overrides["model"] = {"fusion_width": args.fusion}
    if args.crop:
        overrides["augment"] = {"crop_size": args.crop}
    started = time.monotonic()
    last = [0.0]

    def progress(fraction, message):
        if time.monotonic() - last[0] > 15:
            last[0] = time.monotonic()
            print(f"  train {fraction * 100:5.1f}% {message}", flush=True)

    from ml.train import train_config

    config = train_config(args.preset, **{k: v for k, v in overrides.items() if k not in ("model", "augment")})
    if "model" in overrides or "augment" in overrides:
        base = config.to_dict()
        base["model"].update(overrides.get("model", {}))
        base["augment"].update(overrides.get("augment", {}))
        config = train_config(base)
    result = train(config, data, out, resume=False, on_progress=progress)
    result["wall_s"] = time.monotonic() - started
    return Path(result["checkpoint"] or result["last_checkpoint"]), result


def per_image(predictor, item: dict) -> tuple[float, dict, list]:
    """The prelabel job's per-image work without the database; returns (seconds, geometry, kept nails)."""
    from prelabel.drafts import nails_to_geometry
    from prelabel.inference import probability_png
    from training.serving import predict_picture

    started = time.perf_counter()
    with PILImage.open(item["path"]) as picture:
        rgb = np.asarray(picture.convert("RGB"))
    result = predict_picture(predictor, rgb, SIZE)
    geometry, kept, _ = nails_to_geometry(result.nails, item["width"], item["height"])
    probability_png(result.fg_prob)
    return time.perf_counter() - started, geometry, kept


def accuracy(drafts: dict[str, dict], items: list[dict]) -> dict:
    from prelabel.metrics import match_nails

    ious, extra, images = [], 0, 0
    for item in items:
        truth, draft = item["geometry"]["nails"], drafts[item["file_name"]]["nails"]
        matches = {j: iou for _, j, iou in ((i, j, iou) for i, j, iou in match_nails(draft, truth))}
        ious += [matches.get(j, 0.0) for j in range(len(truth))]
        extra += len(draft) - len(matches)
        images += 1
    n = len(ious)
    return {"images": images, "nails": n, "mean_iou": statistics.fmean(ious) if n else None,
            "median_iou": statistics.median(ious) if n else None,
            "share_090": sum(v >= 0.9 for v in ious) / n if n else None,
            "share_075": sum(v >= 0.75 for v in ious) / n if n else None,
            "missed": sum(v == 0 for v in ious), "extra": extra}


def machine() -> dict:
    """``benchdoc.machine_info`` with what this bench adds: library versions and the commit."""
    import cv2
    import shapely

    return {**machine_info(), "torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
            "shapely": shapely.__version__, "commit": git_commit() or "?"}


def fmt(value, digits=3, percent=False):
    if value is None:
        return "–"
    return f"{value * 100:.1f} %" if percent else f"{value:.{digits}f}"


def build_section(r: dict) -> str:
    start, end = markers(SECTION)
    m, t, tr = r["machine"], r["throughput"], r["training"]
    rows = "\n".join(
        f"| {name} | {a['images']} | {a['nails']} | {fmt(a['mean_iou'])} | {fmt(a['median_iou'])} | {fmt(a['share_090'], percent=True)} "
        f"| {fmt(a['share_075'], percent=True)} | {a['missed']} | {a['extra']} |" for name, a in r["accuracy"].items())
    return f"""{start}
## Pre-labeling (`bench/prelabel.py`)

Measured {r['when']} in {r['wall_s']:.0f} s with `{r['command']}` (commit {m['commit']}).

### Set-up

- **Machine**: {m['nproc']} CPUs ({m['cpu']}), load average {m['load'][0]:.2f} before the run (shared: other processes may have run meanwhile); Python {m['python']}, torch {m['torch']}, numpy {m['numpy']}, opencv {m['opencv']}, shapely {m['shapely']}.
- **Data**: `../shared/data/nails-cc0` (CC0): {r['data']['images']} photos, {r['data']['nails']} nails, one class "nail" (no finger classes, no landmarks), split by participant with the platform's splitter (0.65 / 0.18 / 0.17, seed 0): {r['data']['splits']}.
- **Model**: {tr['description']}; trained on the train split only, best val epoch kept (epoch {tr.get('best_epoch', '?')}); training wall time {tr.get('wall_s', 0):.0f} s on this CPU{'' if not tr.get('reused') else ' (the sum of the epochs of an earlier run of this script with the same options and `--out DIR`, whose `DIR/run/best.pt` is reused with `--checkpoint`)'}. Val mIoU during training (480 px): {fmt(tr.get('val_miou'), 4)}.

### Throughput: one CPU worker

The pre-labeling job's per-image work without the database (read the photo, network at {SIZE} px longer side, post-processing, uncertainty, draft geometry with per-nail validation, probability PNG), one image at a time, {t['threads']} torch thread(s), {t['images']} photos after one warm-up (sizes {t['sizes']}):

| | per image (median) | p90 | mean | images per minute per worker |
| --- | ---: | ---: | ---: | ---: |
| {t['threads']} thread(s) | {t['median_s'] * 1000:.0f} ms | {t['p90_s'] * 1000:.0f} ms | {t['mean_s'] * 1000:.0f} ms | **{t['per_minute']:.0f}** |

### Drafts vs ground truth

Each ground-truth nail matched to a draft nail (greedy polygon IoU >= 0.1); its polygon IoU with that draft (0 when missed). "No correction needed" = IoU >= 0.9.

| split | images | nails | mean nail IoU | median | IoU >= 0.9 (no correction) | IoU >= 0.75 | missed | extra draft nails |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{rows}

{r['comment']}
{end}
"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="measure this model instead of training one")
    parser.add_argument("--preset", default="web-336")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps-per-epoch", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--crop", type=int, default=None, help="training crop size (default: the preset's)")
    parser.add_argument("--fusion", type=int, default=None, help="fusion width (default: the preset's)")
    parser.add_argument("--train-threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the measured worker (default 1)")
    parser.add_argument("--out", default=None, help="keep the masks export and the run here")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotation_site.settings")
    import django

    django.setup()  # prelabel.drafts (the draft geometry rules) lives in a Django app; no database is used
    started = time.monotonic()
    info = machine()  # load average before the run
    items = load_dataset()
    splits = {s: [it for it in items if it["split"] == s] for s in ("train", "val", "test")}
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="prelabel-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    from ml.predict import Predictor

    if args.checkpoint:
        checkpoint, training = Path(args.checkpoint), {"reused": True}
        meta = torch.load(checkpoint, map_location="cpu", weights_only=True)
        training["best_epoch"] = meta.get("epoch")
        training["val_miou"] = (meta.get("metrics") or {}).get("miou")
        training["wall_s"] = sum(h.get("seconds", 0) for h in meta.get("history") or [])  # epochs incl. validation
        config = meta["config"]
    else:
        data = write_masks(items, work / "masks")
        torch.set_num_threads(args.train_threads)
        print(f"training {args.preset} for {args.epochs} x {args.steps_per_epoch} steps of {args.batch_size} on "
              f"{len(splits['train'])} photos ({args.train_threads} threads)...", flush=True)
        checkpoint, result = train_model(data, work / "run", args)
        best = result.get("best_metrics") or {}
        training = {"best_epoch": result.get("best_epoch"), "val_miou": best.get("miou"), "wall_s": result["wall_s"]}
        config = result["config"]
    model = config["model"]
    training["description"] = (
        f"preset `{args.preset}` reduced: {config['epochs']} epochs x {config.get('steps_per_epoch') or 'all'} steps, batch "
        f"{config['batch_size']}, {config['augment']['crop_size']} px crops; cascade depth {model['depth']}, fusion "
        f"{model['fusion_width']}, width {model['width_mult']}, encoders from `{model['pretrained']}`")
    torch.set_num_threads(args.threads)
    predictor = Predictor.from_checkpoint(checkpoint, size=SIZE, threads=args.threads)
    per_image(predictor, items[0])  # warm-up
    times, drafts = [], {}
    for item in items:
        seconds, geometry, _ = per_image(predictor, item)
        times.append(seconds)
        drafts[item["file_name"]] = geometry
    times.sort()
    sizes = sorted({(it["width"], it["height"]) for it in items}, key=lambda s: -s[0] * s[1])
    throughput = {"threads": args.threads, "images": len(items), "median_s": statistics.median(times),
                  "p90_s": times[int(0.9 * (len(times) - 1))], "mean_s": statistics.fmean(times),
                  "per_minute": 60 / statistics.fmean(times),
                  "sizes": f"{sizes[-1][0]}x{sizes[-1][1]} to {sizes[0][0]}x{sizes[0][1]}"}
    acc = {split: accuracy(drafts, splits[split]) for split in ("val", "test")}
    acc["train (seen in training)"] = accuracy(drafts, splits["train"])
    val = acc["val"]
    comment = (f"On val, {fmt(val['share_090'], percent=True)} of the ground-truth nails would need no correction "
               f"(draft IoU >= 0.9); mean nail IoU {fmt(val['mean_iou'])}. These numbers are for a model trained "
               f"{training.get('wall_s', 0) / 60:.0f} CPU minutes on {len(splits['train'])} photos: they are a floor for the pipeline, not what the paper's model "
               "trained on a real dataset reaches. The val and test splits are small, so one photo moves them by several "
               "points. Drafts of this data have no finger classes (the data has none), so class corrections are not measured here.")
    report = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "wall_s": time.monotonic() - started,
              "command": ".venv/bin/python bench/prelabel.py" + (" " + shlex.join(argv if argv is not None else sys.argv[1:]) if (argv or sys.argv[1:]) else ""),
              "machine": info, "training": training, "throughput": throughput, "accuracy": acc, "comment": comment,
              "data": {"images": len(items), "nails": sum(len(it["geometry"]["nails"]) for it in items),
                       "splits": ", ".join(f"{s} {len(v)} photos / {sum(len(it['geometry']['nails']) for it in v)} nails" for s, v in splits.items())}}
    print(json.dumps({k: report[k] for k in ("training", "throughput", "accuracy")}, indent=1, default=str))
    if not args.no_docs:
        write_section(SECTION, build_section(report))
        print("wrote the prelabel section of docs/benchmarks.md")
    return report


if __name__ == "__main__":
    main()
