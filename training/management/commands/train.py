import json

from django.core.management.base import CommandError

from jobs.management.job_command import JobCommand
from ml.train_presets import DEFAULT_TRAIN_PRESET, TRAIN_PRESETS


class Command(JobCommand):
    help = "Train the cascade model on a snapshot (a job on the training queue; --enqueue for a GPU worker)."
    job_kind = "train"

    def add_job_arguments(self, parser):
        parser.add_argument("--snapshot", required=True)
        parser.add_argument("--preset", default=DEFAULT_TRAIN_PRESET, choices=list(TRAIN_PRESETS),
                            help="device, budget and measured figure of each: GET /api/training-runs/presets/")
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--pretrained", help="file or folder of the ImageNet MobileNetV2 weights (see docs/mobilenetv2-weights.md)")
        parser.add_argument("--set", dest="overrides", help='JSON of training settings to change, e.g. {"model": {"arch": "baseline"}}')

    def job_arguments(self, options) -> dict:
        arguments = {"snapshot": options["snapshot"], "preset": options["preset"]}
        if options["epochs"]:
            arguments["epochs"] = options["epochs"]
        if options["pretrained"]:
            arguments["pretrained"] = options["pretrained"]
        if options["overrides"]:
            try:
                arguments["overrides"] = json.loads(options["overrides"])
            except ValueError as exc:
                raise CommandError(f"--set must be JSON: {exc}") from exc
        return arguments

    def report(self, job):
        result = job.result
        metrics = result.get("kept_metrics") or result.get("best_metrics") or {}
        self.stdout.write(f"run {result['run']} ({result['status']}, {result['epochs_completed']} epochs) -> model {result['model_version']}")
        which = ("the last epoch" if result.get("keep") == "last" else "the best val epoch") + (
            f", {result['kept_epoch']}" if result.get("kept_epoch") else "")
        self.stdout.write(f"kept {which}; its val: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, (int, float))))
