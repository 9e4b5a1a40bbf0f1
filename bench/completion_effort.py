#!/usr/bin/env python
"""Completing polygon-only labels in the browser (issue #16): actions and seconds per nail, with and without the
label suggestions.

    .venv/bin/python bench/completion_effort.py [--all] [--model CHECKPOINT] [--work DIR] [--no-docs]

The photos (the held-out participants' by default, ``--all``: every shared photo) come in with their nails'
polygons only, as an import of polygon-only labels does (status ``draft``); the simulated annotator of
``bench/annotation_effort.py`` (its ``Annotator``, in headless Chromium against a scratch instance) then
gives every nail its finger and base/tip in the real tool until they match the answer (the project's
confirmed labels: finger equal, base and tip within ``LANDMARK_TOL`` of the nail's base-tip length), in
each mode on its own copy of the photos:

* **without suggestions**: select the nail (a click), its finger (1 click in the two-hands panel), base/tip
  (one Shift+drag from the base to the tip, the tool's arrow stroke; before 2026-12-06 noon the mouse on the
  base and ``B``, on the tip and ``T``): the ghosts are ignored;
* **with suggestions**: select the nail; ``G`` when its suggested finger or its suggested base/tip is right,
  then the rule above for what is still wrong (``Annotator.labels``);
* **with suggestions + model votes** (``--model``): the same, with the checkpoint active, so the suggestions
  weigh its per-nail votes (``ml.nail_votes``; train it on the tuning participants only, e.g.
  ``bench/annotation_effort.py --train-only``).

Actions: every click and key press (selecting counts); seconds: the tool's and server's latency only (the
annotator does not think), per nail. Checked through the API after the autosave, as the effort bench does.
Writes ``docs/results/completion_effort.json`` and the ``completion_effort`` section of ``docs/benchmarks.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.annotation_effort import (LANDMARK_TOL, VIEWPORT, Annotator, activate_model, add_photos,  # noqa: E402
                                     checked, load_answers, login, match, open_photo, pole, start_instance)
from bench.benchdoc import git_commit, log, machine_info, markers, measured_line, write_section  # noqa: E402

SECTION = "completion_effort"
RESULTS = ROOT / "docs" / "results" / "completion_effort.json"
MODES = ("without", "with", "with+model")
TITLES = {"without": "without suggestions", "with": "with suggestions",
          "with+model": "with suggestions + model votes"}


def add_outlines(mode: str, photos: list, answers: list[list[dict]]) -> list[int]:
    """The photos stored for this mode, each with its nails' polygons only (an imported draft)."""
    from labeling.annotations import import_annotation
    from labeling.models import Image

    ids = add_photos(f"complete-{mode}", photos)
    for image_id, nails in zip(ids, answers):
        import_annotation(Image.objects.get(pk=image_id), {"nails": [{"polygon": n["polygon"]} for n in nails]},
                          status="draft", note="polygons only")
    return ids


def complete_photo(page, base_url: str, image_id: int, answers: list[dict], mode: str) -> list[dict]:
    """Give every nail of one photo its finger and base/tip in ``mode``; one record per answer nail."""
    open_photo(page, base_url, image_id)
    bot = Annotator(page)
    nails = bot.nails()
    page.wait_for_function("n => annotator.suggestions.byId.size + annotator.suggestions.byIndex.size >= n",
                           arg=len(nails), timeout=30_000)  # the ghosts are in
    by_answer = {i: nails[j]["id"] for i, (j, _) in match([n["polygon"] for n in nails], answers).items()}
    records = [{"actions": 0, "seconds": 0.0} for _ in answers]
    for i in sorted(range(len(answers)), key=lambda k: pole(answers[k]["polygon"])[0]):  # left to right
        before, busy = bot.actions, bot.busy
        nail_id = by_answer[i]
        bot.select(nail_id)
        if mode == "without":
            bot.pick_finger(answers[i]["finger"])
            bot.set_landmarks(answers[i])
        else:
            bot.labels(nail_id, answers[i])
        records[i]["actions"] += bot.actions - before
        records[i]["seconds"] += bot.busy - busy
    return checked(page, base_url, image_id, answers, records)


