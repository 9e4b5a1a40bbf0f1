"""``manage.py complete_labels``: the ``complete_labels`` job (labeling/job_kinds.py) from the terminal."""
from django.core.management.base import CommandError

from jobs.management.job_command import JobCommand


def _probability(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(text)
    return value


class Command(JobCommand):
    help = ("Fill each nail's missing finger and base/tip with suggestions (ml/label_suggestions.py), marked suggested "
            "with their confidence; never over a confirmed (human or imported) field. --accept-above P writes those "
            "with confidence >= P confirmed. One revision per changed image. A job; --enqueue for the workers.")
    job_kind = "complete_labels"
    echo_job_log = False

    def add_job_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--all", action="store_true", help="every image")
        which.add_argument("--participant", metavar="CODE", help="this participant's images")
        which.add_argument("--image", metavar="ID", type=int, nargs="+", help="these images")
        parser.add_argument("--accept-above", metavar="P", type=_probability,
                            help="write suggestions with confidence >= P (0..1) as confirmed labels")

    def job_arguments(self, options) -> dict:
        if options["all"]:
            arguments = {"all": True}
        elif options["participant"]:
            arguments = {"participant": options["participant"]}
        elif options["image"]:
            arguments = {"image_ids": options["image"]}
        else:  # pragma: no cover  (argparse requires one)
            raise CommandError("give --all, --participant CODE or --image ID...")
        if options["accept_above"] is not None:
            arguments["accept_above"] = options["accept_above"]
        return arguments

    def report(self, job):
        result = job.result

        def listing(counts):
            return ", ".join(f"{name} {n}" for name, n in sorted(counts.items())) or "none"
        self.stdout.write(f"images: {result['images']}, changed: {result['changed']}")
        self.stdout.write(f"suggested (nail fields): {listing(result['suggested'])}")
        self.stdout.write(f"accepted (nail fields): {listing(result['accepted'])}")
        self.stdout.write(f"skipped (nail fields, why): {listing(result['skipped'])}")
