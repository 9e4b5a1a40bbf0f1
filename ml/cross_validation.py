"""Participant-grouped k-fold cross-validation of a training config on a masks export (issue #17).

Plain Python + PyTorch; never imports Django. With 40 photos of 28 people a single 8-photo val split moves a
score by points from one photo to the next, so a model is judged here on every photo once, by folds of
participants (no person's photos on both sides), and reported as the mean and standard deviation over folds::

    from ml.cross_validation import participant_folds, run_fold, summarize
    folds = participant_folds(read_masks_manifest("export/")["images"], k=4, seed=0)
    fold_result = run_fold("export/", folds[0], train_config("web-336", epochs=10), "runs/f0")
    summarize([fold_result, ...], "last")      # {"miou": {"mean", "sd", "folds"}, ...}

* :func:`participant_folds`: every participant's photos in exactly one test fold, the folds balanced by photo
  count (largest participant first, into the fold with the fewest photos), deterministic for a seed; per
  fold an inner train / val split of the remaining participants (the smallest of ``k`` inner groups is the
  inner val) for selection on the fold's own data. :func:`check_folds` rejects a wrong grouping.
* :func:`fold_view`: the export seen with the fold's splits (a new ``manifest.json``, the data linked), so
  :func:`ml.train.train` trains on it unchanged.
* :func:`run_fold`: trains one config on one fold and scores the held-out participants at full resolution
  (:class:`ml.evaluate.FullResScorer`: each photo run at the config's input size, ``TrainConfig.eval_size``, the
  size the platform predicts at, or with ``max_side`` at its own size capped there; scored at the photo's own
  size) after every epoch, so every checkpoint-selection strategy is judged on the same training run:

  - ``last``: the fixed schedule's last epoch;
  - ``ema``: an exponential moving average of the weights at the end of each epoch (decay ``ema_decay``,
    batch-norm statistics averaged alike), scored once after training;
  - ``best-inner-val``: the epoch with the best binary mIoU on the fold's inner val participants (what
    ``ml.train`` keeps as ``best.pt``).

  Beside them the ``oracle`` epoch (the best held-out score, which no honest strategy can know) measures how
  far each strategy is from the best epoch it could have picked. With ``best-inner-val`` among the
  strategies the inner val photos are held out of training for all of them (one shared trajectory); without
  it every strategy trains on all the fold's training photos.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dataset.formats.masks import read_masks_manifest
from ml.ablation import ABLATION_ROWS, EXTRA_ROWS
from ml.evaluate import FullResScorer, pooled_scores
from ml.models.registry import build_model
from ml.train import TrainConfig, train
from ml.tta import check_tta, with_tta

__all__ = ["ROW_ALIASES", "SELECTIONS", "Fold", "WeightAverage", "check_folds", "fold_view",
           "participant_folds", "row_label", "run_fold", "select_epoch", "summarize"]

#: Checkpoint-selection strategies, in the order tables show them.
SELECTIONS = ("last", "ema", "best-inner-val")
#: Short names of the ablation rows (``ml.ablation``) for command lines.
ROW_ALIASES = {
    "baseline": "baseline (weighted NLL, no cascade)",
    "lmp": "+ LMP",
    "cascade": "+ cascade",
    "cascade-f256": "+ cascade, fusion 256",
    "cascade-f128": "+ cascade, fusion 128",
    "cascade-low1-f128": "+ cascade, low branch at full resolution, fusion 128",
    "cascade-shared-f128": "+ cascade, one shared encoder, fusion 128",
    "cascade-shared-f128-refined": "+ cascade, one shared encoder, fusion 128, refined to stride 4",
    "cascade-refined": "+ cascade, refined to stride 4",
    "cascade-refined-s2": "+ cascade, refined to stride 2",
    "unet": "U-Net (MobileNetV2 encoder), LMP",
}


def row_label(name: str) -> str:
    """The ``ml.ablation`` row called ``name``: a short name of :data:`ROW_ALIASES` or a row's full label."""
    label = ROW_ALIASES.get(name, name)
    if label not in {row for row, _ in ABLATION_ROWS + EXTRA_ROWS}:
        raise KeyError(f"unknown row {name!r}; short names: {', '.join(ROW_ALIASES)}")
    return label


