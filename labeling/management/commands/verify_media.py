from jobs.management.job_command import JobCommand


class Command(JobCommand):
    help = "Check every stored image file against the sha256 recorded at ingest (a job; --enqueue for the workers)."
    job_kind = "verify_media"

    def add_job_arguments(self, parser):
        parser.add_argument("--participant", help="only this participant's images (code)")

    def job_arguments(self, options) -> dict:
        return {"participant": options["participant"]} if options["participant"] else {}

    def report(self, job):
        result = job.result
        self.stdout.write(f"checked {result['checked']} images: {len(result['missing'])} missing, {len(result['corrupted'])} corrupted")
