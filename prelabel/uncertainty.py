"""Uncertainty-first queue: the annotators' open queue ordered by model uncertainty, most uncertain first.

The score of an image is ``Prediction.uncertainty`` (``ml.uncertainty.edge_entropy``: mean entropy of the
nail probability in a band around the predicted edges) of the active model's prediction, or of the newest
prediction when the active model has not seen the image. Images without any prediction come last, oldest
first. Which order the queue uses is an admin's choice (``QueueSetting``, ``PUT /api/prelabel/queue-order/``
or the metrics page); the queue page and ``GET /api/queue/`` show it.
"""
from __future__ import annotations

from django.db.models import F, OuterRef, Subquery

from labeling.queue import OLDEST_FIRST, QUEUE_ORDERS, QueueOrder

from .models import Prediction, QueueSetting

UNCERTAINTY = "uncertainty"


def image_uncertainty():
    """A subquery: the uncertainty of the image's active-model (else newest) prediction, per Annotation row."""
    predictions = (Prediction.objects.filter(image_id=OuterRef("image_id"))
                   .order_by("-model_version__is_active", "-created_at", "-id").values("uncertainty")[:1])
    return Subquery(predictions)


def order_by_uncertainty(annotations):
    return annotations.annotate(model_uncertainty=image_uncertainty()).order_by(
        F("model_uncertainty").desc(nulls_last=True), "image_id")


UNCERTAINTY_ORDER = QueueOrder(UNCERTAINTY, "most uncertain first (model uncertainty at the predicted nail edges)",
                               order_by_uncertainty)


def configured_queue_order() -> str:
    return QueueSetting.objects.order_by("pk").values_list("order", flat=True).first() or OLDEST_FIRST.name


def set_queue_order(order: str, user=None) -> QueueSetting:
    if order not in QUEUE_ORDERS:
        raise ValueError(f"order must be one of {', '.join(sorted(QUEUE_ORDERS))}")
    setting = QueueSetting.objects.order_by("pk").first() or QueueSetting()
    setting.order = order
    setting.changed_by = user if getattr(user, "pk", None) else None
    setting.save()
    return setting


def queue_orders() -> list[dict]:
    return [{"name": o.name, "label": o.label} for o in QUEUE_ORDERS.values()]
