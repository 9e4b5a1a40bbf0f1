"""Core ML export: an ML program (.mlpackage, iOS 15+) with an image input, FP16 by default, FP32 on request;
parity proven by executing the SAVED package's MIL program op by op with PyTorch kernels
(ml/export/coreml_interpreter.py). Apple's Core ML runtime cannot run on Linux and is never run here."""
import io
import json
import zipfile

import numpy as np
import pytest
import torch
from django.core.management import call_command

from ml.export.module import ExportModule
from ml.export.photos import prepare_input, synthetic_photos
from ml.export.pipeline import export_model
from ml.export.coreml_interpreter import CoreMLInterpreter
from tests.export_support import expect_real_photos, make_model_version, tiny_model


@pytest.fixture(scope="module")
def fp32_export(tmp_path_factory):
    model, meta = tiny_model()
    out = tmp_path_factory.mktemp("coreml") / "fp32"
    document = export_model(model, "coreml", out, meta=meta, model_version="tiny-v1", precision="fp32", size="96x128")
    return model, out, document


def test_coreml_fp32_program_matches_pytorch_under_1e_4(fp32_export):
    _, out, document = fp32_export
    report = document["parity"]
    assert report["passed"] and report["goal"] == 1e-4 and report["max_abs_diff"] < 1e-4
    assert report["apple_runtime_run"] is False and "not run" in report["note"]
    run = report["runs"]["coreml-interpreter"]
    assert run["apple_runtime_run"] is False and "op by op" in run["runtime"]
    assert {"conv", "upsample_bilinear", "softmax", "sigmoid"} <= set(run["program_ops"])
    expect_real_photos(report)
    assert all(i["size"] == [96, 128] for i in report["images"])
    assert document["files"] == ["model.mlpackage"] and (out / "model.mlpackage" / "Manifest.json").is_file()


def test_the_default_presets_refined_shared_encoder_cascade_exports_to_coreml_with_parity(tmp_path):
    model, meta = tiny_model(preset="tiny-shared-refined")  # the default preset's model (one shared encoder)
    document = export_model(model, "coreml", tmp_path / "out", meta=meta, model_version="tiny-shared-refined-v1",
                            precision="fp32", size="96x128")
    report = document["parity"]
    assert report["passed"] and report["max_abs_diff"] < 1e-4
    assert "concat" in report["runs"]["coreml-interpreter"]["program_ops"]  # the refinement's skip join


def test_coreml_package_is_an_ml_program_with_an_image_input_and_metadata(fp32_export):
    _, out, document = fp32_export
    interp = CoreMLInterpreter(out / "model.mlpackage")
    spec = interp.spec
    assert spec.WhichOneof("Type") == "mlProgram" and spec.specificationVersion >= 6  # iOS 15
    assert interp.input_types() == {"image": "imageType"}
    image = spec.description.input[0].type.imageType
    assert (image.height, image.width) == (96, 128)
    assert [o.name for o in spec.description.output] == ["fg_prob", "class_prob", "field"]
    user = dict(spec.description.metadata.userDefined)
    assert user["nailset.model_version"] == "tiny-v1"
    assert json.loads(user["nailset"])["snapshot_content_hash"] == "c0ffee" * 10 + "abcd"
    metadata = document["metadata"]
    assert metadata["input"]["type"] == "image" and metadata["input"]["pixel_range"] == [0, 255]
    assert metadata["format_details"]["precision"] == "fp32" and metadata["format_details"]["model_type"] == "mlProgram"


def test_the_interpreter_reads_the_saved_weights_and_is_not_vacuous(fp32_export):
    model, out, _ = fp32_export
    interp = CoreMLInterpreter(out / "model.mlpackage")
    # the first conv's weight as read back from weight.bin is the folded PyTorch weight
    first_conv = next(op for op in interp.operations if op.op_type == "conv")
    saved = interp._consts[first_conv.inputs["weight"].name].float()
    folded = ExportModule(model).model.low.stages[0].conv
    expected = getattr(folded, "w44", None) if hasattr(folded, "w44") else folded.weight
    assert saved.shape == expected.shape and torch.allclose(saved, expected, atol=1e-6)
    # the interpreter's output moves when a saved weight does (so matching PyTorch means something)
    x = prepare_input(synthetic_photos(1)[0], (96, 128)) * np.float32(255)
    before = interp.run({"image": x})
    interp._consts[first_conv.inputs["weight"].name] = -saved
    after = interp.run({"image": x})
    assert max(np.abs(before[k] - after[k]).max() for k in before) > 1e-3


@pytest.mark.django_db
def test_export_command_coreml_fp16_by_default_under_1e_2():
    from ml.export.coreml_interpreter import _var_dtype
    from training.exports.core import artifact_folder
    from training.models import ModelArtifact

    version = make_model_version()
    out = io.StringIO()
    call_command("export_model", version.name, "--format", "coreml", "--size", "64x96", stdout=out)
    artifact = ModelArtifact.objects.get()
    assert artifact.format == "coreml" and artifact.variant == "fp16"
    assert artifact.options == {"precision": "fp16", "size": "64x96"}
    assert artifact.metadata["format_details"]["precision"] == "fp16"
    assert artifact.passed and artifact.parity["goal"] == 1e-2 and artifact.parity["max_abs_diff"] < 1e-2
    assert artifact.parity["max_abs_diff"] > 1e-6  # it really ran in fp16
    assert artifact.parity["apple_runtime_run"] is False
    assert "compute precision fp16" in artifact.parity["runs"]["coreml-interpreter"]["runtime"]
    interp = CoreMLInterpreter(artifact_folder(artifact) / "model.mlpackage")
    conv_dtypes = {_var_dtype(v) for op in interp.operations if op.op_type == "conv" for v in op.outputs}
    assert conv_dtypes == {torch.float16}  # the program computes in fp16, and the interpreter follows it
    assert "model.mlpackage/Manifest.json" in zipfile.ZipFile(artifact.file.path).namelist()
