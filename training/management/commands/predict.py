from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from PIL import Image as PILImage

from ml.tta import TTA_MODES
from training.models import ModelVersion


class Command(BaseCommand):
    help = "Run a model on photo files: per image a class-mask PNG (0 background, 1-10 fingers) and a fg-probability PNG."

    def add_arguments(self, parser):
        parser.add_argument("model", help="model version name")
        parser.add_argument("images", nargs="+")
        parser.add_argument("--out", required=True)
        parser.add_argument("--size", type=int, help="longer side the network runs at (default: the model's)")
        parser.add_argument("--tta", default="none", choices=TTA_MODES,
                            help="test-time augmentation: flip = the photo and its mirror, averaged (about 2x the time)")

    def handle(self, *args, **options):
        from ml.predict import Predictor

        version = ModelVersion.objects.filter(name=options["model"]).first()
        if version is None:
            raise CommandError(f"there is no model version {options['model']!r}")
        predictor = Predictor.from_checkpoint(version.weights.path, size=options["size"], tta=options["tta"])
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        for name in options["images"]:
            path = Path(name)
            try:
                picture = np.asarray(PILImage.open(path).convert("RGB"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read {path}: {exc}") from exc
            prediction = predictor(picture)
            nail = prediction.fg_prob >= 0.5
            if prediction.class_prob is not None:
                classes = (prediction.class_prob.argmax(axis=2) + 1).astype(np.uint8) * nail
            else:
                classes = nail.astype(np.uint8)
            PILImage.fromarray(classes.astype(np.uint8)).save(out / f"{path.stem}.classes.png")
            PILImage.fromarray((prediction.fg_prob * 255).round().astype(np.uint8)).save(out / f"{path.stem}.fg.png")
            self.stdout.write(f"{path.name}: {nail.mean() * 100:.2f}% nail pixels, {prediction.seconds * 1000:.0f} ms")
