"""The paper's ablation (Table 1): baseline (weighted NLL, no cascade), + Loss Max-Pooling, + cascade.

Each row is a set of :func:`ml.train.train_config` overrides applied to the same preset, so every row
gets the same budget (epochs, steps, batch, crops, schedule, seed). ``EXTRA_ROWS`` are the comparisons the
model issue asks for beside the paper's rows: a U-Net on the same MobileNetV2 encoder (what a user would
pick instead) and the narrower fusion widths (what they cost in accuracy). Plain Python; no Django.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["ABLATION_ROWS", "EXTRA_ROWS", "PAPER_VAL_MIOU", "ablation_row", "ablation_table", "row_overrides"]

#: (row, what changes from the preset): the paper's Table 1 rows, in its order.
#: The rows name their boundary refinement (``refine_stride``) so that they mean the same model whatever the
#: preset's default.
ABLATION_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("baseline (weighted NLL, no cascade)", {"model": {"arch": "baseline", "refine_stride": 0},
                                             "loss": {"fg_loss": "weighted"}}),
    ("+ LMP", {"model": {"arch": "baseline", "refine_stride": 0}, "loss": {"fg_loss": "lmp"}}),
    ("+ cascade", {"model": {"arch": "cascade", "refine_stride": 0}, "loss": {"fg_loss": "lmp"}}),
]
#: Comparisons beyond the paper's table, trained with the same budget and loss as "+ cascade".
EXTRA_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("+ cascade, fusion 256", {"model": {"arch": "cascade", "fusion_width": 256, "refine_stride": 0},
                               "loss": {"fg_loss": "lmp"}}),
    ("+ cascade, fusion 128", {"model": {"arch": "cascade", "fusion_width": 128, "refine_stride": 0},
                               "loss": {"fg_loss": "lmp"}}),
    ("+ cascade, low branch at full resolution, fusion 128",
     {"model": {"arch": "cascade", "fusion_width": 128, "refine_stride": 0, "low_downsample": 1},
      "loss": {"fg_loss": "lmp"}}),
    ("+ cascade, one shared encoder, fusion 128",
     {"model": {"arch": "cascade", "fusion_width": 128, "refine_stride": 0, "low_downsample": 1,
                "shared_encoder": True}, "loss": {"fg_loss": "lmp"}}),
    ("+ cascade, one shared encoder, fusion 128, refined to stride 4",
     {"model": {"arch": "cascade", "fusion_width": 128, "refine_stride": 4, "low_downsample": 1,
                "shared_encoder": True}, "loss": {"fg_loss": "lmp"}}),
    ("+ cascade, refined to stride 4", {"model": {"arch": "cascade", "refine_stride": 4}, "loss": {"fg_loss": "lmp"}}),
    ("+ cascade, refined to stride 2", {"model": {"arch": "cascade", "refine_stride": 2}, "loss": {"fg_loss": "lmp"}}),
    ("U-Net (MobileNetV2 encoder), LMP", {"model": {"arch": "unet", "refine_stride": 0}, "loss": {"fg_loss": "lmp"}}),
]
#: The paper's validation binary mIoU (%) for its rows (Table 1).
PAPER_VAL_MIOU = {"baseline (weighted NLL, no cascade)": 91.3, "+ LMP": 93.3, "+ cascade": 94.5}


def ablation_row(label: str) -> dict[str, Any]:
    """The overrides of the row called ``label`` (a paper row or an extra row)."""
    for name, overrides in ABLATION_ROWS + EXTRA_ROWS:
        if name == label:
            return overrides
    raise KeyError(f"unknown ablation row {label!r}")


def row_overrides(label: str, *, pretrained: str | None | bool = True) -> dict[str, Any]:
    """The row's overrides with the encoder initialisation set: ``True`` keeps the preset's pretrained
    source, ``None``/``False`` is random init, a string names a weight source."""
    overrides = {key: dict(value) for key, value in ablation_row(label).items()}
    if pretrained is not True:
        overrides["model"]["pretrained"] = pretrained or None
    return overrides


def _pct(value: float | None) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def ablation_table(results: Sequence[Mapping[str, Any]], *, test: bool = False) -> str:
    """A markdown table of ablation results. Each result: ``{"row", "init", "val": {"miou", "nail_iou"},
    optional "test": {...}, "best_epoch", "epochs", "seconds"}`` (``ml.train.train``'s best metrics).
    Results averaged over seeds may carry ``"val_per_seed"`` (each seed's val mIoU): a column shows them."""
    per_seed = any(len(r.get("val_per_seed") or ()) > 1 for r in results)
    head = ["model", "init", "val binary mIoU", "val nail IoU"]
    if per_seed:
        head += ["val mIoU per seed"]
    if test:
        head += ["test binary mIoU", "test nail IoU"]
    head += ["best epoch / epochs", "train time (s)", "paper (val mIoU)"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for result in results:
        val = result.get("val") or {}
        cells = [result["row"], result.get("init", ""), _pct(val.get("miou")), _pct(val.get("nail_iou"))]
        if per_seed:
            cells.append(" / ".join(_pct(v) for v in result.get("val_per_seed") or [val.get("miou")]))
        if test:
            held_out = result.get("test") or {}
            cells += [_pct(held_out.get("miou")), _pct(held_out.get("nail_iou"))]
        cells += [f"{result.get('best_epoch', '?')} / {result.get('epochs', '?')}",
                  f"{result.get('seconds', float('nan')):.0f}", str(PAPER_VAL_MIOU.get(result["row"], "-"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
