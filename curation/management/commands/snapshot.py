from jobs.management.job_command import JobCommand


class Command(JobCommand):
    help = "Build an immutable snapshot of the accepted labels with participant-grouped splits."
    job_kind = "snapshot"

    def add_job_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--ratios", nargs=3, type=float, default=[0.65, 0.18, 0.17], metavar=("TRAIN", "VAL", "TEST"))
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--include-submitted", action="store_true", help="also take submitted, not yet accepted, labels")

    def job_arguments(self, options) -> dict:
        return {"name": options["name"], "ratios": options["ratios"], "seed": options["seed"],
                "include_submitted": options["include_submitted"]}

    def report(self, job):
        result = job.result
        for warning in result.get("warnings", []):
            self.stdout.write(self.style.WARNING(f"warning: {warning}"))
        self.stdout.write(f"snapshot {result['snapshot']} ({result['content_hash'][:12]}): {result['counts']['images']} images")
        for split, counts in result["counts"]["splits"].items():
            self.stdout.write(f"  {split:<5} {counts['images']:>6} images {counts['participants']:>5} participants {counts['nails']:>7} nails")
        if result["leaks"]:
            self.stdout.write(self.style.WARNING(f"  {result['leaks']} near-duplicate image pairs across splits (see the snapshot page)"))
