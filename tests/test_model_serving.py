"""The served model (training/serving.py, training/api.py): the active model version, the predict endpoint
at /api/model-versions/<ref>/predict (and its old address's redirect), and the one predictor cache that
pre-labeling, the endpoint and the try-on share."""
import io
import math
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

from labeling.intake import create_image
from ml.predict import Predictor
from prelabel.models import Prediction
from tests.prelabel_support import nail_photo, register_model, tiny_checkpoint
from training import serving
from training.models import ModelVersion

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def checkpoint():
    return tiny_checkpoint()


@pytest.fixture
def loads(monkeypatch):
    """The checkpoints loaded into predictors during the test (the real loader runs)."""
    seen = []
    real = Predictor.from_checkpoint.__func__

    def counting(cls, path, *args, **kwargs):
        seen.append(str(path))
        time.sleep(0.05)  # a load takes a while: concurrent first requests overlap it (only the lock makes them wait)
        return real(cls, path, *args, **kwargs)

    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(counting))
    serving.predictors.clear()
    yield seen
    serving.predictors.clear()


def photo_bytes() -> bytes:
    buffer = io.BytesIO()
    nail_photo().save(buffer, "PNG")
    return buffer.getvalue()


# --- ModelVersion.objects.active() ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_active_is_the_one_active_version_or_none(checkpoint):
    assert ModelVersion.objects.active() is None
    first = register_model("serve-a", checkpoint)
    second = register_model("serve-b", checkpoint, active=True)
    assert ModelVersion.objects.active() == second
    ModelVersion.objects.filter(pk=second.pk).update(is_active=False)
    assert ModelVersion.objects.active() is None
    ModelVersion.objects.filter(pk=first.pk).update(is_active=True)
    assert ModelVersion.objects.active() == first
    with pytest.raises(IntegrityError), transaction.atomic():  # never two
        ModelVersion.objects.filter(pk=second.pk).update(is_active=True)


# --- the predict endpoint ----------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_predict_endpoint_returns_nails_and_checks_permissions(checkpoint, participant, client_for):
    version = register_model("tiny-2", checkpoint)
    data = photo_bytes()

    def post(client, ref=version.pk, payload=None, suffix=""):
        upload = io.BytesIO(payload if payload is not None else data)
        upload.name = "hand.png"
        return client.post(f"/api/model-versions/{ref}/predict{suffix}", {"image": upload}, format="multipart")

    anonymous = post(client_for(None))
    assert anonymous.status_code == 401
    from rest_framework.test import APIClient

    participant_client = APIClient(HTTP_X_UPLOAD_TOKEN=participant.upload_token)
    assert post(participant_client).status_code == 403
    answer = post(client_for("annotator"))
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["model"] == "tiny-2" and (body["width"], body["height"]) == (96, 72) and body["nails"]
    first = body["nails"][0]
    assert {"polygon", "class", "base", "tip", "confidence"} <= set(first) and len(first["polygon"]) >= 3
    assert first["class"] in range(1, 11) and 0 < first["confidence"] <= 1
    assert post(client_for("reviewer"), ref="tiny-2", suffix="/").status_code == 200   # by name, with a slash
    assert post(client_for("annotator"), ref="ghost").status_code == 404
    assert post(client_for("annotator"), payload=b"not a photo").status_code == 400
    assert post(client_for("nobody")).status_code == 403
    assert math.isfinite(body["uncertainty"])


