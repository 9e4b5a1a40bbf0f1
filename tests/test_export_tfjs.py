"""TensorFlow.js export: the conversion runs in the export environment (.venv-export, `make export-env`,
which `make test` and so .ci/run create), the graph model is checked in TensorFlow and in headless
Chromium (tfjs cpu and webgl backends) by the export job, and then loaded in Chromium from the platform's
own page, which gives the same outputs as PyTorch (max abs diff < 1e-3) and records them."""
import io
import json
import re
import zipfile

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from ml.export.browser import TFJS_JS
from ml.export.tfjs_driver import DEFAULT_EXPORT_PYTHON, export_python
from tests.browser import login, watched_page
from tests.conftest import jpeg_bytes, make_user
from tests.export_support import expect_real_photos, make_model_version
from tests.test_tryon import hand_picture

pytestmark = pytest.mark.django_db(transaction=True)
GOAL = 1e-3


def require_export_tools():
    """Never skipped: without the export environment or the TF.js build the suite must fail loudly."""
    try:
        export_python()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"{exc} (expected {DEFAULT_EXPORT_PYTHON}; `make test` creates it)")
    if not TFJS_JS.exists():
        pytest.fail(f"{TFJS_JS} is missing: `make tfjs` (a dependency of `make test`) puts it there")


def test_tfjs_export_runs_in_chromium_with_pytorchs_outputs(browser, live_server, tmp_path):
    from training.exports.core import artifact_folder
    from training.models import ModelArtifact
    from tryon.rendering import tfjs_export

    require_export_tools()
    version = make_model_version("tfjs-tiny")
    out = io.StringIO()
    call_command("export_model", version.name, "--format", "tfjs", stdout=out)
    artifact = ModelArtifact.objects.get(format="tfjs")
    report = artifact.parity
    assert artifact.passed, json.dumps(report, indent=1)[:3000]
    expect_real_photos(report)

    # the job's own checks: TensorFlow (the converted graph) and TF.js in headless Chromium, both backends
    runs = report["runs"]
    assert {"tensorflow-savedmodel", "chromium-cpu", "chromium-webgl"} <= set(runs)
    for key in ("tensorflow-savedmodel", "chromium-cpu", "chromium-webgl"):
        assert runs[key]["max_abs_diff"] < GOAL, (key, runs[key])
        assert runs[key]["latency_ms"], key
    assert "webgl" in runs["chromium-webgl"]["runtime"] and "4.22.0" in runs["chromium-cpu"]["runtime"]
    assert report["tfjs_runtime_checked"] is True and report["max_abs_diff"] < GOAL

    # the artifact: a graph model (not the Keras layers format) with explicitly mapped output names
    folder = artifact_folder(artifact)
    model_json = json.loads((folder / "model.json").read_text())
    assert model_json["format"] == "graph-model"
    details = artifact.metadata["format_details"]
    assert set(details["output_nodes"]) == {"fg_prob", "class_prob", "field"}
    assert "ResizeBilinear" in details["graph_ops"] and "tfjs_graph_model" in details["converter"]
    assert artifact.metadata["input"]["layout"] == "NHWC"
    assert (folder / "parity-reference" / "reference.bin").is_file()
    names = zipfile.ZipFile(artifact.file.path).namelist()
    assert "model.json" in names and any(n.endswith(".bin") for n in names)
    assert not any(n.startswith("parity-reference") for n in names)

    # the try-on page's hook now offers the artifact for in-browser inference
    version.is_active = True
    version.save()
    hook = tfjs_export(version)
    assert hook["artifact"] == artifact.pk and hook["model_url"].endswith("/files/model.json")
    assert hook["output_nodes"] == details["output_nodes"] and hook["size_multiple"] == 32

    # the platform's own page loads the artifact and TF.js (served locally) and checks both backends
    make_user("checker", "reviewer")
    page, errors, requests = watched_page(browser)
    login(page, live_server.url, "checker", "checker-password-123")
    page.goto(f"{live_server.url}/models/{version.name}/exports/")
    expect(page.locator(f"section[data-artifact='{artifact.pk}'] .max-diff")).to_be_visible()
    page.click("text=run it in this browser")
    expect(page.locator("#status")).to_have_attribute("data-state", "done", timeout=240_000)
    result = page.evaluate("window.nailsetTfjsResult")
    for backend in ("cpu", "webgl"):
        run = result["runs"][f"browser-{backend}"]
        assert run.get("error") is None and run["max_abs_diff"] < GOAL, run
        assert set(run["outputs"]) == {"fg_prob", "class_prob", "field"}
    expect(page.locator("tr[data-run='browser-webgl'] td.pass")).to_have_text("under the goal")
    assert all(u.startswith(live_server.url) for u in requests), [u for u in requests if not u.startswith(live_server.url)]
    assert any(u.endswith("/static/tfjs/tf.min.js") for u in requests)

    # the try-on page runs the active model's TF.js artifact in the browser on an uploaded photo
    photo = tmp_path / "hand.jpg"
    photo.write_bytes(jpeg_bytes(hand_picture(480, 360)))
    page.goto(f"{live_server.url}/tryon/")
    expect(page.locator("#engine-note")).to_contain_text("runs in this browser")
    page.set_input_files("#photo", str(photo))
    expect(page.locator("#inbrowser")).to_have_attribute("data-state", "done", timeout=120_000)
    expect(page.locator("#inbrowser-note")).to_contain_text(re.compile(r"webgl backend, \d+ ms at 128x96 px"))
    expect(page.locator("#nail-count")).to_have_text(re.compile(r"^\d+ nails? found$"), timeout=60_000)
    assert all(u.startswith(live_server.url) or u.startswith(("blob:", "data:")) for u in requests)
    assert not errors, errors
    page.context.close()

    artifact.refresh_from_db()
    assert {"browser-cpu", "browser-webgl"} <= set(artifact.parity["runs"])
    assert artifact.passed and artifact.parity["max_abs_diff"] < GOAL


def test_the_default_presets_refined_shared_encoder_cascade_converts_to_tfjs_with_parity(tmp_path):
    from ml.export.pipeline import export_model
    from tests.export_support import tiny_model

    require_export_tools()
    model, meta = tiny_model(preset="tiny-shared-refined")  # the default preset's model (one shared encoder)
    document = export_model(model, "tfjs", tmp_path / "out", meta=meta, browser=False)
    run = document["parity"]["runs"]["tensorflow-savedmodel"]
    assert document["parity"]["passed"] and run["max_abs_diff"] < GOAL, run
    assert "ConcatV2" in document["metadata"]["format_details"]["graph_ops"]  # the refinement's skip join


def test_without_the_export_environment_the_export_says_how_to_get_it(monkeypatch, tmp_path):
    from ml.export.pipeline import export_model
    from ml.export.spec import ExportError
    from tests.export_support import tiny_model

    monkeypatch.setenv("NAILSET_EXPORT_PYTHON", str(tmp_path / "missing" / "python"))
    model, meta = tiny_model()
    with pytest.raises(ExportError, match="make export-env"):
        export_model(model, "tfjs", tmp_path / "out", meta=meta)
