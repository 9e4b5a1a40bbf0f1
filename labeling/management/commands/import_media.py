from jobs.management.job_command import JobCommand


class Command(JobCommand):
    help = ("Ingest photo and video files or folders (recursively) for a participant, through the same checks "
            "and pipeline as uploads; prints each rejected file with its reason, then accepted / duplicate / rejected "
            "counts, and exits non-zero when any file was rejected.")
    job_kind = "import_media"
    echo_job_log = False  # the report prints every refusal and warning once

    def add_job_arguments(self, parser):
        parser.add_argument("--participant", required=True, help="participant code")
        parser.add_argument("paths", nargs="+", help="files or folders")

    def job_arguments(self, options) -> dict:
        return {"participant": options["participant"], "paths": options["paths"]}

    def report(self, job):
        result = job.result
        for item in result["rejected_files"]:
            self.stdout.write(self.style.ERROR(f"rejected {item['path']}: {item['reason']}"))
        self.stdout.write(f"{result['files']} files: {result['accepted']} accepted, {result['duplicate']} duplicate, "
                          f"{result['rejected']} rejected; {result['images']} images made")

    def refused(self, result):
        return result["rejected_files"]
