"""ONNX export: parity with PyTorch through onnxruntime on real photos, dynamic sizes, the metadata block;
the export job through `manage.py export_model`, the stored artifact, its API and its page."""
import io
import json
import zipfile

import numpy as np
import onnx
import pytest
import torch
from django.core.management import call_command

from ml.export.metadata import FINGER_NAMES
from ml.export.module import ExportModule
from ml.export.onnx import OnnxRunner
from ml.export.pipeline import export_model
from ml.export.registry import EXPORT_FORMATS, export_format, get_export_format
from ml.export.spec import METADATA_FILE, ExportError
from tests.export_support import expect_real_photos, make_model_version, tiny_model


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    model, meta = tiny_model()
    out = tmp_path_factory.mktemp("onnx") / "artifact"
    document = export_model(model, "onnx", out, meta=meta, model_version="tiny-v1")
    return model, out, document


def test_onnx_parity_on_real_photos_is_under_1e_4(onnx_export):
    _, out, document = onnx_export
    report = document["parity"]
    assert report["passed"] and report["goal"] == 1e-4
    assert report["max_abs_diff"] < 1e-4
    assert set(report["outputs"]) == {"fg_prob", "class_prob", "field"}
    run = report["runs"]["onnxruntime-cpu"]
    assert "onnxruntime" in run["runtime"] and run["latency_ms"] and all(v > 0 for v in run["latency_ms"].values())
    assert len(run["per_image"]) == len(report["images"]) >= 2
    expect_real_photos(report)
    assert document["files"] == ["model.onnx"] and document["size_bytes"] == (out / "model.onnx").stat().st_size
    assert json.loads((out / METADATA_FILE).read_text()) == document


