"""The paper's ablation: baseline (weighted NLL, no cascade), + LMP, + cascade, with the same budget
(rows and table: ml/ablation.py; bench/ablation.py runs the same rows on ../shared/data/nails-cc0)."""
from django.core.management.base import BaseCommand, CommandError

from curation.models import Snapshot
from ml.ablation import ABLATION_ROWS, EXTRA_ROWS, ablation_table, row_overrides
from ml.train_presets import TRAIN_PRESETS


class Command(BaseCommand):
    help = "Train baseline, + LMP and + cascade on a snapshot with the same budget; print the paper-style table."

    def add_arguments(self, parser):
        parser.add_argument("--snapshot", required=True)
        parser.add_argument("--preset", default="tiny", choices=list(TRAIN_PRESETS))
        parser.add_argument("--epochs", type=int)
        parser.add_argument("--random-init", action="store_true", help="train every row from random weights")
        parser.add_argument("--extra", action="store_true",
                            help="also train the fusion 256 / 128 and U-Net comparisons with the same budget")

    def handle(self, *args, **options):
        from jobs.models import Job
        from jobs.runner import enqueue_job, execute_job

        if not Snapshot.objects.filter(name=options["snapshot"], status=Snapshot.Status.READY).exists():
            raise CommandError(f"there is no ready snapshot {options['snapshot']!r}")
        init = "random" if options["random_init"] else "preset"
        results = []
        for label, _ in ABLATION_ROWS + (EXTRA_ROWS if options["extra"] else []):
            overrides = row_overrides(label, pretrained=None if options["random_init"] else True)
            arguments = {"snapshot": options["snapshot"], "preset": options["preset"], "overrides": overrides}
            if options["epochs"]:
                arguments["epochs"] = options["epochs"]
            job, _ = enqueue_job("train", arguments, send=False)
            self.stdout.write(f"training {label} (job {job.pk})...")
            job = execute_job(job.pk)
            if job.status != Job.Status.SUCCEEDED:
                raise CommandError(f"{label}: job {job.pk} {job.status}: {job.error}")
            best = job.result.get("best_metrics") or {}
            results.append({"row": label, "init": init, "val": best, "best_epoch": job.result.get("best_epoch"),
                            "epochs": job.result.get("epochs_completed"), "seconds": job.result.get("seconds") or float("nan")})
        self.stdout.write("\n" + ablation_table(results))
