"""`manage.py train` on a small snapshot: a real job through the same code as the training workers."""
import math
from io import StringIO

import numpy as np
import pytest
import torch
from django.core.management import CommandError, call_command
from PIL import Image as PILImage
from PIL import ImageDraw

from curation.snapshots import build_snapshot
from labeling.annotations import import_annotation
from labeling.intake import create_image
from labeling.models import Participant
from training.models import ModelVersion, TrainingRun


def ellipse(cx, cy, rx, ry, angle, n=16):
    c, s = math.cos(angle), math.sin(angle)
    return [[round(cx + rx * math.cos(t) * c - ry * math.sin(t) * s, 2), round(cy + rx * math.cos(t) * s + ry * math.sin(t) * c, 2)]
            for t in np.linspace(0, 2 * math.pi, n, endpoint=False)]


def nail_snapshot(name="nails", participants=6, per_participant=3, size=64, seed=0):
    """Skin-coloured images with visible pink nails; labels with fingers and base/tip landmarks."""
    rng = np.random.default_rng(seed)
    for p in range(participants):
        person = Participant.objects.create(code=f"N{seed}-{p:02d}")
        for i in range(per_participant):
            picture = PILImage.new("RGB", (size, size), tuple(int(v) for v in rng.integers(150, 210, 3)))
            draw = ImageDraw.Draw(picture)
            nails = []
            for k in range(2):
                cx, cy = rng.uniform(14, size - 14), rng.uniform(14, size - 14)
                angle = rng.uniform(0, math.pi)
                polygon = ellipse(cx, cy, 9, 5, angle)
                draw.polygon([tuple(pt) for pt in polygon], fill=(220, 40, 120))
                dx, dy = 6 * math.cos(angle), 6 * math.sin(angle)
                nails.append({"polygon": polygon, "finger": 2 + 5 * k, "base": [round(cx - dx, 2), round(cy - dy, 2)],
                              "tip": [round(cx + dx, 2), round(cy + dy, 2)]})
            image, _ = create_image(person, picture, "PNG")
            import_annotation(image, {"nails": nails}, status="accepted", note="synthetic")
    return build_snapshot(name, seed=seed)


@pytest.mark.django_db
def test_train_command_fits_a_small_snapshot_and_registers_a_model():
    nail_snapshot()
    out = StringIO()
    call_command("train", "--snapshot", "nails", "--preset", "tiny", "--epochs", "2", stdout=out)
    run = TrainingRun.objects.get()
    assert len(run.history) == 2 and run.job.status == "succeeded" and run.job.queue == "training"
    first, last = run.history[0], run.history[-1]
    assert last["train_loss"] < first["train_loss"]  # it learns
    version = ModelVersion.objects.get(run=run)
    assert version.weights.size > 0 and version.snapshot_content_hash == run.snapshot.content_hash
    assert "miou" in version.metrics and f"-> model {version.name}" in out.getvalue()
    assert run.job.result["keep"] == "best-val" and "kept the best val epoch" in out.getvalue()


@pytest.mark.django_db
def test_a_run_that_keeps_the_last_epoch_registers_the_last_epochs_weights_and_metrics():
    """The CPU presets keep the last epoch (``TrainConfig.keep``): the model version holds that epoch's weights
    and its val metrics, and the job and the command say which epoch was kept."""
    from ml.checkpoint import load_checkpoint

    nail_snapshot()
    out = StringIO()
    call_command("train", "--snapshot", "nails", "--preset", "tiny", "--epochs", "3", "--set", '{"keep": "last"}',
                 stdout=out)
    run = TrainingRun.objects.get()
    version = ModelVersion.objects.get(run=run)
    result = run.job.result
    assert result["keep"] == "last" and result["kept_epoch"] == 3 == len(run.history)
    assert version.metrics == result["kept_metrics"] == run.history[-1]["val"]
    with version.weights.open("rb") as fh:
        saved = torch.load(fh, map_location="cpu", weights_only=True)
    assert saved["epoch"] == 3 and saved["config"]["keep"] == "last"
    said = out.getvalue().split("kept the last epoch, 3; its val: ", 1)[1].splitlines()[0]  # keys in the DB's order
    assert f"miou {result['kept_metrics']['miou']:.4f}" in said.split(", ")


