"""A small site with something on every page, for the browser tests that walk all pages."""
import numpy as np

from tests.conftest import make_user


def populate_site(name: str, make_image) -> dict:
    """Staff of every role (root, ann, rev), an accepted image in a snapshot, an image to annotate, an active
    model version and a prediction on the labelled image. ``name`` prefixes the snapshot and the model."""
    from curation.snapshots import build_snapshot
    from labeling.models import Annotation
    from prelabel.inference import probability_png
    from prelabel.models import Prediction
    from tests.test_tryon import make_model_version

    make_user("root", "admin", is_staff=True, is_superuser=True)
    make_user("ann", "annotator")
    make_user("rev", "reviewer")
    labelled = make_image(64, 48)
    square = [[10, 10], [30, 10], [30, 30], [10, 30]]
    Annotation.objects.filter(image=labelled).update(
        geometry={"nails": [{"polygon": square, "finger": 2, "base": [20, 28], "tip": [20, 12]}], "ignore": []}, status="accepted")
    build_snapshot(f"{name}-snapshot")
    to_annotate = make_image(64, 48)
    version = make_model_version(f"{name}-model", active=True)
    overlay, width, height = probability_png(np.full((48, 64), 0.5, np.float32))
    prediction = Prediction.objects.create(image=labelled, model_version=version, nails=[], geometry={"nails": [], "ignore": []},
                                           draft_state="kept", overlay_png=overlay, overlay_width=width, overlay_height=height,
                                           input_size=[48, 64])
    return {"labelled": labelled, "to_annotate": to_annotate, "version": version, "prediction": prediction}
