"""Jobs started over the API read only below NAILSET_IMPORT_DIR and write only below NAILSET_EXPORT_DIR
(issue #13, row 8); management commands keep free paths."""
import json
from io import StringIO

import pytest
from django.core.management import call_command

from curation.snapshots import build_snapshot
from jobs.models import Job
from jobs.registry import JOB_KINDS
from jobs.runner import execute_job
from tests.conftest import jpeg_bytes, synthetic_picture
from tests.test_snapshots import labelled_dataset


@pytest.fixture
def folders(settings, tmp_path):
    settings.NAILSET_IMPORT_DIR = tmp_path / "imports"
    settings.NAILSET_EXPORT_DIR = tmp_path / "exports"
    for folder in (settings.NAILSET_IMPORT_DIR, settings.NAILSET_EXPORT_DIR, tmp_path / "elsewhere"):
        folder.mkdir()
    return settings.NAILSET_IMPORT_DIR, settings.NAILSET_EXPORT_DIR, tmp_path / "elsewhere"


def start(client, kind, arguments):
    return client.post("/api/jobs/", {"kind": kind, "arguments": arguments}, format="json")


def test_the_import_and_export_folders_exist_from_the_start():
    from django.conf import settings

    assert settings.NAILSET_IMPORT_DIR.is_dir() and settings.NAILSET_EXPORT_DIR.is_dir()
    assert settings.NAILSET_IMPORT_DIR.is_absolute() and settings.NAILSET_EXPORT_DIR.is_absolute()


def test_an_export_over_the_api_cannot_write_outside_the_export_folder(db, client_for, folders):
    _, exports, elsewhere = folders
    labelled_dataset(2, 1)
    build_snapshot("snap")
    (exports / "escape").symlink_to(elsewhere, target_is_directory=True)
    admin = client_for("admin")
    for out in (str(elsewhere / "loot"), "../elsewhere/loot", "escape/loot", "/any/path"):
        response = start(admin, "export_snapshot", {"snapshot": "snap", "format": "coco", "out": out})
        assert response.status_code == 400, (out, response.json())
        assert response.json()["detail"].startswith(f"out: {out} is outside the server's export folder {exports}")
    assert Job.objects.count() == 0 and list(elsewhere.iterdir()) == []


def test_a_relative_export_path_is_taken_from_the_export_folder_and_written_there(db, client_for, folders):
    _, exports, _ = folders
    labelled_dataset(2, 1)
    build_snapshot("snap")
    response = start(client_for("admin"), "export_snapshot", {"snapshot": "snap", "format": "coco", "out": "coco/snap"})
    assert response.status_code == 202, response.json()
    job = Job.objects.get(pk=response.json()["id"])
    assert job.arguments["out"] == str(exports / "coco" / "snap")
    done = execute_job(job.pk)  # in this process: the message stays for a worker, which will find it done
    assert done.status == "succeeded", done.error
    assert (exports / "coco" / "snap").is_dir() and any((exports / "coco" / "snap").rglob("*.json"))


@pytest.mark.parametrize("argument", ["path", "images_dir", "participants_csv"])
def test_an_import_over_the_api_cannot_read_outside_the_import_folder(db, client_for, folders, argument):
    imports, _, elsewhere = folders
    (imports / "labels.json").write_text("{}")
    (elsewhere / "x.csv").write_text("file_name,participant\n")
    arguments = {"format": "coco", "path": "labels.json", argument: str(elsewhere / "x.csv")}
    response = start(client_for("admin"), "import_labels", arguments)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{argument}: {elsewhere / 'x.csv'} is outside the server's import folder {imports}")
    assert Job.objects.count() == 0


def test_an_import_over_the_api_reads_inside_the_import_folder(db, client_for, folders):
    imports, _, _ = folders
    (imports / "batch").mkdir()
    (imports / "batch" / "hand.jpg").write_bytes(jpeg_bytes(synthetic_picture(80, 60)))
    (imports / "batch" / "labels.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "hand.jpg", "width": 80, "height": 60}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]}],
        "categories": [{"id": 1, "name": "nail"}]}))
    response = start(client_for("admin"), "import_labels", {"format": "coco", "path": "batch", "participant": "P9"})
    assert response.status_code == 202, response.json()
    job = execute_job(response.json()["id"])
    assert job.status == "succeeded" and job.arguments["path"] == str(imports / "batch")
    assert job.result["labelled"] == 1 and job.result["failed_files"] == []


def test_media_import_and_training_weights_are_confined_too(db, client_for, participant, folders):
    imports, _, elsewhere = folders
    (imports / "photos").mkdir()
    admin = client_for("admin")
    response = start(admin, "import_media", {"participant": participant.code, "paths": ["photos", str(elsewhere)]})
    assert response.status_code == 400 and response.json()["detail"].startswith(f"paths: {elsewhere} is outside")
    for arguments in ({"snapshot": "s", "pretrained": "/root/weights.pt"},
                      {"snapshot": "s", "overrides": {"model": {"weights_path": "../../weights.pt"}}}):
        response = start(admin, "train", arguments)
        assert response.status_code == 400 and "is outside the server's import folder" in response.json()["detail"]
    assert Job.objects.count() == 0
    response = start(admin, "import_media", {"participant": participant.code, "paths": ["photos"]})
    assert response.status_code == 202 and Job.objects.get().arguments["paths"] == [str(imports / "photos")]


def test_every_job_kind_with_path_arguments_declares_them():
    declared = {name: (kind.reads, kind.writes) for name, kind in JOB_KINDS.items() if kind.reads or kind.writes}
    assert declared == {
        "import_labels": (("path", "images_dir", "participants_csv"), ()),
        "export_snapshot": ((), ("out",)),
        "import_media": (("paths",), ()),
        "train": (("pretrained", "overrides.model.weights_path"), ()),
    }


def test_management_commands_keep_free_paths(db, folders, tmp_path):
    labelled_dataset(2, 1)
    build_snapshot("snap")
    out = tmp_path / "elsewhere" / "coco"
    call_command("export_snapshot", "snap", "--format", "coco", "--out", str(out), stdout=StringIO())
    assert any(out.rglob("*.json"))
