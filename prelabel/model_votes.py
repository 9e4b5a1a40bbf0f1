"""The active model's per-nail votes for the label suggestions (issue #16), registered as labeling's vote
provider from prelabel/apps.py.

``active_nail_votes(image, rgb, polygons)`` reads the votes (``ml.nail_votes.nail_votes``) from the active
model's outputs on the photo kept by ``active_prediction.py`` (the network's run shared with click-a-nail: one
run per photo). The annotation page asks for suggestions after every autosave, with the polygons as they are
now, so the votes are read again from the kept outputs and the network runs once. ``None`` when no model is
active or its class and direction heads were never trained (``ml.predict.heads_trained``).
"""
from __future__ import annotations

import numpy as np

from ml.nail_votes import nail_votes
from training.serving import predictor_for

from .active_prediction import active_version, kept_outputs


def active_nail_votes(image, rgb: np.ndarray, polygons):
    """Per-polygon votes of the active model for this photo, or None."""
    version = active_version()
    if version is None:
        return None
    heads = predictor_for(version).heads
    if not (heads["classes"] or heads["field"]):
        return None
    outputs = kept_outputs(image, rgb, version)
    return nail_votes(polygons, outputs.class_prob, outputs.field, outputs.fg_prob, scale=outputs.scale)
