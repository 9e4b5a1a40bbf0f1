"""What other apps add to labeling, by registration from their ``AppConfig.ready()``: labeling itself names
no app that builds on it (pre-labeling registers here, see prelabel/apps.py).

- after-ingest hooks: ``hook(image_ids, log=...)`` is called with the images an ``ingest_upload`` job made
  (pre-labeling queues the active model's drafts of them);
- annotation-page scripts: static paths of JS modules the annotation tool's page loads besides its own
  (pre-labeling's records when the image was opened and shows the model's draft);
- foreground providers: ``provider(image, rgb) -> (fg_prob, model_name) | None``, a model's nail probability
  for the photo (H x W, float in [0, 1] or uint8 with 255 = nail), which click-a-nail
  (``labeling/click_nail.py``) refines instead of segmenting the photo alone (pre-labeling gives the active
  model's, see prelabel/click_foreground.py); ``None`` when it has none;
- nail-vote providers: ``provider(image, rgb, polygons) -> [vote | None per polygon] | None``, a trained
  model's per-nail votes on finger and direction (``ml.nail_votes``) that the label suggestions
  (``labeling/suggestions.py``) weigh (pre-labeling gives the active model's when its class or direction
  head was trained, see prelabel/model_votes.py); ``None`` when it has none.
"""
from __future__ import annotations

import logging
from typing import Callable

logger = logging.getLogger(__name__)

AfterIngestHook = Callable[..., object]
ForegroundProvider = Callable[..., object]

_after_ingest: list[AfterIngestHook] = []
_annotate_scripts: list[str] = []
_foreground_providers: list[ForegroundProvider] = []
_vote_providers: list[Callable[..., object]] = []


def register_after_ingest(hook: AfterIngestHook) -> AfterIngestHook:
    """Call ``hook(image_ids, log=log)`` after every ingest (once, however often it is registered)."""
    if hook not in _after_ingest:
        _after_ingest.append(hook)
    return hook


def after_ingest_hooks() -> tuple[AfterIngestHook, ...]:
    return tuple(_after_ingest)


def after_ingest(image_ids: list[int], log: Callable[[str], None] | None = None) -> None:
    """Run the registered hooks, in the order they were registered, on the new images."""
    for hook in list(_after_ingest):
        hook(image_ids, log=log)


def register_annotate_script(static_path: str) -> None:
    """Load the JS module at this static path (e.g. ``"prelabel/opened.js"``) on the annotation page."""
    if static_path not in _annotate_scripts:
        _annotate_scripts.append(static_path)


def annotate_scripts() -> list[str]:
    return list(_annotate_scripts)


def register_foreground_provider(provider: ForegroundProvider) -> ForegroundProvider:
    """Ask ``provider(image, rgb)`` for a model's nail probability of a photo (once, however often it is
    registered); the first provider that answers is used."""
    if provider not in _foreground_providers:
        _foreground_providers.append(provider)
    return provider


def foreground_providers() -> tuple[ForegroundProvider, ...]:
    return tuple(_foreground_providers)


def _first_answer(providers, kind: str, *args):
    """The first provider's answer that is not None, else None. A provider that fails (a model's weights
    missing or broken, out of memory) is logged and skipped: what it adds is optional, the page must work."""
    for provider in list(providers):
        try:
            answer = provider(*args)
        except Exception:  # noqa: BLE001  (any failure of an optional provider)
            logger.exception("%s provider %r failed; going on without it", kind, provider)
            continue
        if answer is not None:
            return answer
    return None


def foreground_for(image, rgb):
    """``(fg_prob, model_name)`` from the first registered provider that has one for this photo, else None."""
    return _first_answer(_foreground_providers, "foreground", image, rgb)


def register_vote_provider(provider: Callable[..., object]) -> Callable[..., object]:
    """Ask ``provider(image, rgb, polygons)`` for a model's per-nail votes (once, however often it is
    registered); the first provider that answers is used."""
    if provider not in _vote_providers:
        _vote_providers.append(provider)
    return provider


def vote_providers() -> tuple[Callable[..., object], ...]:
    return tuple(_vote_providers)


def votes_for(image, rgb, polygons):
    """Per-nail votes from the first registered provider that has them for this photo, else None."""
    return _first_answer(_vote_providers, "vote", image, rgb, polygons)
