"""The paper's ablation: baseline (weighted NLL, no cascade), + LMP, + cascade, with the same budget."""
from django.core.management.base import BaseCommand, CommandError

from curation.models import Snapshot

# (row, what changes from the preset): the paper's Table 1 rows.
ROWS = [
    ("baseline (weighted NLL, no cascade)", {"model": {"arch": "baseline"}, "loss": {"fg_loss": "weighted"}}),
    ("+ LMP", {"model": {"arch": "baseline"}, "loss": {"fg_loss": "lmp"}}),
    ("+ cascade", {"model": {"arch": "cascade"}, "loss": {"fg_loss": "lmp"}}),
]
PAPER = {"baseline (weighted NLL, no cascade)": 91.3, "+ LMP": 93.3, "+ cascade": 94.5}


class Command(BaseCommand):
    help = "Train baseline, + LMP and + cascade on a snapshot with the same budget; print the paper-style table."

    def add_arguments(self, parser):
        parser.add_argument("--snapshot", required=True)
        parser.add_argument("--preset", default="tiny", choices=["tiny", "web-336", "native-448"])
        parser.add_argument("--epochs", type=int)

    def handle(self, *args, **options):
        from jobs.models import Job
        from jobs.runner import enqueue_job, execute_job

        if not Snapshot.objects.filter(name=options["snapshot"], status=Snapshot.Status.READY).exists():
            raise CommandError(f"there is no ready snapshot {options['snapshot']!r}")
        results = []
        for label, overrides in ROWS:
            arguments = {"snapshot": options["snapshot"], "preset": options["preset"], "overrides": overrides}
            if options["epochs"]:
                arguments["epochs"] = options["epochs"]
            job, _ = enqueue_job("train", arguments, send=False)
            self.stdout.write(f"training {label} (job {job.pk})...")
            job = execute_job(job.pk)
            if job.status != Job.Status.SUCCEEDED:
                raise CommandError(f"{label}: job {job.pk} {job.status}: {job.error}")
            results.append((label, job.result))
        self.stdout.write("\n| model | val binary mIoU | nail IoU | paper (val mIoU) |\n|---|---|---|---|")
        for label, result in results:
            metrics = result.get("best_metrics") or {}
            self.stdout.write(f"| {label} | {100 * metrics.get('miou', float('nan')):.1f} | {100 * metrics.get('nail_iou', float('nan')):.1f} | {PAPER[label]} |")
