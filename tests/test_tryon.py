"""Try-on: the render command, the API (model and labels paths) and the page."""
import io
import math

import numpy as np
import pytest
import torch
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from labeling.intake import create_image
from labeling.models import Annotation
from tests.conftest import jpeg_bytes
from training.models import ModelVersion
from training import serving

NAILS = [  # two nails on two fingers of a synthetic 240 x 180 photo
    {"polygon": [[60 + 14 * math.cos(a), 70 + 20 * math.sin(a)] for a in np.linspace(0, 2 * math.pi, 24, endpoint=False)],
     "finger": 2, "base": [60, 89], "tip": [60, 51]},
    {"polygon": [[150 + 14 * math.cos(a), 80 + 20 * math.sin(a)] for a in np.linspace(0, 2 * math.pi, 24, endpoint=False)],
     "finger": 3, "base": None, "tip": None},
]


def hand_picture(width=240, height=180) -> PILImage.Image:
    """Two skin-coloured fingers from the bottom edge with pale nails, on a dark textured table."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(30, 70, (height, width, 3), dtype=np.uint8)
    pixels[45:, 42:78] = (222, 172, 150)
    pixels[55:, 132:168] = (215, 165, 145)
    yy, xx = np.mgrid[0:height, 0:width]
    for cx, cy in ((60, 70), (150, 80)):
        pixels[((xx - cx) / 14) ** 2 + ((yy - cy) / 20) ** 2 <= 1] = (240, 205, 205)
    return PILImage.fromarray(pixels)


def tiny_checkpoint_bytes() -> bytes:
    """An untrained tiny cascade saved as ml.checkpoint saves checkpoints (the tests are about plumbing)."""
    from ml.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
    from ml.models.registry import build_model
    from ml.train import train_config

    config = train_config("tiny")
    torch.manual_seed(0)
    model = build_model(config.model)
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": config.to_dict(),
                "model": model.state_dict(), "epoch": 0, "metrics": {}, "history": []}, buffer)
    return buffer.getvalue()


def make_model_version(name="tiny-tryon", active=True) -> ModelVersion:
    version = ModelVersion(name=name, config={}, metrics={"miou": 0.5}, snapshot_content_hash="0" * 64, is_active=active)
    version.weights.save("model.pt", ContentFile(tiny_checkpoint_bytes()), save=False)
    version.save()
    serving.predictors.clear()
    return version


@pytest.fixture
def labelled_image(participant):
    image, _ = create_image(participant, hand_picture(), "PNG")
    Annotation.objects.filter(image=image).update(geometry={"nails": NAILS, "ignore": []}, status="accepted")
    image.refresh_from_db()
    return image


def read(path) -> np.ndarray:
    return np.asarray(PILImage.open(path).convert("RGB"))


# ---------------------------------------------------------------------------------------------------
# manage.py render
# ---------------------------------------------------------------------------------------------------


def test_render_command_with_labels(labelled_image, tmp_path, capsys):
    out = tmp_path / "painted.png"
    call_command("render", str(labelled_image.pk), "--labels", "--color", "#C8102E", "--out", str(out))
    assert "2 nails painted #C8102E glossy" in capsys.readouterr().out
    before, after = read(labelled_image.file.path), read(out)
    assert after.shape == before.shape
    changed = np.any(after != before, axis=2)
    from dataset.raster import rasterize

    nails = rasterize({"nails": NAILS}, labelled_image.width, labelled_image.height).foreground > 0
    assert changed[nails].mean() > 0.95  # the nails are painted
    assert changed[nails].sum() >= 0.9 * changed.sum()  # and little else (the tip stretch, the rims)
    far = np.ones_like(nails)
    far[30:120, 35:185] = False
    assert not changed[far].any()  # far from the nails, the PNG is bit-identical
    assert after[nails][:, 0].mean() > after[nails][:, 1].mean() + 60  # red

    jpg = tmp_path / "pair.jpg"
    call_command("render", str(labelled_image.pk), "--labels", "--color", "#1F2A44", "--finish", "matte",
                 "--compare", "--out", str(jpg))
    assert read(jpg).shape[1] > 2 * labelled_image.width


def test_render_command_refuses_what_it_cannot_do(labelled_image, tmp_path):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes(hand_picture()))
    with pytest.raises(CommandError, match="needs a platform image id"):
        call_command("render", str(photo), "--labels", "--out", str(tmp_path / "x.jpg"))
    with pytest.raises(CommandError, match="no model version named 'missing'"):
        call_command("render", str(labelled_image.pk), "--model", "missing", "--out", str(tmp_path / "x.jpg"))
    with pytest.raises(CommandError, match="colour"):
        call_command("render", str(labelled_image.pk), "--labels", "--color", "red", "--out", str(tmp_path / "x.jpg"))
    with pytest.raises(CommandError, match="no image with id"):
        call_command("render", "99999", "--labels", "--out", str(tmp_path / "x.jpg"))
    with pytest.raises(CommandError):
        call_command("render", str(labelled_image.pk), "--out", str(tmp_path / "x.jpg"))  # neither source


def test_render_command_with_a_model_on_a_photo_file(db, tmp_path, capsys):
    make_model_version(active=False)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg_bytes(hand_picture()))
    out = tmp_path / "out.jpg"
    call_command("render", str(photo), "--model", "tiny-tryon", "--color", "#00827F", "--finish", "metallic",
                 "--out", str(out))
    assert "from the model tiny-tryon" in capsys.readouterr().out
    assert read(out).shape == (180, 240, 3)


# ---------------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------------


def photo_upload(name="hand.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, jpeg_bytes(hand_picture()), content_type="image/jpeg")


def test_api_without_an_active_model_answers_409(client_for):
    client = client_for("annotator")
    response = client.post("/api/tryon/render", {"image": photo_upload(), "color": "#C8102E"}, format="multipart")
    assert response.status_code == 409
    assert response.json()["code"] == "no_active_model"
    assert "no active model" in response.json()["detail"]
    config = client.get("/api/tryon/config").json()
    assert config["active_model"] is None
    assert config["in_browser"]["available"] is False
    assert "TensorFlow.js export" in config["in_browser"]["reason"]
    assert "glossy" in config["finishes"] and len(config["palette"]) >= 8


def test_api_renders_a_photo_with_the_active_model(client_for):
    make_model_version()
    make_model_version("inactive-one", active=False)
    client = client_for("annotator")
    response = client.post("/api/tryon/render", {"image": photo_upload(), "color": "#c8102e", "finish": "matte"},
                           format="multipart")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["model"] == "tiny-tryon" and data["source"] == "model"
    assert data["color"] == "#C8102E" and data["finish"] == "matte"
    assert (data["width"], data["height"]) == (240, 180)
    assert data["image"].startswith("data:image/jpeg;base64,")
    assert isinstance(data["nails"], list)
    assert {"inference", "postprocess", "render"} <= set(data["timings_ms"])
    assert client.get("/api/tryon/config").json()["active_model"]["name"] == "tiny-tryon"

    jpeg = client.post("/api/tryon/render", {"image": photo_upload(), "format": "jpeg"}, format="multipart")
    assert jpeg.status_code == 200 and jpeg["Content-Type"] == "image/jpeg"
    assert jpeg.content[:3] == b"\xff\xd8\xff" and jpeg["X-Tryon-Model"] == "tiny-tryon"


def test_api_paints_platform_images_with_their_labels(client_for, labelled_image):
    client = client_for("reviewer")
    response = client.post("/api/tryon/render", {"image_id": labelled_image.pk, "source": "labels",
                                                 "color": "#1F2A44", "finish": "metallic"}, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["source"] == "labels" and data["model"] is None and len(data["nails"]) == 2
    assert data["nails"][0]["axis_source"] == "landmarks"
    # The model source for a platform image needs the active model.
    response = client.post("/api/tryon/render", {"image_id": labelled_image.pk}, format="json")
    assert response.status_code == 409


def test_api_refuses_bad_requests(client_for, labelled_image, users):
    from django.core.files.uploadedfile import SimpleUploadedFile

    make_model_version()
    client = client_for("annotator")
    for body, needle in [
        ({"image": photo_upload(), "color": "red"}, "colour must be #RRGGBB"),
        ({"image": photo_upload(), "finish": "sparkly"}, "sparkly"),
        ({"color": "#C8102E"}, "either a photo"),
        ({"image": photo_upload(), "image_id": labelled_image.pk}, "either a photo"),
        ({"image": photo_upload(), "source": "labels"}, "platform images only"),
        ({"image": SimpleUploadedFile("x.txt", b"hello, not a photo at all" * 3)}, "not a photo"),
    ]:
        response = client.post("/api/tryon/render", body, format="multipart")
        assert response.status_code == 400, (body, response.content)
        assert needle in response.content.decode(), (needle, response.content)
    assert client_for(None).post("/api/tryon/render", {"image": photo_upload()}, format="multipart").status_code == 401
    assert client_for("nobody").post("/api/tryon/render", {"image": photo_upload()},
                                     format="multipart").status_code == 403
    # An annotator sees no image assigned to someone else.
    Annotation.objects.filter(image=labelled_image).update(assignee=users["annotator2"])
    response = client.post("/api/tryon/render", {"image_id": labelled_image.pk, "source": "labels"}, format="json")
    assert response.status_code == 404


# ---------------------------------------------------------------------------------------------------
# Page
# ---------------------------------------------------------------------------------------------------


def test_page_says_how_it_renders(client, users):
    assert client.get("/tryon/").status_code == 302  # login first
    client.force_login(users["annotator"])
    page = client.get("/tryon/").content.decode()
    assert "No active model" in page
    assert "In-browser inference comes with the model&#x27;s TensorFlow.js export" in page or \
        "In-browser inference comes with the model's TensorFlow.js export" in page
    make_model_version()
    page = client.get("/tryon/").content.decode()
    assert "tiny-tryon" in page and "No active model" not in page
    client.force_login(users["nobody"])
    assert client.get("/tryon/").status_code == 403
