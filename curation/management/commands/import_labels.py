import json

from django.core.management.base import CommandError

from jobs.management.job_command import JobCommand


class Command(JobCommand):
    help = ("Import labels from COCO, LabelMe or 'CVAT for images 1.1' (file, folder or zip); images that are not in "
            "the platform yet come in through the intake pipeline. Each annotation file is all or nothing.")
    job_kind = "import_labels"

    def add_job_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", required=True, choices=["coco", "labelme", "cvat"])
        parser.add_argument("--participants", help="CSV with columns file_name,participant")
        parser.add_argument("--participant", help="participant code for images the CSV does not name")
        parser.add_argument("--images", help="folder holding the images (default: next to the labels)")
        parser.add_argument("--label-map", help='JSON file mapping label names to finger classes, e.g. {"L1": 1, "nail": null}')
        parser.add_argument("--status", default="accepted", choices=["draft", "submitted", "accepted"])
        parser.add_argument("--replace", action="store_true", help="replace labels of images that have some (history kept)")

    def job_arguments(self, options) -> dict:
        arguments = {"format": options["format"], "path": options["path"], "status": options["status"], "replace": options["replace"]}
        for option, key in (("participants", "participants_csv"), ("images", "images_dir"), ("participant", "participant")):
            if options[option]:
                arguments[key] = options[option]
        if options["label_map"]:
            try:
                with open(options["label_map"]) as fh:
                    arguments["label_map"] = json.load(fh)
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read the label map: {exc}") from exc
        return arguments

    def report(self, job):
        r = job.result
        self.stdout.write(f"{r['files']} annotation files: {r['labelled']} images labelled, {r['images_created']} images added, "
                          f"{r['skipped_existing']} left alone (already labelled), {r['participants_created']} participants created")
        for failure in r["failed_files"]:
            self.stdout.write(self.style.ERROR(f"  nothing imported from {failure['file']}: {failure['reason']}"))
        if r["unknown_labels"]:
            self.stdout.write(self.style.WARNING(f"  unknown labels (shapes skipped): {r['unknown_labels']}"))
