#!/usr/bin/env python
"""Interoperability: every export format round-trips through the platform, and third-party readers open the
exports (run by hand, not in the suite; it writes its section of docs/benchmarks.md).

    .venv/bin/python bench/interop.py                        # full run; writes docs/benchmarks.md
    .venv/bin/python bench/interop.py --no-docs --skip-readers   # the round trips only, printed
    .venv/bin/python bench/interop.py --venvs /tmp/interop-venvs  # keep (and reuse) the readers' environments

Data: ``../shared/data/nails-cc0`` (40 photos, CC0, COCO outlines and ``participants.csv``), read in place and
never copied into the repository. The shared outlines have no finger and no landmarks; every nail gets a finger
(left to right) and base / tip on its principal axis (``bench/training_data.py``'s ``enrich``), every fifth photo
an ignore region, so each format carries everything it can.

1. **Source** (child process, scratch embedded instance: temporary ``NAILSET_VAR_DIR``, SQLite, migrated):
   the real ``curation.transfer.import_labels("coco", ..., participants_csv=...)``, labels replaced by the
   enriched ones (``import_annotation``), a snapshot (``build_snapshot``, seed 0), then
   ``export_snapshot(snapshot, fmt, out=DIR)`` for every format in ``dataset.formats.EXPORTERS``.
2. **Round trip** (one fresh scratch instance per format that also has an importer in ``IMPORTERS``):
   ``import_labels(fmt, DIR)`` with NO participants CSV (participants and names must come from the export);
   only when that imports nothing is it retried with ``default_participant`` (said in the table). Images are
   matched to the source by perceptual hash (intake re-encodes the picture, so bytes differ) and their labels
   compared: identical geometry (nails with finger, polygon, base and tip, and ignore regions, exactly),
   per-nail polygon IoU (Shapely) against the best source nail, fingers and landmarks kept, participants and
   original file names restored.
3. **Third-party readers**, each in its own throwaway virtual environment made by this script with pip
   (``--venvs`` to keep them): pycocotools (``COCO`` loads every ``instances_*.json``; ``COCOeval`` of the
   export against itself, segm and bbox: AP 1.000 means every annotation is well formed and matches
   itself), Datumaro (``Dataset.import_from``: items and annotations by type, for COCO, CVAT and YOLO when
   exported), Ultralytics (``check_det_dataset`` on the YOLO ``data.yaml`` and ``YOLODataset`` reading every
   label file; offline: ``YOLO_OFFLINE``, a local font, no downloads). A reader that cannot be installed or
   run is reported with the reason, never left out silently.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdoc import child_env, git_commit, log, machine_info, markers, setup_django, write_section  # noqa: E402

SECTION = "interop"
SHARED = ROOT.parent / "shared" / "data" / "nails-cc0"
ROUND_TRIP_PARTICIPANT = "interop-roundtrip"
READER_PACKAGES = {
    "pycocotools": ["pycocotools", "numpy"],
    "datumaro": ["datumaro"],
    "ultralytics": ["torch==2.14.1", "torchvision==0.29.1", "ultralytics"],
}


# --------------------------------------------------------------------------------------------------
# Child phases (Django, in a scratch instance)
# --------------------------------------------------------------------------------------------------

def image_rows() -> list[dict]:
    """Every labelled image of this instance: participant, original name, size, phash and labels."""
    from curation.snapshots import image_phash
    from labeling.models import Image

    rows = []
    for image in Image.objects.select_related("participant", "upload", "annotation").order_by("id"):
        annotation = getattr(image, "annotation", None)
        rows.append({"id": image.pk, "participant": image.participant.code,
                     "original_name": image.upload.original_name if image.upload else None,
                     "width": image.width, "height": image.height, "phash": image_phash(image),
                     "status": annotation.status if annotation else None,
                     "geometry": annotation.geometry if annotation else None})
    return rows


def phase_source(args) -> None:
    setup_django()
    from curation.snapshots import build_snapshot
    from curation.transfer import export_snapshot, import_labels
    from dataset.formats import EXPORTERS
    from labeling.annotations import import_annotation
    from labeling.models import Image
    from training_data import enrich

    report = import_labels("coco", str(SHARED / "annotations.coco.json"), participants_csv=str(SHARED / "participants.csv"),
                           status="accepted")
    if report.failed_files or not report.images_created:
        raise RuntimeError(f"the shared data did not import cleanly: {report.as_dict()}")
    for number, image in enumerate(Image.objects.select_related("annotation").order_by("id")):
        polygons = [nail["polygon"] for nail in image.annotation.geometry["nails"]]
        geometry = enrich(polygons, image.width, image.height, right_hand=number % 2 == 1)
        if number % 5 == 0:
            w, h = image.width, image.height
            geometry["ignore"] = [[[w * 0.02, h * 0.02], [w * 0.12, h * 0.02], [w * 0.12, h * 0.08], [w * 0.02, h * 0.08]]]
        import_annotation(image, geometry, status="accepted", note="bench: fingers, landmarks, ignore region", replace=True)
    split_warnings = []
    snapshot = build_snapshot("interop", seed=0, warn=split_warnings.append)
    exports = {}
    for fmt in EXPORTERS:
        out = Path(args.exports) / fmt
        t0 = time.perf_counter()
        try:
            result = export_snapshot(snapshot, fmt, out=str(out))
            files = [p for p in out.rglob("*") if p.is_file()]
            exports[fmt] = {"ok": True, "seconds": time.perf_counter() - t0, "bytes": result["size"], "files": len(files)}
        except Exception as exc:  # reported in the table
            exports[fmt] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        log(f"export {fmt}: {exports[fmt]}")
    if "yolo" in EXPORTERS:  # the case Ultralytics used to refuse: a snapshot with empty val and test
        from curation.snapshots import pin_participant
        from labeling.models import Participant

        for participant in Participant.objects.all():
            pin_participant(participant, "train")
        export_snapshot(build_snapshot("interop-train-only", seed=0), "yolo", out=str(Path(args.exports) / "yolo-train-only"))
    Path(args.out).write_text(json.dumps({
        "import": {"images": report.images_created, "warnings": report.warnings}, "images": image_rows(),
        "snapshot": {"splits": snapshot.counts["splits"], "warnings": split_warnings},
        "exports": exports,
    }))


def phase_reimport(args) -> None:
    setup_django()
    from curation.transfer import import_labels
    from dataset.formats import IMPORTERS

    if args.format not in IMPORTERS:
        Path(args.out).write_text(json.dumps({"importer": False}))
        return
    attempts = []
    for default in (None, ROUND_TRIP_PARTICIPANT):
        t0 = time.perf_counter()
        try:
            report = import_labels(args.format, args.path, default_participant=default, status="accepted").as_dict()
        except Exception as exc:
            report = {"error": f"{type(exc).__name__}: {exc}", "images_created": 0}
        report["seconds"] = time.perf_counter() - t0
        report["default_participant"] = default
        attempts.append(report)
        if report.get("images_created"):
            break
    Path(args.out).write_text(json.dumps({"importer": True, "attempts": attempts, "images": image_rows()}, default=str))


# --------------------------------------------------------------------------------------------------
# Comparison (orchestrator side; plain Python + Shapely from the project's venv)
# --------------------------------------------------------------------------------------------------

def canonical(geometry: dict, keys=None) -> str:
    nails = sorted(json.dumps({k: v for k, v in n.items() if keys is None or k in keys}, sort_keys=True)
                   for n in (geometry or {}).get("nails", []))
    ignore = sorted(json.dumps(r) for r in (geometry or {}).get("ignore", [])) if keys is None else []
    return json.dumps([nails, ignore])


def polygon_iou(a, b) -> float:
    from shapely.geometry import Polygon

    pa, pb = Polygon(a).buffer(0), Polygon(b).buffer(0)
    union = pa.union(pb).area
    return pa.intersection(pb).area / union if union else 0.0


def compare(source: list[dict], copies: list[dict]) -> dict:
    sys.path.insert(0, str(ROOT))
    from dataset.phash import hamming_distance

    matched, unmatched = [], 0
    for copy in copies:
        best = min(source, key=lambda s: (hamming_distance(s["phash"], copy["phash"]), abs(s["width"] - copy["width"])))
        if hamming_distance(best["phash"], copy["phash"]) <= 6 and (best["width"], best["height"]) == (copy["width"], copy["height"]):
            matched.append((best, copy))
        else:
            unmatched += 1
    identical = sum(canonical(s["geometry"]) == canonical(c["geometry"]) for s, c in matched)
    outlines = sum(canonical(s["geometry"], ("polygon", "finger")) == canonical(c["geometry"], ("polygon", "finger"))
                   for s, c in matched)
    ious, moved, fingers, landmarks = [], [], [0, 0], [0, 0]
    nails = [0, 0]
    ignore = [0, 0]
    for s, c in matched:
        src_nails, copy_nails = s["geometry"]["nails"], (c["geometry"] or {}).get("nails", [])
        nails[0] += len(src_nails)
        nails[1] += len(copy_nails)
        ignore[0] += len(s["geometry"].get("ignore", []))
        ignore[1] += len((c["geometry"] or {}).get("ignore", []))
        for nail in src_nails:
            scored = [(polygon_iou(nail["polygon"], other["polygon"]), other) for other in copy_nails]
            iou, other = max(scored, key=lambda t: t[0]) if scored else (0.0, None)
            ious.append(iou)
            if other is not None and len(other["polygon"]) == len(nail["polygon"]):
                moved += [abs(u - v) for p, q in zip(nail["polygon"], other["polygon"]) for u, v in zip(p, q)]
            if other is not None:
                fingers[0] += nail.get("finger") is not None
                fingers[1] += nail.get("finger") is not None and other.get("finger") == nail.get("finger")
                landmarks[0] += nail.get("base") is not None
                landmarks[1] += nail.get("base") is not None and other.get("base") == nail.get("base") and other.get("tip") == nail.get("tip")
    return {
        "images": len(copies), "matched": len(matched), "unmatched": unmatched, "distinct_sources": len({s["id"] for s, _ in matched}),
        "identical": identical, "outlines_identical": outlines, "max_coordinate_change": max(moved) if moved else None,
        "nails": nails, "ignore": ignore,
        "iou_mean": sum(ious) / len(ious) if ious else None, "iou_min": min(ious) if ious else None,
        "fingers_kept": fingers, "landmarks_kept": landmarks,
        "participants_restored": sum(s["participant"] == c["participant"] for s, c in matched),
        "names_restored": sum(s["original_name"] == c["original_name"] for s, c in matched),
        "statuses": sorted({c["status"] for _, c in matched if c["status"]}),
    }


# --------------------------------------------------------------------------------------------------
# Third-party readers, each in its own virtual environment
# --------------------------------------------------------------------------------------------------

COCO_READER = r'''
import json, sys, copy
from pathlib import Path
import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
import pycocotools
root = Path(sys.argv[1]); out = {"version": getattr(pycocotools, "__version__", "?"), "files": {}}
for path in sorted((root / "annotations").glob("instances_*.json")):
    gt = COCO(str(path))
    anns = gt.loadAnns(gt.getAnnIds())
    entry = {"images": len(gt.getImgIds()), "annotations": len(anns), "crowd": sum(a.get("iscrowd", 0) for a in anns),
             "categories": len(gt.getCatIds()), "keypoints": sum(a.get("num_keypoints", 0) for a in anns)}
    dets = [dict(copy.deepcopy(a), score=1.0) for a in anns if not a.get("iscrowd")]
    if dets:
        dt = gt.loadRes(dets)
        for kind in ("segm", "bbox", "keypoints"):
            ev = COCOeval(gt, dt, kind)
            if kind == "keypoints":  # base and tip; pycocotools' default sigmas are the 17 human keypoints
                ev.params.kpt_oks_sigmas = np.array([0.025, 0.025])
            ev.evaluate(); ev.accumulate(); ev.summarize()
            entry[f"AP_{kind}"] = float(ev.stats[0])
    out["files"][path.name] = entry
print("RESULT " + json.dumps(out))
'''

DATUMARO_READER = r'''
import json, re, shutil, sys, tempfile
from collections import Counter
from pathlib import Path
import datumaro as dm
from datumaro.components.environment import Environment
known = set(Environment().importers)

def read(path, name):
    ds = dm.Dataset.import_from(path, name)
    kinds = Counter(ann.type.name for item in ds for ann in item.annotations)
    labels = ds.categories().get(dm.AnnotationType.label)
    return {"importer": name, "items": len(ds), "subsets": sorted(ds.subsets()), "annotations": dict(sorted(kinds.items())),
            "labels": len(labels) if labels else 0}

out = {"version": dm.__version__, "formats": {}}
for fmt, path, candidates in json.loads(sys.argv[1]):
    names = [c for c in candidates if c in known]
    if not names:
        out["formats"][fmt] = {"error": f"no Datumaro importer among {candidates}"}
        continue
    try:
        out["formats"][fmt] = entry = read(path, names[0])
        if fmt == "cvat" and not entry["items"]:  # diagnosis: Datumaro keeps only <image>s of the file's own subset
            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(shutil.copytree(path, Path(tmp) / "cvat"))
                for xml in copy.rglob("*.xml"):
                    xml.write_text(re.sub(r'(<image [^>]*?) subset="[^"]*"', r"\1", xml.read_text()))
                entry["without_image_subset_attributes"] = read(str(copy), names[0])
    except Exception as exc:
        out["formats"][fmt] = {"importer": names[0], "error": f"{type(exc).__name__}: {exc}"[:400]}
print("RESULT " + json.dumps(out))
'''

ULTRALYTICS_READER = r'''
import json, sys
from pathlib import Path
import ultralytics
from ultralytics.data.utils import check_det_dataset
from ultralytics.data.dataset import YOLODataset
data = check_det_dataset(sys.argv[1])
out = {"version": ultralytics.__version__, "nc": data["nc"], "names": len(data["names"]),
       "splits": {k: str(data[k]) for k in ("train", "val", "test") if data.get(k)}}
for split in ("train", "val", "test"):
    if data.get(split):
        ds = YOLODataset(img_path=data[split], data=data, task="segment", augment=False, cache=False)
        out[split] = {"images": len(ds.labels), "segments": int(sum(len(l["segments"]) for l in ds.labels)),
                      "classes": sorted({int(c) for l in ds.labels for c in l["cls"].ravel()})}
print("RESULT " + json.dumps(out))
'''


def make_venv(folder: Path, packages: list[str]) -> tuple[Path | None, str]:
    """A virtual environment with ``packages``; (python, "") or (None, why it could not be made)."""
    python = folder / "bin" / "python"
    marker = folder / ".installed"
    if marker.exists() and marker.read_text() == " ".join(packages):
        return python, ""
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    t0 = time.perf_counter()
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], capture_output=True, text=True)
    if done.returncode:
        return None, f"pip install {' '.join(packages)} failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:300]
    marker.write_text(" ".join(packages))
    log(f"venv {folder.name}: {' '.join(packages)} installed in {time.perf_counter() - t0:.0f} s")
    return python, ""


def run_reader(python: Path, script: str, argv: list[str], env: dict | None = None, timeout: int = 900) -> dict:
    done = subprocess.run([str(python), "-c", script, *argv], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-3:]
    return {"error": f"exit {done.returncode}: " + " | ".join(tail)[:500]}


def pip_version(python: Path, package: str) -> str:
    done = subprocess.run([str(python), "-m", "pip", "show", package], capture_output=True, text=True)
    return next((line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("Version:")), "?")


def readers(exports: Path, formats: dict, venvs: Path) -> dict:
    results = {}
    if formats.get("coco", {}).get("ok"):
        python, why = make_venv(venvs / "pycocotools", READER_PACKAGES["pycocotools"])
        results["pycocotools"] = run_reader(python, COCO_READER, [str(exports / "coco")]) if python else {"error": why}
        if python:
            results["pycocotools"]["version"] = pip_version(python, "pycocotools")
        log(f"pycocotools: {results['pycocotools']}")
    python, why = make_venv(venvs / "datumaro", READER_PACKAGES["datumaro"])
    wanted = [(fmt, str(exports / fmt), names) for fmt, names in (
        ("coco", ["coco_instances", "coco"]), ("cvat", ["cvat"]),
        ) if formats.get(fmt, {}).get("ok")]  # its YOLO reader takes detection boxes only (5 fields a line), not segmentation
    results["datumaro"] = run_reader(python, DATUMARO_READER, [json.dumps(wanted)]) if python else {"error": why}
    log(f"datumaro: {results['datumaro']}")
    if formats.get("yolo", {}).get("ok"):
        free = shutil.disk_usage(venvs).free
        if free < 12e9:
            results["ultralytics"] = {"error": f"not run: {free / 1e9:.0f} GB free, the CUDA build of torch 2.14.1 needs ~6 GB installed"}
        else:
            python, why = make_venv(venvs / "ultralytics", READER_PACKAGES["ultralytics"])
            if python:
                config = venvs / "ultralytics-config"
                config.mkdir(exist_ok=True)
                font = next(Path(p) for p in (venvs / "ultralytics").rglob("DejaVuSans.ttf"))
                shutil.copy(font, config / "Arial.ttf")  # check_det_dataset wants Arial.ttf and would download it
                env = {"YOLO_OFFLINE": "true", "YOLO_CONFIG_DIR": str(config), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
                results["ultralytics"] = run_reader(python, ULTRALYTICS_READER, [str(exports / "yolo" / "data.yaml")], env=env)
                if (exports / "yolo-train-only" / "data.yaml").exists():
                    results["ultralytics-train-only"] = run_reader(
                        python, ULTRALYTICS_READER, [str(exports / "yolo-train-only" / "data.yaml")], env=env)
            else:
                results["ultralytics"] = {"error": why}
        log(f"ultralytics: {results['ultralytics']}")
    return results


# --------------------------------------------------------------------------------------------------
# Orchestrator
# --------------------------------------------------------------------------------------------------

def scratch_instance(base: Path, name: str, template: Path | None) -> dict:
    var_dir = base / name
    var_dir.mkdir(parents=True)
    env = child_env(var_dir)
    if template is not None:
        shutil.copy(template, var_dir / "db.sqlite3")
    else:
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    return env


def child(phase: str, env: dict, out: Path, *extra: str) -> dict:
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--out", str(out), *extra],
                   cwd=ROOT, env=env, check=True)
    return json.loads(out.read_text())


def orchestrate(args) -> dict:
    if not (SHARED / "annotations.coco.json").exists():
        raise SystemExit(f"{SHARED} is missing: this bench needs the shared nails-cc0 set")
    scratch = Path(tempfile.mkdtemp(prefix="nailset-bench-interop-"))
    venvs = Path(args.venvs) if args.venvs else scratch / "venvs"
    venvs.mkdir(parents=True, exist_ok=True)
    try:
        exports = scratch / "exports"
        env = scratch_instance(scratch, "source", None)
        template = scratch / "empty.sqlite3"
        shutil.copy(scratch / "source" / "db.sqlite3", template)  # migrated and empty: every round trip starts here
        t0 = time.perf_counter()
        source = child("source", env, scratch / "source.json", "--exports", str(exports))
        log(f"source: {len(source['images'])} images imported and exported in {time.perf_counter() - t0:.0f} s")
        trips = {}
        for fmt, export in source["exports"].items():
            if not export["ok"]:
                continue
            env = scratch_instance(scratch, f"trip-{fmt}", template)
            result = child("reimport", env, scratch / f"trip-{fmt}.json", "--format", fmt, "--path", str(exports / fmt))
            if result["importer"]:
                result["comparison"] = compare([r for r in source["images"]], result["images"])
                del result["images"]
            trips[fmt] = result
            log(f"round trip {fmt}: {result.get('comparison', 'no importer')}")
        third_party = {} if args.skip_readers else readers(exports, source["exports"], venvs)
        return {"source": {k: v for k, v in source.items() if k != "images"}, "source_images": len(source["images"]),
                "source_nails": sum(len(r["geometry"]["nails"]) for r in source["images"]),
                "source_ignore": sum(len(r["geometry"].get("ignore", [])) for r in source["images"]),
                "trips": trips, "readers": third_party}
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def ratio(pair) -> str:
    return f"{pair[1]} / {pair[0]}"


def datumaro_counts(fmt: str, e: dict) -> str:
    kinds = ", ".join(f"{n} {k.lower()}" for k, n in e["annotations"].items()) or "no annotations"
    return f"{fmt} (`{e['importer']}`): {e['items']} items in {', '.join(e['subsets']) or 'no subset'}; {kinds}; {e['labels']} labels"


def render(data: dict, took: float) -> str:
    machine = machine_info()
    start, end = markers(SECTION)
    source = data["source"]
    commit = git_commit(("dataset", "curation", "labeling"), "dataset/, curation/ or labeling/", untracked=False) or "unknown"
    lines = [start, "## Interoperability: round trips and third-party readers (`bench/interop.py`)", "",
             f"Run {dt.date.today().isoformat()} at commit {commit} in {took / 60:.1f} min "
             f"({machine['nproc']} CPUs, {machine['cpu']}, Python {machine['python']}). Command: `.venv/bin/python bench/interop.py`.",
             "", "### Set-up", "",
             f"`../shared/data/nails-cc0` imported through `import_labels` (COCO + `participants.csv`): {data['source_images']} photos, "
             f"{data['source_nails']} nails, each given a finger and base / tip landmarks, {data['source_ignore']} ignore regions; "
             "snapshot `interop` (seed 0): " + ", ".join(f"{split} {v['images']} images / {v['participants']} participants"
                                                          for split, v in source["snapshot"]["splits"].items()) + ".",
             ]
    if source["snapshot"]["warnings"]:
        lines += ["Split warnings: " + "; ".join(source["snapshot"]["warnings"]) + "."]
    lines += ["", "### Round trips (export, then `import_labels` into a fresh instance with no participants CSV)", "",
              "| format | export | re-imported images | identical geometry | identical outlines + fingers | max vertex change (px) "
              "| nails | ignore regions | polygon IoU mean / min | fingers kept | landmarks kept | participants restored "
              "| names restored | notes |",
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for fmt, export in source["exports"].items():
        if not export["ok"]:
            lines.append(f"| {fmt} | failed: {export['error']} |" + " |" * 12)
            continue
        trip = data["trips"].get(fmt, {})
        head = f"| {fmt} | {export['files']} files, {export['bytes'] / 1e6:.1f} MB, {export['seconds']:.1f} s "
        if not trip.get("importer"):
            lines.append(head + "| no importer |" + " |" * 11)
            continue
        c, last = trip["comparison"], trip["attempts"][-1]
        notes = []
        if last.get("default_participant"):
            first = trip["attempts"][0]
            reason = (first.get("failed_files") or [{}])[0].get("reason", first.get("error", "?")).split("; ")[0].split(" (give")[0]
            notes.append(f"without a CSV nothing imported ({reason[:140]}); retried with `--participant {ROUND_TRIP_PARTICIPANT}`")
        if last.get("failed_files"):
            notes.append(f"{len(last['failed_files'])} files refused: {last['failed_files'][0]['reason'][:120]}")
        if last.get("error"):
            notes.append(last["error"][:160])
        other = [w for w in last.get("warnings") or [] if "same finger as" not in w]  # the source's own (see below)
        if other:
            notes.append(f"{len(other)} warnings, e.g. {other[0][:100]}")
        if c["unmatched"]:
            notes.append(f"{c['unmatched']} images matched no source photo")
        iou = "-" if c["iou_mean"] is None else f"{c['iou_mean']:.4f} / {c['iou_min']:.4f}"
        change = "-" if c["max_coordinate_change"] is None else f"{c['max_coordinate_change']:.2g}"
        lines.append(head + f"| {c['matched']} / {data['source_images']} | {c['identical']} / {c['matched']} "
                     f"| {c['outlines_identical']} / {c['matched']} | {change} | {ratio(c['nails'])} | {ratio(c['ignore'])} | {iou} | {ratio(c['fingers_kept'])} | {ratio(c['landmarks_kept'])} "
                     f"| {c['participants_restored']} / {c['matched']} | {c['names_restored']} / {c['matched']} | {'; '.join(notes) or '-'} |")
    lines += ["", "Identical geometry: every nail (finger, polygon, base, tip) and ignore region equal to the source, exactly; "
              "identical outlines + fingers: the same without landmarks and ignore regions (what YOLO can carry). "
              "Max vertex change: the largest coordinate difference between a source nail and its best-IoU copy. "
              "Images are matched by perceptual hash (intake re-encodes each picture, so bytes and sha256 differ). "
              "Warnings that photos with more than five nails repeat a finger (the bench numbers fingers left to right, "
              "cyclically) come back on every re-import and are left out of the notes.", ""]
    readers = data["readers"]
    lines += ["### Third-party readers (each in its own virtual environment, made with pip)", ""]
    if not readers:
        lines += ["Not run (`--skip-readers`).", ""]
    coco = readers.get("pycocotools")
    if coco:
        if "error" in coco:
            lines += [f"- **pycocotools**: could not run: {coco['error']}"]
        else:
            parts = [f"{name}: {e['images']} images, {e['annotations']} annotations ({e['crowd']} crowd, {e['keypoints']} keypoints), "
                     f"AP segm {e.get('AP_segm', float('nan')):.3f}, bbox {e.get('AP_bbox', float('nan')):.3f}, "
                     f"keypoints {e.get('AP_keypoints', float('nan')):.3f}"
                     for name, e in coco["files"].items()]
            lines += [f"- **pycocotools {coco['version']}** (`COCO` + `COCOeval` of the export against itself): " + "; ".join(parts) + "."]
    datumaro = readers.get("datumaro")
    if datumaro:
        if "formats" not in datumaro:
            lines += [f"- **Datumaro**: could not run: {datumaro['error']}"]
        else:
            parts = []
            for fmt, e in datumaro["formats"].items():
                if "error" in e:
                    parts.append(f"{fmt}: refused ({e['error']})")
                else:
                    parts.append(datumaro_counts(fmt, e))
                    if "without_image_subset_attributes" in e:
                        parts[-1] += (" (it keeps only the `<image>`s whose `subset` attribute names the file's own subset; "
                                      "a copy without those attributes: " + datumaro_counts(fmt, e["without_image_subset_attributes"]) + ")")
            lines += [f"- **Datumaro {datumaro['version']}** (`Dataset.import_from`): " + "; ".join(parts) + ". "
                      "Its YOLO reader takes detection boxes only (5 fields a line), not YOLO segmentation: not tried."]
    for key, what in (("ultralytics", "the YOLO export"), ("ultralytics-train-only", "a YOLO export of a train-only snapshot "
                                                                               "(every participant pinned to train; val and test empty)")):
        ultra = readers.get(key)
        if not ultra:
            continue
        if "error" in ultra:
            lines += [f"- **Ultralytics** on {what}: failed: {ultra['error']}"]
        else:
            parts = [f"{split} {ultra[split]['images']} images / {ultra[split]['segments']} segments"
                     for split in ("train", "val", "test") if split in ultra]
            splits = ", ".join(f"{k} -> {Path(v).name}" for k, v in ultra["splits"].items())
            lines += [f"- **Ultralytics {ultra['version']}** on {what} (`check_det_dataset` on `data.yaml`, then `YOLODataset` "
                      f"reads every label): accepted, nc {ultra['nc']}, {splits}; " + ", ".join(parts) + "."]
    lines += ["", end, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phase", choices=("source", "reimport"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--exports", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--no-docs", action="store_true", help="print only; do not touch docs/benchmarks.md")
    parser.add_argument("--skip-readers", action="store_true", help="no third-party readers (no pip installs)")
    parser.add_argument("--venvs", help="keep the readers' virtual environments here and reuse them (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch instances and exports")
    args = parser.parse_args()
    if args.phase == "source":
        return phase_source(args)
    if args.phase == "reimport":
        return phase_reimport(args)
    t0 = time.perf_counter()
    data = orchestrate(args)
    section = render(data, time.perf_counter() - t0)
    print(section)
    if not args.no_docs:
        write_section(SECTION, section)
        log("docs/benchmarks.md updated")


if __name__ == "__main__":
    main()
