"""Label names: the names exporters write (FINGER_LABELS), the label map importers read them with
(DEFAULT_LABEL_MAP, prepare_label_map, resolve_label), ignore labels and landmark (base / tip) labels.

Plain Python; this package must never import Django.
"""
from __future__ import annotations

import re

from dataset.geometry import FINGER_NAMES

from .errors import FormatError

# Label names used by every exporter: finger k -> "left_thumb" ... "right_little"; unknown -> "nail".
FINGER_LABELS: dict[int, str] = {k: name.replace(" ", "_") for k, name in FINGER_NAMES.items()}
UNKNOWN_LABEL = "nail"


def normalize_label(label) -> str:
    """Case-insensitive, with runs of spaces, underscores and hyphens as one '_': 'Left Thumb' -> 'left_thumb'."""
    return re.sub(r"[\s_\-]+", "_", str(label).strip().lower()).strip("_")


def _default_label_map() -> dict[str, int | None]:
    table: dict[str, int | None] = {}
    for alias in ("nail", "nails", "fingernail", "finger_nail", "nail_unknown", "unknown_nail",
                  "nail_finger_unknown", "nail_(finger_unknown)", "unknown"):
        table[alias] = None
    hands = {0: ("left", "l", "lh", "left_hand"), 5: ("right", "r", "rh", "right_hand")}
    fingers = {1: ("thumb",), 2: ("index", "pointer", "forefinger"), 3: ("middle",), 4: ("ring",),
               5: ("little", "pinky", "pinkie")}
    for offset, hand_aliases in hands.items():
        for number, finger_aliases in fingers.items():
            cls = offset + number
            for hand in hand_aliases:
                table[f"{hand}{number}"] = cls                 # L1, left1
                table[f"{hand}_{number}"] = cls                # l_1, left_1
                for name in finger_aliases:
                    for key in (f"{hand}_{name}", f"{name}_{hand}", f"{hand}_{name}_nail", f"{hand}_{name}_finger"):
                        table[key] = cls
            table[f"finger_{cls}"] = cls
    return table


DEFAULT_LABEL_MAP: dict[str, int | None] = _default_label_map()
IGNORE_LABELS = frozenset({"ignore", "ignored", "ignore_region", "crowd", "dont_care", "dontcare", "do_not_care"})
LANDMARK_LABELS = {"base": "base", "nail_base": "base", "base_point": "base",
                   "tip": "tip", "nail_tip": "tip", "tip_point": "tip"}


def prepare_label_map(label_map: dict | None) -> dict[str, int | None]:
    """Check a label map and normalise its keys (None -> DEFAULT_LABEL_MAP). It replaces the default."""
    if label_map is None:
        return dict(DEFAULT_LABEL_MAP)
    if not isinstance(label_map, dict):
        raise FormatError("label_map must be a dict of label -> finger class (1..10) or None")
    out = {}
    for key, value in label_map.items():
        if value is not None and (type(value) is not int or value not in FINGER_NAMES):
            raise FormatError(f"label_map[{key!r}] must be a finger class 1..10 or None, got {value!r}")
        out[normalize_label(key)] = value
    return out


NAIL, IGNORE, UNKNOWN = "nail", "ignore", "unknown"


def resolve_label(label, label_map: dict) -> tuple[str, int | None]:
    """(NAIL, finger) | (IGNORE, None) | (UNKNOWN, None) for a shape's label (label_map: prepared)."""
    key = normalize_label(label)
    if key in label_map:
        return NAIL, label_map[key]
    if key in IGNORE_LABELS:
        return IGNORE, None
    return UNKNOWN, None


def landmark_of(label, label_map: dict) -> tuple[str, str | None] | None:
    """('base'|'tip', owner) for a landmark label, owner = the normalised nail label of
    '<label>_base' / '<label>_tip' (or None: any nail); None when not a landmark label."""
    key = normalize_label(label)
    if key in LANDMARK_LABELS:
        return LANDMARK_LABELS[key], None
    for kind in ("base", "tip"):
        if key.endswith("_" + kind) and key[:-len(kind) - 1] in label_map:
            return kind, key[:-len(kind) - 1]
    return None
