"""Pre-labeling builds on labeling by registration only (labeling/extensions.py, from prelabel/apps.py): the
ingest job runs the registered after-ingest hooks, the annotation page loads the registered scripts, and
labeling's code and templates name no prelabel module."""
from pathlib import Path

from jobs.runner import execute_job
from labeling import extensions
from labeling.models import Image
from prelabel.auto import prelabel_new_images
from tests.conftest import jpeg_bytes, send_upload, synthetic_picture
from tests.test_architecture import imports_of

LABELING = Path(__file__).resolve().parent.parent / "labeling"


def test_prelabel_registers_its_hook_and_its_script():
    assert prelabel_new_images in extensions.after_ingest_hooks()
    assert extensions.annotate_scripts() == ["prelabel/opened.js"]


def test_labeling_names_no_prelabel_module():
    imports = [f"{path.relative_to(LABELING)}:{line}" for path in sorted(LABELING.rglob("*.py"))
               for module, line in imports_of(path) if module.split(".")[0] == "prelabel"]
    templates = [str(path.relative_to(LABELING)) for path in sorted(LABELING.rglob("*.html"))
                 if "prelabel/" in path.read_text(encoding="utf-8")]
    assert not imports and not templates, f"labeling names prelabel: {imports + templates}"


def test_the_ingest_job_runs_the_after_ingest_hooks_with_the_new_images(token_client, monkeypatch,
                                                                         django_capture_on_commit_callbacks):
    seen = []

    def record(image_ids, log=None):
        seen.append(list(image_ids))
        log("recorded by the test's hook")

    monkeypatch.setattr(extensions, "_after_ingest", [])  # only this test's hook, for the length of the test
    extensions.register_after_ingest(record)
    extensions.register_after_ingest(record)  # twice: still called once
    response = send_upload(token_client, jpeg_bytes(synthetic_picture(80, 60)))
    assert response.status_code == 201, response.json()
    with django_capture_on_commit_callbacks(execute=True):
        job = execute_job(int(response["X-Job-Id"]))
    assert job.status == "succeeded", job.error
    assert seen == [list(Image.objects.filter(upload_id=response.json()["id"]).values_list("pk", flat=True))]
    assert seen[0] and "recorded by the test's hook" in job.log


def test_the_annotation_page_loads_the_registered_scripts(client, users, make_image):
    image = make_image()
    client.force_login(users["annotator"])
    html = client.get(f"/annotate/{image.pk}/").content.decode()
    assert '<script type="module" src="/static/labeling/annotate.js">' in html
    assert '<script type="module" src="/static/prelabel/opened.js">' in html
