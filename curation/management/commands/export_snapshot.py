from jobs.management.job_command import JobCommand


class Command(JobCommand):
    help = "Export a snapshot as COCO, training masks or YOLO segmentation labels."
    job_kind = "export_snapshot"

    def add_job_arguments(self, parser):
        parser.add_argument("name", help="snapshot name")
        parser.add_argument("--format", required=True, choices=["coco", "masks", "yolo"])
        parser.add_argument("--out", help="write into this (new or empty) folder instead of a downloadable zip")

    def job_arguments(self, options) -> dict:
        return {"snapshot": options["name"], "format": options["format"], **({"out": options["out"]} if options["out"] else {})}

    def report(self, job):
        self.stdout.write(f"wrote {job.result['path']} ({job.result['size'] / 1e6:.1f} MB)")