@pytest.mark.django_db
def test_the_old_predict_address_redirects_keeping_the_method(checkpoint, client_for):
    version = register_model("tiny-old", checkpoint)
    client = client_for("annotator")

    upload = io.BytesIO(photo_bytes())
    upload.name = "hand.png"
    body = encode_multipart(BOUNDARY, {"image": upload})  # bytes: the redirected request sends them again

    def post_old(ref, suffix="", query="", follow=False):
        return client.post(f"/api/models/{ref}/predict{suffix}{query}", body, content_type=MULTIPART_CONTENT,
                           follow=follow)

    moved = post_old(version.pk, query="?size=128")
    assert moved.status_code == 308  # permanent, and the client posts the same request again
    assert moved["Location"] == f"/api/model-versions/{version.pk}/predict?size=128"
    assert post_old("tiny-old", suffix="/")["Location"] == "/api/model-versions/tiny-old/predict"
    followed = post_old("tiny-old", query="?size=128", follow=True)
    assert followed.redirect_chain == [("/api/model-versions/tiny-old/predict?size=128", 308)]
    assert followed.status_code == 200 and followed.json()["model"] == "tiny-old"
    assert followed.json()["input_size"] == [96, 128]  # the query string came along: the 96 x 72 photo ran at 128
    assert post_old("tiny-old", follow=True).json()["input_size"] != [96, 128]  # (not the model's own size)
    # permissions are those of the new address: the redirect itself reveals nothing
    assert client_for(None).post(f"/api/models/{version.pk}/predict").status_code == 308
    anonymous = client_for(None).post(f"/api/models/{version.pk}/predict", follow=True)
    assert anonymous.status_code == 401


# --- one predictor cache --------------------------------------------------------------------------------------

@pytest.mark.django_db
def test_one_cache_serves_prelabeling_the_endpoint_and_the_try_on(checkpoint, participant, client_for, loads):
    """The active version is loaded once: pre-labeling, the predict endpoint and the try-on all use that predictor."""
    version = register_model("serve-shared", checkpoint, active=True)
    photo, _ = create_image(participant, nail_photo(), "PNG")
    out = StringIO()
    call_command("prelabel", "active", "--images", str(photo.pk), stdout=out)
    assert Prediction.objects.get(image=photo).model_version == version
    assert loads == [version.weights.path]
    predictor = serving.predictor_for(version)

    upload = io.BytesIO(photo_bytes())
    upload.name = "hand.png"
    client = client_for("annotator")
    assert client.post(f"/api/model-versions/{version.name}/predict", {"image": upload}, format="multipart").status_code == 200
    upload = io.BytesIO(photo_bytes())
    upload.name = "hand.png"
    tried = client.post("/api/tryon/render", {"image": upload, "color": "#C8102E"}, format="multipart")
    assert tried.status_code == 200, tried.content
    assert tried.json()["model"] == version.name and tried.json()["timings_ms"]["load_model"] < 1000
    assert loads == [version.weights.path]  # still the one load
    assert serving.predictor_for(version) is predictor
    assert serving.predictors.keys() == [(version.pk, version.weights.name)]


@pytest.mark.django_db
def test_the_cache_loads_a_version_once_under_concurrency_and_keeps_the_newest_two(checkpoint, loads):
    versions = [register_model(f"serve-{n}", checkpoint) for n in range(3)]
    got = []
    start = threading.Barrier(4)  # all four ask at the same moment, before any load has finished

    def ask():
        start.wait()
        got.append(serving.predictor_for(versions[0]))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1 and len(got) == 4 and all(p is got[0] for p in got)
    serving.predictor_for(versions[1])
    serving.predictor_for(versions[0])  # used again: now the most recent
    serving.predictor_for(versions[2])  # evicts versions[1], the least recently used
    assert serving.predictors.keys() == [serving.cache_key(versions[0]), serving.cache_key(versions[2])]
    assert len(loads) == 3
    serving.predictor_for(versions[1])
    assert len(loads) == 4
    assert serving.cache_key(versions[0]) not in serving.predictors.keys()


def test_torch_is_imported_on_first_use_only():
    """The site's URLs, the serving module and its users load without torch (a fresh process: this one has it)."""
    code = ("import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'annotation_site.settings'); "
            "import django; django.setup(); "
            "import annotation_site.urls, training.serving, tryon.rendering, prelabel.job_kinds, training.job_kinds; "
            "sys.exit(3 if 'torch' in sys.modules else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr or "torch was imported"
