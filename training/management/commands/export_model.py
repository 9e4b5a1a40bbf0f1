import shutil
from pathlib import Path

from django.core.management.base import CommandError

from jobs.management.job_command import JobCommand
from ml.export.registry import EXPORT_FORMATS


class Command(JobCommand):
    help = ("Export a model version to ONNX, Core ML or TensorFlow.js with its parity report (a job on the export "
            "queue; --enqueue for the workers). The artifact is stored with the model version; --out also copies it.")
    job_kind = "export_model"

    def add_job_arguments(self, parser):
        parser.add_argument("model", help="the model version's name")
        parser.add_argument("--format", required=True, choices=list(EXPORT_FORMATS))
        parser.add_argument("--out", help="also copy the artifact folder (with nailset-export.json) here")
        parser.add_argument("--precision", choices=["fp16", "fp32"], help="Core ML compute precision (default fp16)")
        parser.add_argument("--size", help="Core ML fixed input size HxW, multiples of 32 (default: landscape 3:4 at "
                                           "the model's evaluation size)")
        parser.add_argument("--quantize", choices=["float16", "uint8"], help="TF.js weight quantisation")
        parser.add_argument("--no-browser", action="store_true",
                            help="TF.js: do not run the artifact in headless Chromium (only TensorFlow's check)")

    def job_arguments(self, options) -> dict:
        if options["out"] and options["enqueue"]:
            raise CommandError("--out copies the artifact at the end of a foreground export; with --enqueue, download "
                               "it from the model's exports page or /api/model-artifacts/{id}/download/")
        arguments = {"model": options["model"], "format": options["format"]}
        for key in ("precision", "size", "quantize"):
            if options[key]:
                arguments[key] = options[key]
        if options["no_browser"]:
            arguments["browser"] = False
        self._out = options["out"]
        return arguments

    def report(self, job):
        result = job.result
        self.stdout.write(f"artifact {result['artifact']}: {result['format']} {result['variant'] or ''} of {result['model_version']}, "
                          f"{result['size_bytes'] / 1e6:.2f} MB")
        outputs = result.get("outputs") or {}
        self.stdout.write(f"parity vs PyTorch: max abs diff {result['max_abs_diff']:.3e} (goal {result['goal']:.0e}) "
                          + ", ".join(f"{k} {v:.2e}" for k, v in outputs.items()))
        if self._out:
            out = Path(self._out)
            if out.exists() and any(out.iterdir()):
                raise CommandError(f"{out} is not empty")
            shutil.copytree(result["folder"], out, dirs_exist_ok=True)
            self.stdout.write(f"copied to {out}")
