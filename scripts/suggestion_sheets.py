"""Sheets for confirming finger and base/tip labels by eye (issue #16): one PNG per shared photo.

    python scripts/suggestion_sheets.py --out DIR [--data ../shared/data/nails-cc0] [--labels FILE]
                                        [--only NAME ...]

Runs :func:`ml.label_suggestions.suggest_labels` on every photo of ``--data`` (its ``images/`` and the
polygons of its ``annotations.coco.json``) and draws, on the photo scaled so its long side is ~1000 px:
each polygon outlined in its digit's colour (thumb red, index blue, middle green, ring purple, little
orange, unknown grey; the name says the hand), its index number, the suggested finger ("R index"), an arrow base -> tip and the confidence
("83 % / dir 95 %"). Writes ``DIR/<photo stem>.png`` and ``DIR/suggestions.json``
(``{file_name: {nail index: {finger, name, base, tip, confidence, direction_confidence, reasons}}}``).
``--labels FILE`` draws the confirmed labels of a COCO file (finger categories + base/tip keypoints, as
``bench/complete_labels.py`` reads them) instead, in the same look (no confidence).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from bench.complete_labels import SHARED, load_labels, read_photo  # noqa: E402
from ml.label_suggestions import hand_and_digit, short_name, suggest_labels  # noqa: E402

LONG_SIDE = 1000
DIGIT_COLOURS = {1: (230, 40, 40), 2: (40, 120, 255), 3: (40, 200, 70), 4: (190, 70, 230), 5: (255, 150, 0)}
UNKNOWN_COLOUR = (170, 170, 170)


def _text(image, text, org, scale, colour):
    """Large text with a dark outline, legible on any photo (kept inside the image)."""
    x, y = int(org[0]), int(org[1])
    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    x = min(max(2, x), image.shape[1] - w - 2)
    y = min(max(h + 2, y), image.shape[0] - 4)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 6, cv2.LINE_AA)
    cv2.putText(image, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 2, cv2.LINE_AA)


def _place(sheet, poly, placed, label, conf) -> tuple[float, float]:
    """Top-left corner for a nail's label box: above, below, left or right of the nail (or further out),
    the first spot that overlaps no label placed so far; the box is added to ``placed``."""
    w = max(cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, sc, 2)[0][0] for t, sc in ((label, 0.75), (conf or "", 0.55)))
    h = 50 if conf else 28
    x0, y0 = poly.min(axis=0)
    x1, y1 = poly.max(axis=0)
    cx = (x0 + x1) / 2 - w / 2
    spots = []
    for step in range(4):
        far = step * (h + 4)
        spots += [(cx, y0 - h - 4 - far), (cx, y1 + 4 + far), (x0 - w - 6 - far, (y0 + y1) / 2 - h / 2),
                  (x1 + 6 + far, (y0 + y1) / 2 - h / 2)]
    height, width = sheet.shape[:2]
    for x, y in spots:
        x, y = min(max(2, x), width - w - 2), min(max(2, y), height - h - 2)
        if all(x + w < a or a + c < x or y + h < b or b + d < y for a, b, c, d in placed):
            break
    else:
        x, y = min(max(2, spots[0][0]), width - w - 2), min(max(2, spots[0][1]), height - h - 2)
    placed.append((x, y, w, h))
    return x, y


def draw_sheet(image: np.ndarray, nails: list[dict], title: str) -> np.ndarray:
    """The photo (RGB) scaled to ~LONG_SIDE px with every nail drawn. ``nails``: dicts with polygon,
    finger, base, tip and optional confidence / direction_confidence."""
    height, width = image.shape[:2]
    scale = LONG_SIDE / max(height, width)
    sheet = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
                       if scale < 1 else cv2.INTER_CUBIC)
    sheet = (sheet.astype(np.float32) * 0.8).astype(np.uint8)  # dim the photo a little: labels stand out
    placed: list[tuple[float, float, float, float]] = []
    for k, nail in enumerate(nails):
        poly = np.asarray(nail["polygon"], np.float64) * scale
        finger = nail.get("finger")
        colour = DIGIT_COLOURS[hand_and_digit(finger)[1]] if finger else UNKNOWN_COLOUR
        cv2.polylines(sheet, [np.round(poly).astype(np.int32)], True, colour, 2, cv2.LINE_AA)
        if nail.get("base") is not None and nail.get("tip") is not None:
            base = np.asarray(nail["base"], np.float64) * scale
            tip = np.asarray(nail["tip"], np.float64) * scale
            length = max(np.linalg.norm(tip - base), 1.0)
            cv2.arrowedLine(sheet, tuple(np.round(base).astype(int)), tuple(np.round(tip).astype(int)), (0, 0, 0),
                            5, cv2.LINE_AA, tipLength=min(0.5, 14 / length))
            cv2.arrowedLine(sheet, tuple(np.round(base).astype(int)), tuple(np.round(tip).astype(int)), (255, 255, 255),
                            2, cv2.LINE_AA, tipLength=min(0.5, 14 / length))
        label = f"{k} {short_name(finger)}"
        conf = None
        if nail.get("confidence") is not None:
            conf = f"{100 * nail['confidence']:.0f}% / dir {100 * nail['direction_confidence']:.0f}%"
        x, y = _place(sheet, poly, placed, label, conf)
        _text(sheet, label, (x, y + 22), 0.75, colour)
        if conf:
            _text(sheet, conf, (x, y + 44), 0.55, (255, 255, 255))
    _text(sheet, title, (10, 30), 0.7, (255, 255, 255))
    return sheet


def shared_polygons(data_dir) -> dict[str, list[dict]]:
    """The shared photos' polygons (no finger, no landmarks) from annotations.coco.json."""
    return load_labels(Path(data_dir) / "annotations.coco.json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for the PNGs and suggestions.json")
    parser.add_argument("--data", default=str(SHARED), help="folder with images/ and annotations.coco.json")
    parser.add_argument("--labels", help="draw the confirmed labels of this COCO file instead of suggestions")
    parser.add_argument("--only", nargs="*", help="only the photos whose file names start with these")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data)
    images = load_labels(args.labels) if args.labels else shared_polygons(data)
    wanted = set(args.only or [])
    results = {}
    for file_name, nails in sorted(images.items()):
        if wanted and not any(file_name.lower().startswith(w.lower()) for w in wanted):
            continue
        photo = read_photo(data / "images" / file_name)
        if photo is None:
            print(f"missing photo {file_name}", file=sys.stderr)
            continue
        if args.labels:
            drawn = nails
            title = f"{file_name} (confirmed labels)"
        else:
            suggestions = suggest_labels([n["polygon"] for n in nails], photo)
            drawn = [dict(polygon=n["polygon"], **s.to_dict()) for n, s in zip(nails, suggestions)]
            results[file_name] = {str(k): {"finger": s.finger, "name": short_name(s.finger),
                                           **{key: v for key, v in s.to_dict().items() if key != "finger"}}
                                  for k, s in enumerate(suggestions)}
            title = f"{file_name} (suggestions)"
        sheet = draw_sheet(photo, drawn, title)
        cv2.imwrite(str(out / f"{Path(file_name).stem}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not args.labels:
        (out / "suggestions.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"{len(results) if not args.labels else len(images)} sheets in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
