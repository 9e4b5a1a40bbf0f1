"""The dataset page: statistics, splits, snapshots with one control per export format, and a spot-check
grid of random labelled images (captioned with image, participant and split) with what the model will
learn drawn over them, and a legend of the colours."""
import io

import numpy as np
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from PIL import Image as PILImage

from accounts.decorators import role_required
from accounts.roles import ADMIN, REVIEWER, role_of
from dataset.geometry import FINGER_NAMES
from dataset.raster import PALETTE, UNKNOWN_CLASS, direction_field_colors, overlay, rasterize
from labeling.models import Annotation, Image

from .export_status import FORMAT_LABELS, export_states
from .job_kinds import EXPORT_FORMATS
from .models import ParticipantSplit, Snapshot
from .stats import dataset_stats

SPOT_CHECK_SIZE = 480
NO_FIELD_GREY = (128, 128, 128)  # the direction-field picture: a nail without base/tip (no field to learn)


@role_required(ADMIN, REVIEWER)
def dataset_page(request):
    rows = (Annotation.objects.exclude(status=Annotation.Status.UNLABELED).exclude(geometry__nails=[])
            .order_by("?").values_list("image_id", "status", "image__participant_id", "image__participant__code")[:12])
    rows = list(rows)
    splits = dict(ParticipantSplit.objects.filter(participant_id__in={r[2] for r in rows}).values_list("participant_id", "split"))
    spot_check = [{"image_id": image_id, "status": status, "participant": code, "split": splits.get(participant_id, "no split yet")}
                  for image_id, status, participant_id, code in rows]
    snapshots = list(Snapshot.objects.all()[:50])
    states = export_states(snapshots)
    role = role_of(request.user)
    return render(request, "curation/dataset.html", {
        "stats": dataset_stats(), "snapshots": [(snapshot, states.get(snapshot.name, [])) for snapshot in snapshots],
        "export_formats": [FORMAT_LABELS[fmt] for fmt in EXPORT_FORMATS],
        "spot_check": spot_check, "legend": _legend(), "is_admin": role == ADMIN,
        "can_complete": role == ADMIN,  # the incomplete-labels queue is the annotators' (and admins')
    })


def _legend() -> list[dict]:
    """The class mask's colours (``dataset.raster.PALETTE``), one per finger, and the unknown finger."""
    entries = [{"name": name, "colour": "#%02x%02x%02x" % tuple(PALETTE[finger])} for finger, name in FINGER_NAMES.items()]
    entries.append({"name": "finger not set", "colour": "#%02x%02x%02x" % tuple(PALETTE[UNKNOWN_CLASS])})
    return entries


@role_required(ADMIN, REVIEWER)
def spot_check_image(request, image_id: int, kind: str):
    """The image (at most 480 px) with its current labels rasterized as the model will see them."""
    if kind not in ("classes", "field"):
        raise Http404(f"no spot-check picture {kind!r}: classes or field")
    image = get_object_or_404(Image.objects.select_related("annotation"), pk=image_id)
    with image.file.open("rb") as fh:
        picture = PILImage.open(fh).convert("RGB")
        picture.thumbnail((SPOT_CHECK_SIZE, SPOT_CHECK_SIZE))
    pixels = np.asarray(picture)
    rasters = rasterize(image.annotation.geometry, image.width, image.height, out_size=picture.size)
    if kind == "field":
        colours = direction_field_colors(rasters.field, rasters.field_mask)
        mask = rasters.field_mask.astype(bool)[..., None]
        no_field = ((rasters.foreground > 0) & ~rasters.field_mask.astype(bool))[..., None]
        blended = np.where(mask, (0.35 * pixels + 0.65 * colours).astype(np.uint8), pixels)
        blended = np.where(no_field, (0.35 * pixels + 0.65 * np.array(NO_FIELD_GREY)).astype(np.uint8), blended)
    else:
        blended = overlay(pixels, rasters)
    buffer = io.BytesIO()
    PILImage.fromarray(blended).save(buffer, "PNG")
    return HttpResponse(buffer.getvalue(), content_type="image/png")