# ----------------------------------------------------------------------------------------------------
# Folds
# ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fold:
    """One fold: the held-out photos (``test``, by file name) and the rest (``train``), the latter split again
    into ``inner_train`` / ``inner_val`` by participant."""

    index: int
    test: tuple[str, ...]
    train: tuple[str, ...]
    inner_train: tuple[str, ...]
    inner_val: tuple[str, ...]
    test_participants: tuple[str, ...]
    inner_val_participants: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}


def _pairs(items: Iterable[Mapping[str, Any] | tuple[str, str]]) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, participant = ((item["file_name"], item["participant"]) if isinstance(item, Mapping) else item)
        if not participant:
            raise ValueError(f"{key}: no participant")
        pairs.append((str(key), str(participant)))
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("an image appears twice")
    return pairs


def _groups(pairs: Sequence[tuple[str, str]], k: int, seed: Sequence[int] | int) -> list[list[str]]:
    """Participants dealt into ``k`` groups balanced by image count: largest first (ties in a seeded random
    order), each into the group with the fewest images (then the fewest participants, then the lowest index)."""
    counts: dict[str, int] = {}
    for _, participant in pairs:
        counts[participant] = counts.get(participant, 0) + 1
    if len(counts) < k:
        raise ValueError(f"{len(counts)} participants cannot fill {k} folds")
    shuffled = [sorted(counts)[i] for i in np.random.default_rng(seed).permutation(len(counts))]
    order = sorted(shuffled, key=lambda p: -counts[p])  # stable: the seeded order breaks ties
    groups: list[list[str]] = [[] for _ in range(k)]
    sizes = [0] * k
    for participant in order:
        target = min(range(k), key=lambda g: (sizes[g], len(groups[g]), g))
        groups[target].append(participant)
        sizes[target] += counts[participant]
    return groups


def participant_folds(items: Iterable[Mapping[str, Any] | tuple[str, str]], k: int = 5, seed: int = 0,
                      inner_k: int | None = None) -> list[Fold]:
    """``k`` folds of ``items`` (manifest entries with ``file_name`` and ``participant``, or ``(file_name,
    participant)`` pairs): each participant in exactly one test fold, folds balanced by image count. Each fold's
    inner val is the smallest of ``inner_k`` (default ``k``) balanced groups of its training participants."""
    if k < 2:
        raise ValueError("cross-validation needs at least 2 folds")
    pairs = _pairs(items)
    participant_of = dict(pairs)
    folds = []
    for index, held_out in enumerate(_groups(pairs, k, seed)):
        out = set(held_out)
        test = tuple(key for key, p in pairs if p in out)
        rest = [(key, p) for key, p in pairs if p not in out]
        inner_groups = _groups(rest, inner_k or k, [seed, index])
        sizes = [sum(1 for _, p in rest if p in set(group)) for group in inner_groups]
        inner = set(inner_groups[sizes.index(min(sizes))])
        folds.append(Fold(index=index, test=test, train=tuple(key for key, _ in rest),
                          inner_train=tuple(key for key, p in rest if p not in inner),
                          inner_val=tuple(key for key, p in rest if p in inner),
                          test_participants=tuple(sorted(out)), inner_val_participants=tuple(sorted(inner))))
    check_folds(folds, participant_of)
    return folds


