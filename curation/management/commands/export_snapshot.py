from dataset.formats import EXPORTERS, NAME_CHOICES
from jobs.management.job_command import JobCommand


class Command(JobCommand):
    help = ("Export a snapshot in one of the formats of dataset.formats: "
            + "; ".join(f"{name} ({exporter.description.rstrip('.')})" for name, exporter in EXPORTERS.items()) + ".")
    job_kind = "export_snapshot"

    def add_job_arguments(self, parser):
        parser.add_argument("name", help="snapshot name")
        parser.add_argument("--format", required=True, choices=list(EXPORTERS))
        parser.add_argument("--out", help="write into this (new or empty) folder instead of a downloadable zip")
        parser.add_argument("--names", choices=NAME_CHOICES, default=NAME_CHOICES[0],
                            help="name the images after the files the participants sent (original, the default; a "
                                 "video's frames: its name and frame index; repeated names get -2, -3...) or by image id")

    def job_arguments(self, options) -> dict:
        return {"snapshot": options["name"], "format": options["format"], **({"out": options["out"]} if options["out"] else {}),
                **({"names": options["names"]} if options["names"] != NAME_CHOICES[0] else {})}

    def report(self, job):
        for warning in job.result.get("warnings", []):
            self.stdout.write(f"warning: {warning}")
        self.stdout.write(f"wrote {job.result['path']} ({job.result['size'] / 1e6:.1f} MB)")