def test_onnx_graph_names_dynamic_sizes_and_batch(onnx_export):
    model, out, _ = onnx_export
    graph = onnx.load(str(out / "model.onnx"))
    assert [i.name for i in graph.graph.input] == ["image"]
    assert [o.name for o in graph.graph.output] == ["fg_prob", "class_prob", "field"]
    dims = [d.dim_param or d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    runner = OnnxRunner(out / "model.onnx")
    reference = ExportModule(model, fold=False)
    rng = np.random.default_rng(1)
    for shape in [(1, 3, 64, 96), (2, 3, 160, 96), (1, 3, 224, 320)]:
        x = rng.random(shape, dtype=np.float32)
        got = runner(x)
        with torch.no_grad():
            want = [t.numpy() for t in reference(torch.from_numpy(x))]
        for name, w in zip(("fg_prob", "class_prob", "field"), want):
            assert got[name].shape == w.shape
            assert np.abs(got[name] - w).max() < 1e-4, (shape, name)
    # probabilities: the class softmax sums to one per pixel
    assert np.allclose(got["class_prob"].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("preset", ["tiny-refined", "tiny-shared-refined"])
def test_refined_cascade_exports_to_onnx_with_parity(tmp_path, preset):
    model, meta = tiny_model(preset=preset)
    document = export_model(model, "onnx", tmp_path / "out", meta=meta, model_version=f"{preset}-v1")
    assert document["parity"]["passed"] and document["parity"]["max_abs_diff"] < 1e-4
    ops = {node.op_type for node in onnx.load(str(tmp_path / "out" / "model.onnx")).graph.node}
    assert "Concat" in ops  # the refinement's skip join is in the graph


def test_onnx_metadata_block(onnx_export):
    _, out, document = onnx_export
    metadata = document["metadata"]
    assert metadata["model_version"] == "tiny-v1"
    assert metadata["snapshot_content_hash"] == "c0ffee" * 10 + "abcd"
    assert metadata["input"]["name"] == "image" and metadata["input"]["size_multiple"] == 32
    assert metadata["input"]["layout"] == "NCHW" and metadata["input"]["range"] == [0.0, 1.0]
    assert metadata["input"]["normalization"]["mean"] == [0.485, 0.456, 0.406]  # no pretrained source: torchvision's
    assert [o["name"] for o in metadata["outputs"]] == ["fg_prob", "class_prob", "field"]
    assert metadata["label_map"]["class_prob"]["0"] == {"class": 1, "name": "left thumb"}
    assert metadata["label_map"]["class_prob"]["9"] == {"class": 10, "name": "right little"}
    assert metadata["format_details"]["opset"] == 17 and metadata["format_details"]["dynamic_shapes"]
    graph = onnx.load(str(out / "model.onnx"))
    embedded = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(embedded["nailset"])["snapshot_content_hash"] == metadata["snapshot_content_hash"]


def test_label_map_is_the_platforms():
    from dataset.geometry import FINGER_NAMES as PLATFORM

    assert FINGER_NAMES == PLATFORM


@pytest.mark.django_db
def test_export_command_stores_the_artifact_with_the_model(tmp_path, client_for):
    from training.models import ModelArtifact

    version = make_model_version()
    out = io.StringIO()
    call_command("export_model", version.name, "--format", "onnx", "--out", str(tmp_path / "copy"), stdout=out)
    artifact = ModelArtifact.objects.get()
    assert artifact.model_version == version and artifact.format == "onnx" and artifact.passed
    assert artifact.job.kind == "export_model" and artifact.job.queue == "export" and artifact.job.status == "succeeded"
    assert artifact.parity["max_abs_diff"] < 1e-4 and artifact.size_bytes > 0
    assert artifact.metadata["model_version"] == version.name
    assert artifact.metadata["snapshot_content_hash"] == version.snapshot_content_hash
    assert "parity vs PyTorch: max abs diff" in out.getvalue()
    assert (tmp_path / "copy" / "model.onnx").is_file() and (tmp_path / "copy" / METADATA_FILE).is_file()
    with zipfile.ZipFile(artifact.file.path) as zf:
        assert sorted(zf.namelist()) == ["model.onnx", METADATA_FILE]

    reviewer = client_for("reviewer")
    listing = reviewer.get(f"/api/model-artifacts/?model_version={version.name}").json()
    assert listing["count"] == 1 and listing["results"][0]["parity"]["passed"]
    response = reviewer.get(f"/api/model-artifacts/{artifact.pk}/download/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).read("model.onnx")
    assert client_for("annotator").get("/api/model-artifacts/").status_code == 403
    assert client_for("annotator").get(f"/api/model-artifacts/{artifact.pk}/files/model.onnx").status_code == 200
    assert reviewer.get(f"/api/model-artifacts/{artifact.pk}/files/../../model.pt").status_code == 404
    assert client_for(None).get(f"/api/model-artifacts/{artifact.pk}/download/").status_code in (401, 403)

    # starting an export through the API: admins only, checked arguments, a job on the export queue
    assert reviewer.post("/api/model-artifacts/", {"model_version": version.name, "format": "onnx"},
                         format="json").status_code == 403
    admin = client_for("admin")
    bad = admin.post("/api/model-artifacts/", {"model_version": version.name, "format": "onnx", "precision": "fp32"},
                     format="json")
    assert bad.status_code == 400 and "coreml" in bad.json()["detail"]
    assert admin.post("/api/model-artifacts/", {"model_version": "nope", "format": "onnx"}, format="json").status_code == 400
    started = admin.post("/api/model-artifacts/", {"model_version": version.name, "format": "coreml", "size": "64x96"},
                         format="json")
    assert started.status_code in (202, 503)  # 503: no broker reachable in this run
    if started.status_code == 202:
        assert started.json()["kind"] == "export_model" and started.json()["queue"] == "export"


@pytest.mark.django_db
def test_model_exports_page_shows_the_parity_report(client, users):
    from training.exports.core import export_version

    version = make_model_version("page-model")
    artifact = export_version(version, "onnx")
    client.force_login(users["reviewer"])
    html = client.get(f"/models/{version.name}/exports/").content.decode()
    assert f'data-artifact="{artifact.pk}"' in html and "onnxruntime-cpu" in html
    assert "parity under the goal" in html and f"/api/model-artifacts/{artifact.pk}/download/" in html
    assert "Apple's runtime does not run here" in html
    client.force_login(users["annotator"])
    assert client.get(f"/models/{version.name}/exports/").status_code == 403


def test_every_export_format_is_registered_and_the_names_read_without_torch(tmp_path):
    """export_model looks the format up in the registry; EXPORT_FORMATS (what apps offer) names exactly
    the registered formats and reads without importing PyTorch."""
    import subprocess
    import sys
    from pathlib import Path

    assert [get_export_format(name).name for name in EXPORT_FORMATS] == list(EXPORT_FORMATS)
    assert get_export_format("onnx").run.__module__ == "ml.export.onnx"
    with pytest.raises(ExportError, match="format must be one of onnx, coreml, tfjs"):
        get_export_format("tflite")
    with pytest.raises(ExportError, match="format must be one of"):
        export_model(tiny_model()[0], "tflite", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="not one of EXPORT_FORMATS"):
        export_format("tflite")
    code = ("import sys; from ml.export.registry import EXPORT_FORMATS; from ml.export.spec import parse_size; "
            "assert 'torch' not in sys.modules; print(','.join(EXPORT_FORMATS))")
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "onnx,coreml,tfjs"
