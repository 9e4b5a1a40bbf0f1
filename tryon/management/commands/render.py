"""``manage.py render IMAGE (--model MODEL | --labels) --color "#C8102E" [--finish glossy] --out OUT.jpg``"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from PIL import Image as PILImage

from labeling.intake import RejectedFile
from labeling.models import Image
from ml.render import FINISHES, side_by_side

from tryon import rendering


class Command(BaseCommand):
    help = ("Paint the nails of a platform image (by id) with its current labels (--labels) or a model's "
            "prediction (--model NAME), or of any photo file with --model.")

    def add_arguments(self, parser):
        parser.add_argument("image", help="a platform image id, or (with --model) a photo file path")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--model", help="a ModelVersion name")
        source.add_argument("--labels", action="store_true", help="paint the image's current labels")
        parser.add_argument("--color", default="#C8102E", help="polish colour, #RRGGBB (default %(default)s)")
        parser.add_argument("--finish", default="glossy", choices=list(FINISHES))
        parser.add_argument("--out", required=True, help="output JPEG (or PNG by extension)")
        parser.add_argument("--compare", action="store_true", help="write before | after side by side")
        parser.add_argument("--max-width", type=int, help="with --compare: shrink the pair to this width")
        parser.add_argument("--quality", type=int, default=92, help="JPEG quality (default %(default)s)")

    def handle(self, *args, **options):
        try:
            color = rendering.check_color(options["color"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        finish = options["finish"]
        target = options["image"]
        platform_image = None
        if target.isdigit():
            platform_image = Image.objects.select_related("annotation").filter(pk=int(target)).first()
            if platform_image is None and not Path(target).is_file():
                raise CommandError(f"no image with id {target}")
        if platform_image is not None:
            rgb = rendering.platform_photo(platform_image)
        elif options["labels"]:
            raise CommandError("--labels needs a platform image id (a photo file has no labels)")
        else:
            path = Path(target)
            if not path.is_file():
                raise CommandError(f"{target} is neither an image id nor a file")
            try:
                with path.open("rb") as fh:
                    rgb = rendering.load_photo(fh)
            except RejectedFile as exc:
                raise CommandError(f"{target}: {exc}") from None

        if options["labels"]:
            geometry = platform_image.annotation.geometry
            if not geometry.get("nails"):
                self.stderr.write(f"image {platform_image.pk} has no labelled nails: nothing is painted")
            result = rendering.render_with_labels(rgb, geometry, color, finish)
        else:
            try:
                version = rendering.model_named(options["model"])
            except rendering.UnknownModel as exc:
                raise CommandError(str(exc)) from None
            if platform_image is not None:
                rgb = rendering.shrink(rgb, rendering.MAX_SIDE)
            result = rendering.render_with_model(rgb, version, color, finish)

        out = Path(options["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        picture = side_by_side(rgb, result.image, options["max_width"]) if options["compare"] else result.image
        fmt = "PNG" if out.suffix.lower() == ".png" else "JPEG"
        save = {"quality": options["quality"], "optimize": True} if fmt == "JPEG" else {}
        PILImage.fromarray(np.ascontiguousarray(picture)).save(out, fmt, **save)
        what = f"labels of image {platform_image.pk}" if options["labels"] else f"model {result.model}"
        self.stdout.write(f"{out}: {len(result.nails)} nails painted {color} {finish} from the {what} "
                          f"({picture.shape[1]}x{picture.shape[0]}; " + json.dumps(result.timings_ms) + " ms)")