def check_folds(folds: Sequence[Fold], participant_of: Mapping[str, str]) -> None:
    """ValueError unless the folds' test sets cover every image of ``participant_of`` exactly once, no
    participant has photos in two test folds or on both sides of a fold, and each fold's inner split
    partitions its training photos by participant."""
    seen: dict[str, int] = {}
    owner: dict[str, int] = {}
    for fold in folds:
        for key in fold.test:
            if key in seen:
                raise ValueError(f"{key} is held out in folds {seen[key]} and {fold.index}")
            seen[key] = fold.index
            participant = participant_of[key]
            if owner.setdefault(participant, fold.index) != fold.index:
                raise ValueError(f"participant {participant} is held out in folds {owner[participant]} "
                                 f"and {fold.index}")
        sides = [{participant_of[key] for key in part} for part in (fold.test, fold.inner_train, fold.inner_val)]
        for a, b, what in ((0, 1, "test and train"), (0, 2, "test and inner val"), (1, 2, "inner train and val")):
            shared = sides[a] & sides[b]
            if shared:
                raise ValueError(f"fold {fold.index}: participant {sorted(shared)[0]} is in both {what}")
        if sorted(fold.train) != sorted(fold.inner_train + fold.inner_val) or set(fold.train) & set(fold.test):
            raise ValueError(f"fold {fold.index}: the inner split does not partition its training photos")
    missing = set(participant_of) - set(seen)
    if missing:
        raise ValueError(f"{len(missing)} images in no test fold, e.g. {sorted(missing)[0]}")


def fold_view(export: str | os.PathLike, fold: Fold, target: str | os.PathLike, *, inner: bool = True) -> Path:
    """A masks export folder at ``target`` that is ``export`` with the fold's splits: its held-out photos in
    ``test``, its inner val photos in ``val`` (``inner=True``; else they train too), the rest in ``train``.
    Only ``manifest.json`` is new; the export's folders are linked, not copied."""
    source, target = Path(export).resolve(), Path(target)
    manifest = read_masks_manifest(source)
    split_of = {key: "test" for key in fold.test}
    split_of.update({key: "val" if inner else "train" for key in fold.inner_val})
    split_of.update({key: "train" for key in fold.inner_train})
    target.mkdir(parents=True, exist_ok=True)
    for child in source.iterdir():
        if child.is_dir() and not (target / child.name).exists():
            (target / child.name).symlink_to(child, target_is_directory=True)
    images = [{**entry, "split": split_of[entry["file_name"]]} for entry in manifest["images"]]
    (target / "manifest.json").write_text(json.dumps({**manifest, "images": images}))
    return target


# ----------------------------------------------------------------------------------------------------
# Checkpoint selection
# ----------------------------------------------------------------------------------------------------


def select_epoch(history: Sequence[Mapping[str, Any]], strategy: str) -> int:
    """The epoch (1-based) ``strategy`` keeps from a training history: ``last`` the final one,
    ``best-inner-val`` the first with the highest val binary mIoU (as ``ml.train.track_best``)."""
    if not history:
        raise ValueError("an empty history has no epoch to select")
    if strategy == "last":
        return int(history[-1]["epoch"])
    if strategy == "best-inner-val":
        scored = [(h["val"]["miou"], h["epoch"]) for h in history if h.get("val") and h["val"].get("miou") is not None]
        if not scored:
            raise ValueError("best-inner-val needs val scores (an inner val split)")
        best = max(score for score, _ in scored)
        return int(next(epoch for score, epoch in scored if score == best))
    raise ValueError(f"{strategy!r} does not select an epoch (strategies: {', '.join(SELECTIONS)})")


class WeightAverage:
    """Exponential moving average of state dicts: ``avg = decay * avg + (1 - decay) * new`` for floating
    tensors (weights and batch-norm statistics), the newest value for the others (counters); the first
    update copies."""

    def __init__(self, decay: float) -> None:
        if not 0 <= decay < 1:
            raise ValueError("decay must be in [0, 1)")
        self.decay = decay
        self.state: dict[str, torch.Tensor] | None = None
        self.updates = 0

    @torch.no_grad()
    def update(self, state: Mapping[str, torch.Tensor]) -> None:
        if self.state is None:
            self.state = {k: v.detach().clone() for k, v in state.items()}
        else:
            for key, value in state.items():
                if value.is_floating_point():
                    self.state[key].mul_(self.decay).add_(value.detach(), alpha=1 - self.decay)
                else:
                    self.state[key] = value.detach().clone()
        self.updates += 1