def summarize(records: list[dict]) -> dict:
    out = {}
    for mode in MODES:
        mine = [r for r in records if r["mode"] == mode]
        if not mine:
            continue
        done = [r for r in mine if r["finished"]]
        photos: dict[str, list] = {}
        for r in mine:
            photos.setdefault(r["photo"], []).append(r)
        out[mode] = {"nails": len(mine), "finished": len(done), "photos": len(photos),
                     "actions_median": statistics.median(r["actions"] for r in done) if done else None,
                     "actions_mean": round(statistics.fmean(r["actions"] for r in done), 2) if done else None,
                     "actions_per_photo_median": statistics.median(sum(r["actions"] for r in rs) for rs in photos.values()),
                     "seconds_per_photo_median": round(statistics.median(sum(r["seconds"] for r in rs)
                                                                         for rs in photos.values()), 3)}
    base = out.get("without", {}).get("actions_mean")
    for row in out.values():
        row["ratio_to_without"] = round(base / row["actions_mean"], 2) if base and row["actions_mean"] else None
    return out


def section(report: dict) -> str:
    start, end = markers(SECTION)
    lines = [start, "## Completing polygon-only labels in the browser (`bench/completion_effort.py`, issue #16)", "",
             f"{measured_line(report)} Photos: {report['photos']}, each imported with "
             "its nails' polygons only; the simulated annotator of `bench/annotation_effort.py` gives every nail its "
             "finger and base/tip in the real tool (headless Chromium) until they match the project's confirmed "
             f"labels (finger equal, base and tip within {LANDMARK_TOL:.0%} of the nail's base-tip length). Without "
             "suggestions: select, finger (1 click), one Shift+drag from the base to the tip (since 2026-12-06 noon; "
             "B + T with the mouse on the base and the tip before). "
             "With: select, G when the suggested finger or "
             "base/tip is right, then the same for what is still wrong. Every click and key counts; seconds are the "
             "tool's and server's latency only.", "",
             "| mode | photos | nails | finished | actions per nail (median) | mean | actions per photo (median) | "
             "without / mode (mean) | seconds per photo (median) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for mode, row in report["summary"].items():
        lines.append(f"| {TITLES[mode]} | {row['photos']} | {row['nails']} | {row['finished']} | {row['actions_median']} | "
                     f"{row['actions_mean']} | {row['actions_per_photo_median']} | {row['ratio_to_without']} | "
                     f"{row['seconds_per_photo_median']} |")
    if report.get("model"):
        lines += ["", f"Model votes: `{report['model']}` active (the suggestions weigh its per-nail votes; trained on the "
                      "tuning participants' photos only, as in the `complete_labels` section's model-vote rows)."]
    lines += ["", "The floor with suggestions is 2 actions a nail (select, G) when both the finger and the base/tip are "
              "right; a wrong finger adds 1 click, a wrong base/tip 1 action (X when the arrow points the wrong way, "
              "Shift+T when aiming at the tip is enough, a Shift+drag from base to tip when both ends are off, else B "
              "or T; the suggestions' accuracy: the "
              "`complete_labels` section). Per nail: `docs/results/completion_effort.json`.", end, ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="every shared photo (default: the held-out participants')")
    parser.add_argument("--model", default=None, help="a checkpoint: adds the mode 'with+model'")
    parser.add_argument("--photos", type=int, default=0, help="only the first N photos (0: all)")
    parser.add_argument("--work", default=None, help="folder for the scratch instance")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args(argv)
    started = time.monotonic()
    items = [it for it in load_answers() if it["held_out"] or args.all][: args.photos or None]
    items = [it for it in items if it["nails"]]
    photos, answers = [it["path"] for it in items], [it["nails"] for it in items]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="completion-effort-"))
    instance = work / f"instance-{int(time.time())}"
    instance.mkdir(parents=True)
    base_url = start_instance(instance)
    from playwright.sync_api import sync_playwright

    records = []
    modes = [m for m in MODES if m != "with+model" or args.model]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"])
        for mode in modes:
            if mode == "with+model":
                activate_model(Path(args.model))
            ids = add_outlines(mode, photos, answers)
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            login(page, base_url)
            for image_id, item, nails in zip(ids, items, answers):
                for k, record in enumerate(complete_photo(page, base_url, image_id, nails, mode)):
                    records.append({"mode": mode, "photo": item["file_name"], "nail": k, **record})
                log(f"{mode}: {item['file_name']} {sum(r['actions'] for r in records[-len(nails):])} actions")
            context.close()
        browser.close()
    report = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "wall_s": time.monotonic() - started,
              "command": "python bench/completion_effort.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "machine": {**machine_info(), "commit": git_commit() or "?"},
              "photos": "every shared photo" if args.all else "the held-out participants'",
              "model": args.model, "summary": summarize(records), "nails": records}
    print(json.dumps(report["summary"], indent=1))
    if not args.no_docs:
        RESULTS.write_text(json.dumps(report, indent=1) + "\n")
        write_section(SECTION, section(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
