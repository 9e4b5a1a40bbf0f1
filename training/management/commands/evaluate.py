import json

from django.core.management.base import BaseCommand, CommandError

from curation.models import Snapshot
from ml.tta import TTA_MODES
from training.models import ModelVersion


class Command(BaseCommand):
    help = "Accuracy (binary mIoU, nail IoU, per-finger IoU, direction error) and speed of a model on a snapshot split at 288/352/480 px."

    def add_arguments(self, parser):
        parser.add_argument("model", help="model version name")
        parser.add_argument("--snapshot", required=True)
        parser.add_argument("--split", default="val", choices=["train", "val", "test"])
        parser.add_argument("--sizes", nargs="+", type=int, default=[288, 352, 480])
        parser.add_argument("--tta", default="none", choices=TTA_MODES,
                            help="test-time augmentation: flip = the photo and its mirror, averaged (about 2x the time)")
        parser.add_argument("--json", action="store_true", help="print the full report as JSON")

    def handle(self, *args, **options):
        from ml.evaluate import evaluate

        from training.runs import training_data_dir

        version = ModelVersion.objects.filter(name=options["model"]).first()
        snapshot = Snapshot.objects.filter(name=options["snapshot"], status=Snapshot.Status.READY).first()
        if version is None:
            raise CommandError(f"there is no model version {options['model']!r}")
        if snapshot is None:
            raise CommandError(f"there is no ready snapshot {options['snapshot']!r}")
        report = evaluate(version.weights.path, training_data_dir(snapshot), split=options["split"], sizes=options["sizes"],
                          tta=options["tta"])
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2, default=str))
            return
        with_flip = " (flip TTA)" if options["tta"] == "flip" else ""
        self.stdout.write(f"{version.name} on {snapshot.name}/{options['split']}{with_flip}:")
        self.stdout.write(f"{'size':>6} {'mIoU':>8} {'nail IoU':>9} {'dir err':>8} {'ms/img':>8}")
        for size, row in report["sizes"].items():
            direction = row.get("direction_error_deg")
            self.stdout.write(f"{size:>6} {row['miou']:>8.4f} {row['nail_iou']:>9.4f} "
                              f"{'-' if direction is None else f'{direction:.1f}':>8} {row['ms_per_image']:>8.1f}")
