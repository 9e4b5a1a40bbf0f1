"""Pages of model exports: a model version's artifacts with their parity reports (and, for admins, a form
to export), and the TF.js page that runs a TF.js artifact in this browser (cpu and webgl backends)."""
import json

from django.shortcuts import get_object_or_404, render

from accounts.decorators import role_required
from ml.export.registry import EXPORT_FORMATS
from accounts.roles import ADMIN, REVIEWER, role_of

from ..models import ModelArtifact, ModelVersion


def _rows(artifact: ModelArtifact) -> list[dict]:
    """One row per parity run of an artifact, for the page's table."""
    rows = []
    for key, run in (artifact.parity.get("runs") or {}).items():
        latency = run.get("latency_ms") or {}
        rows.append({"key": key, "runtime": run.get("runtime", ""), "max_abs_diff": run.get("max_abs_diff"),
                     "outputs": run.get("outputs") or {}, "error": run.get("error"),
                     "latency": ", ".join(f"{size}: {ms:.1f} ms" for size, ms in latency.items()),
                     "interpreter_ms": run.get("interpreter_ms")})
    return rows


@role_required(ADMIN, REVIEWER)
def model_exports_page(request, name: str):
    version = get_object_or_404(ModelVersion, name=name)
    artifacts = list(version.artifacts.all())
    return render(request, "training/model_exports.html", {
        "version": version, "is_admin": role_of(request.user) == ADMIN, "formats": EXPORT_FORMATS.items(),
        "artifacts": [{"artifact": a, "runs": _rows(a), "metadata_json": json.dumps(a.metadata, indent=1)}
                      for a in artifacts],
    })


@role_required(ADMIN, REVIEWER)
def tfjs_check_page(request, name: str, artifact_id: int):
    artifact = get_object_or_404(ModelArtifact.objects.select_related("model_version"), pk=artifact_id,
                                 model_version__name=name, format="tfjs")
    details = artifact.metadata.get("format_details") or {}
    config = {
        "artifact": artifact.pk,
        "modelUrl": f"/api/model-artifacts/{artifact.pk}/files/model.json",
        "referenceUrl": f"/api/model-artifacts/{artifact.pk}/files/parity-reference/",
        "inputNode": details.get("input_node"),
        "outputNodes": details.get("output_nodes"),
        "goal": artifact.parity.get("goal"),
        "recordUrl": f"/api/model-artifacts/{artifact.pk}/browser-parity/",
    }
    return render(request, "training/tfjs_check.html", {"artifact": artifact, "config": config})
