"""Automatic pre-labeling of new images: registered as an after-ingest hook (prelabel/apps.py,
labeling/extensions.py), so it runs at the end of every ``ingest_upload`` job; never from a signal."""
from __future__ import annotations

import logging

logger = logging.getLogger("nailset.prelabel")


def prelabel_new_images(image_ids, log=None):
    """Queue one batched ``prelabel`` job (queue "prelabel") for these new images when a model is active.

    Returns the Job, or None (no images, no active model, or the job could not be queued: intake never
    fails because of pre-labeling; the images can be pre-labeled later with ``manage.py prelabel``)."""
    from jobs.runner import enqueue_job
    from training.models import ModelVersion

    ids = sorted({int(i) for i in image_ids})
    if not ids:
        return None
    model = ModelVersion.objects.active()
    if model is None:
        return None
    try:
        job, _ = enqueue_job("prelabel", {"model": model.name, "image_ids": ids})
    except Exception as exc:  # a broker hiccup must not fail the ingest
        logger.warning("could not queue pre-labeling of images %s: %s", ids, exc)
        if log:
            log(f"pre-labeling not queued: {exc}")
        return None
    if log:
        log(f"pre-labeling of {len(ids)} image(s) with {model.name}: job {job.pk}")
    return job
