"""The dataset page: statistics, splits, snapshots with their exports, and a spot-check grid of
random labelled images with what the model will learn drawn over them."""
import io

import numpy as np
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, render
from PIL import Image as PILImage

from dataset.raster import direction_field_colors, overlay, rasterize
from labeling.models import Annotation, Image
from labeling.permissions import ADMIN, REVIEWER, role_of

from .models import Snapshot
from .stats import dataset_stats

SPOT_CHECK_SIZE = 480


def _require_reviewer(request):
    if role_of(request.user) not in (ADMIN, REVIEWER):
        raise PermissionDenied("reviewers and admins only")


@login_required
def dataset_page(request):
    _require_reviewer(request)
    spot_check = (Annotation.objects.exclude(status=Annotation.Status.UNLABELED).exclude(geometry__nails=[])
                  .order_by("?").values_list("image_id", flat=True)[:12])
    return render(request, "curation/dataset.html", {
        "stats": dataset_stats(), "snapshots": Snapshot.objects.prefetch_related("exports")[:50],
        "spot_check": list(spot_check), "is_admin": role_of(request.user) == ADMIN,
    })


@login_required
def spot_check_image(request, image_id: int, kind: str):
    """The image (at most 480 px) with its current labels rasterized as the model will see them."""
    _require_reviewer(request)
    image = get_object_or_404(Image.objects.select_related("annotation"), pk=image_id)
    with image.file.open("rb") as fh:
        picture = PILImage.open(fh).convert("RGB")
        picture.thumbnail((SPOT_CHECK_SIZE, SPOT_CHECK_SIZE))
    pixels = np.asarray(picture)
    rasters = rasterize(image.annotation.geometry, image.width, image.height, out_size=picture.size)
    if kind == "field":
        colours = direction_field_colors(rasters.field, rasters.field_mask)
        mask = rasters.field_mask.astype(bool)[..., None]
        blended = np.where(mask, (0.35 * pixels + 0.65 * colours).astype(np.uint8), pixels)
    else:
        blended = overlay(pixels, rasters)
    buffer = io.BytesIO()
    PILImage.fromarray(blended).save(buffer, "PNG")
    return HttpResponse(buffer.getvalue(), content_type="image/png")
