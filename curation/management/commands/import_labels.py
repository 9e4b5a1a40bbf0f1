import json

from django.core.management.base import CommandError

from dataset.formats import IMPORTERS
from jobs.management.job_command import JobCommand


class Command(JobCommand):
    help = ("Import labels (a file, folder or zip) in one of the formats of dataset.formats: "
            + "; ".join(f"{name} ({importer.description.rstrip('.')})" for name, importer in IMPORTERS.items())
            + ". Images that are not in the platform yet come in through the intake pipeline. Each annotation file "
            "is all or nothing: a malformed shape, a dangling reference, an unknown label or an image that cannot come in refuses the whole file with "
            "its problems (--skip-invalid imports the rest). Images are looked for as the labels write them (LabelMe: "
            "relative to the JSON; CVAT: in images/ beside the XML), then in --images, then (LabelMe) in imageData.")
    job_kind = "import_labels"
    echo_job_log = False  # the report prints every refusal and warning once

    def add_job_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", required=True, choices=list(IMPORTERS))
        parser.add_argument("--participants", help="CSV with columns file_name,participant")
        parser.add_argument("--participant", help="participant code for images the CSV does not name")
        parser.add_argument("--images", help="folder holding the images (default: next to the labels, as they name them)")
        parser.add_argument("--label-map", help='JSON file mapping label names to finger classes, e.g. {"L1": 1, "nail": null}')
        parser.add_argument("--status", default="accepted", choices=["draft", "submitted", "accepted"])
        parser.add_argument("--replace", action="store_true", help="replace labels of images that have some (history kept)")
        parser.add_argument("--skip-invalid", action="store_true",
                            help="import what is valid of a file that has problems and report what was left out "
                                 "(default: refuse such a file whole)")

    def job_arguments(self, options) -> dict:
        arguments = {"format": options["format"], "path": options["path"], "status": options["status"], "replace": options["replace"],
                     "skip_invalid": options["skip_invalid"]}
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
        for warning in r["warnings"]:
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        for problem in r["problems"]:
            if problem["outcome"] == "skipped":
                self.stdout.write(self.style.WARNING(f"skipped in {problem['file']}: {problem['problem']}"))
        for failure in r["failed_files"]:
            problems = [p["problem"] for p in r["problems"] if p["file"] == failure["file"] and p["outcome"] == "refused"]
            if len(problems) > 1:
                self.stdout.write(self.style.ERROR(f"refused {failure['file']} (nothing of it was imported): {len(problems)} problems"))
                for problem in problems:
                    self.stdout.write(self.style.ERROR(f"  - {problem}"))
            else:
                self.stdout.write(self.style.ERROR(f"refused {failure['file']} (nothing of it was imported): {failure['reason']}"))
        if r["failed_files"] and not r["skip_invalid"]:
            self.stdout.write("(--skip-invalid imports what is valid of a file with problems and reports what it leaves out)")
        self.stdout.write(f"{r['files']} annotation files, {len(r['failed_files'])} refused: {r['labelled']} images labelled, "
                          f"{r['images_created']} images added, {r['skipped_existing']} left alone (already labelled), "
                          f"{r['participants_created']} participants created")

    def refused(self, result):
        return result["failed_files"]