@pytest.mark.django_db
def test_evaluate_predict_commands_api_and_pages(client_for, users, tmp_path):
    nail_snapshot()
    call_command("train", "--snapshot", "nails", "--preset", "tiny", "--epochs", "1", stdout=StringIO())
    version = ModelVersion.objects.get()
    out = StringIO()
    call_command("evaluate", version.name, "--snapshot", "nails", "--split", "val", "--sizes", "64", stdout=out)
    assert "mIoU" in out.getvalue() and "    64" in out.getvalue()
    photo = tmp_path / "hand.png"
    PILImage.new("RGB", (80, 60), (180, 150, 140)).save(photo)
    out = StringIO()
    call_command("predict", version.name, str(photo), "--out", str(tmp_path / "pred"), stdout=out)
    classes = np.asarray(PILImage.open(tmp_path / "pred" / "hand.classes.png"))
    assert classes.shape == (60, 80) and classes.max() <= 10 and (tmp_path / "pred" / "hand.fg.png").exists()
    out = StringIO()  # flip test-time augmentation as an option of both commands
    call_command("evaluate", version.name, "--snapshot", "nails", "--split", "val", "--sizes", "64", "--tta", "flip",
                 stdout=out)
    assert "(flip TTA)" in out.getvalue() and "    64" in out.getvalue()
    call_command("predict", version.name, str(photo), "--out", str(tmp_path / "flip"), "--tta", "flip", stdout=StringIO())
    assert np.asarray(PILImage.open(tmp_path / "flip" / "hand.classes.png")).shape == (60, 80)
    for command in (["evaluate", version.name, "--snapshot", "nails"], ["predict", version.name, str(photo), "--out",
                                                                         str(tmp_path / "bad")]):
        with pytest.raises(CommandError, match="invalid choice: 'mirror'"):
            call_command(*command, "--tta", "mirror", stdout=StringIO())
    assert not (tmp_path / "bad").exists()
    reviewer, admin = client_for("reviewer"), client_for("admin")
    run = reviewer.get("/api/training-runs/").json()["results"][0]
    assert len(run["history"]) == 1 and run["model_version"] == version.name and run["job"]["status"] == "succeeded"
    assert reviewer.get(f"/api/model-versions/{version.pk}/").json()["metrics"]["miou"] >= 0
    assert reviewer.post("/api/training-runs/", {"snapshot": "nails"}, format="json").status_code == 403
    started = admin.post("/api/training-runs/", {"snapshot": "nails", "preset": "tiny", "epochs": 1}, format="json")
    assert started.status_code == 202 and started.json()["queue"] == "training"
    assert admin.post("/api/training-runs/", {"snapshot": "ghost"}, format="json").status_code == 400
    from django.test import Client

    pages = Client()
    pages.force_login(users["admin"])
    listing = pages.get("/training/")
    assert listing.status_code == 200 and version.name.encode() in listing.content and b"Train a model" in listing.content
    assert pages.get(f"/training/runs/{run['id']}/").status_code == 200
    pages.force_login(users["annotator"])
    assert pages.get("/training/").status_code == 403


@pytest.mark.django_db
def test_train_command_refuses_bad_arguments():
    with pytest.raises(CommandError, match="no ready snapshot named 'ghost'"):
        call_command("train", "--snapshot", "ghost", stdout=StringIO())
    nail_snapshot("small", participants=2, per_participant=1)
    with pytest.raises(CommandError, match="training settings are not valid"):
        call_command("train", "--snapshot", "small", "--set", '{"model": {"arch": "transformer"}}', stdout=StringIO())


@pytest.mark.django_db
def test_ablation_command_trains_every_row_with_the_same_budget_and_prints_the_table():
    nail_snapshot()
    out = StringIO()
    call_command("ablation", "--snapshot", "nails", "--preset", "tiny", "--epochs", "1", stdout=out)
    runs = list(TrainingRun.objects.order_by("pk"))
    assert [(r.config["model"]["arch"], r.config["loss"]["fg_loss"]) for r in runs] == [
        ("baseline", "weighted"), ("baseline", "lmp"), ("cascade", "lmp")]
    assert {r.config["epochs"] for r in runs} == {1} and len({r.config["steps_per_epoch"] for r in runs}) == 1
    table = out.getvalue().split("| model |", 1)[1]
    for label, paper in (("baseline (weighted NLL, no cascade)", "91.3"), ("+ LMP", "93.3"), ("+ cascade", "94.5")):
        row = next(line for line in table.splitlines() if line.startswith(f"| {label} |"))
        miou = float(row.split("|")[3])
        assert 0 <= miou <= 100 and row.rstrip(" |").endswith(paper)
    with pytest.raises(CommandError, match="no ready snapshot 'missing'"):
        call_command("ablation", "--snapshot", "missing")