# ----------------------------------------------------------------------------------------------------
# One fold
# ----------------------------------------------------------------------------------------------------


def _brief(pooled: Mapping[str, Any]) -> dict[str, Any]:
    return {k: pooled[k] for k in ("miou", "nail_iou", "bg_iou", "per_nail_iou", "image_miou")}


def run_fold(export: str | os.PathLike, fold: Fold, config: TrainConfig, out_dir: str | os.PathLike, *,
             selections: Sequence[str] = SELECTIONS, ema_decay: float = 0.6, max_side: int | None = None,
             keep_checkpoints: bool = False, tta: Sequence[str] = (),
             log: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """Train ``config`` on ``fold`` of the masks export and score its held-out participants at full resolution
    after every epoch. Returns ``{"fold", "test_participants", "test_images", "train_images",
    "inner_val_images", "epochs": [per epoch: train loss, inner val mIoU, wall seconds, held-out pooled
    scores], "selections": {strategy: {"epoch", "scores" (pooled), "images" (per image), "tta"}}, "oracle":
    {"epoch", "scores"}, "train_seconds" (``ml.train.train``'s wall time without the held-out scoring),
    "scoring_seconds", "tta_seconds", "seconds", "crops", "device"}``.

    ``max_side``: None (default) runs every held-out photo at the config's input size (``config.eval_size``: its
    val size, else the training's long side; what ``ml.predict.Predictor`` runs the model at); a number runs each
    photo at its own size with the longer side capped there (the protocol of the runs before 2026-12-05).

    ``tta``: test-time augmentations (``ml.tta.TTA_MODES`` other than ``none``) each strategy's model is
    also scored with, the same weights (no extra training): ``selections[strategy]["tta"][name]`` =
    ``{"scores", "images"}``."""
    unknown = set(selections) - set(SELECTIONS)
    if unknown:
        raise ValueError(f"unknown selection strategies: {', '.join(sorted(unknown))}")
    tta = [check_tta(name) for name in tta if check_tta(name) != "none"]
    started = time.monotonic()
    say = log or (lambda message: None)
    out = Path(out_dir)
    inner = "best-inner-val" in selections
    view = fold_view(export, fold, out / "data", inner=inner)
    scorer = (FullResScorer(view, "test", max_side=max_side, device=config.device) if max_side else
              FullResScorer(view, "test", long_side=config.eval_size, device=config.device))
    average = WeightAverage(ema_decay)
    per_epoch: list[list[dict[str, Any]]] = []
    weights: dict[int, dict[str, torch.Tensor]] = {}  # epoch -> its weights (CPU), kept only to score with TTA

    scoring = [0.0]  # seconds spent scoring inside train(), not part of its training time

    def after_epoch(record: Mapping[str, Any], trained: torch.nn.Module) -> None:
        """Score the trainer's own model (the weights ``last.pt`` was just written with; not read back)."""
        t0 = time.monotonic()
        per_epoch.append(scorer(trained))
        if "ema" in selections:  # averaged on the CPU, as when it was read back from last.pt: the same figures
            average.update({key: value.cpu() for key, value in trained.state_dict().items()})
        if tta:
            weights[record["epoch"]] = {key: value.detach().cpu().clone() for key, value in trained.state_dict().items()}
        scoring[0] += time.monotonic() - t0
        val = (record.get("val") or {}).get("miou")
        say(f"  epoch {record['epoch']}: loss {record['train_loss']:.4f}"
            + (f", inner val mIoU {100 * val:.1f}" if val is not None else "")
            + f", held-out mIoU {100 * pooled_scores(per_epoch[-1])['miou']:.1f}")

    result = train(config, view, out / "run", resume=False, on_epoch=after_epoch)
    history = result["history"]
    epochs = [{"epoch": h["epoch"], "train_loss": h["train_loss"], "val_miou": (h.get("val") or {}).get("miou"),
               "seconds": h["seconds"],
               "test": _brief(pooled_scores(scores))} for h, scores in zip(history, per_epoch)]
    chosen: dict[str, Any] = {}
    for strategy in selections:
        if strategy == "ema":
            model = build_model(config.model, load_pretrained=False).to(scorer.device)
            model.load_state_dict(average.state)
            images, epoch = scorer(model), None
        else:
            epoch = select_epoch(history, strategy)
            images = per_epoch[epoch - 1]
        chosen[strategy] = {"epoch": epoch, "scores": _brief(pooled_scores(images)), "images": images, "tta": {}}
    tta_started = time.monotonic()
    for strategy in selections if tta else ():
        model = build_model(config.model, load_pretrained=False)
        epoch = chosen[strategy]["epoch"]
        model.load_state_dict(average.state if epoch is None else weights[epoch])
        model.to(scorer.device)
        for name in tta:
            images = scorer(with_tta(model, name))
            chosen[strategy]["tta"][name] = {"scores": _brief(pooled_scores(images)), "images": images}
    oracle = max(range(len(epochs)), key=lambda i: epochs[i]["test"]["miou"] or 0.0)
    if not keep_checkpoints:
        for name in ("last.pt", "best.pt"):
            (out / "run" / name).unlink(missing_ok=True)
    steps = config.steps_per_epoch or max(1, len(fold.inner_train if inner else fold.train) // config.batch_size)
    return {"fold": fold.index, "test_participants": list(fold.test_participants), "test_images": len(fold.test),
            "train_images": len(fold.inner_train if inner else fold.train),
            "inner_val_images": len(fold.inner_val) if inner else 0, "epochs": epochs, "selections": chosen,
            "oracle": {"epoch": epochs[oracle]["epoch"], "scores": epochs[oracle]["test"]},
            "train_seconds": result["seconds"] - scoring[0], "scoring_seconds": scoring[0],
            "tta_seconds": time.monotonic() - tta_started,
            "seconds": time.monotonic() - started,
            "crops": steps * config.batch_size * result["epochs_completed"], "device": result["device"],
            "input": {"max_side": max_side} if max_side else {"long_side": config.eval_size}}


# ----------------------------------------------------------------------------------------------------
# Across folds
# ----------------------------------------------------------------------------------------------------


def _mean_sd(values: Sequence[float]) -> dict[str, Any]:
    return {"mean": statistics.fmean(values) if values else None,
            "sd": statistics.stdev(values) if len(values) > 1 else None, "folds": list(values)}


def summarize(fold_results: Sequence[Mapping[str, Any]], strategy: str, tta: str | None = None) -> dict[str, Any]:
    """Mean and standard deviation over folds of ``strategy``'s held-out scores (binary mIoU, nail IoU,
    per-nail IoU; each fold's figures pooled over its photos), its gap to the oracle epoch's mIoU, and the
    epochs it picked. ``tta``: the scores of the same models run with that test-time augmentation
    (``run_fold(tta=...)``), plus ``gain`` (its binary mIoU minus the plain one, per fold) and ``wins`` (the
    folds where it is higher)."""
    plain = [f["selections"][strategy] for f in fold_results]
    if tta is None or check_tta(tta) == "none":
        picked = [p["scores"] for p in plain]
    else:
        missing = [f["fold"] for f, p in zip(fold_results, plain) if tta not in p.get("tta", {})]
        if missing:
            raise ValueError(f"folds {missing} were not scored with test-time augmentation {tta!r}")
        picked = [p["tta"][tta]["scores"] for p in plain]
    summary = {key: _mean_sd([p[key] for p in picked if p[key] is not None])
               for key in ("miou", "nail_iou", "per_nail_iou")}
    summary["gap_to_oracle"] = _mean_sd([f["oracle"]["scores"]["miou"] - p["miou"]
                                         for f, p in zip(fold_results, picked)])
    summary["epochs"] = [p["epoch"] for p in plain]
    if tta not in (None, "none"):
        gains = [p["miou"] - q["scores"]["miou"] for p, q in zip(picked, plain)]
        summary["gain"] = _mean_sd(gains)
        summary["wins"] = sum(g > 0 for g in gains)
    return summary
