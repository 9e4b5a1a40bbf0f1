from django.core.management.base import CommandError

from jobs.management.job_command import JobCommand


class Command(JobCommand):
    help = ("Pre-label images with a model version (a job on the prelabel queue): predictions become draft "
            "annotations wherever no human has labelled yet. MODEL: a name, an id or 'active'.")
    job_kind = "prelabel"

    def add_job_arguments(self, parser):
        parser.add_argument("model", help="model version name or id, or 'active'")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--participant", help="the participant's images still open for labelling")
        which.add_argument("--unlabeled", action="store_true", help="every image still open for labelling (unlabeled or draft)")
        which.add_argument("--images", help="comma-separated image ids")
        parser.add_argument("--force", action="store_true", help="also images this model already predicted")

    def job_arguments(self, options) -> dict:
        model = options["model"]
        arguments = {"model": int(model) if model.isdigit() else model}
        if options["participant"]:
            arguments["participant"] = options["participant"]
        elif options["unlabeled"]:
            arguments["unlabeled"] = True
        else:
            try:
                arguments["image_ids"] = [int(v) for v in options["images"].split(",") if v.strip()]
            except ValueError as exc:
                raise CommandError("--images takes comma-separated image ids") from exc
        if options["force"]:
            arguments["force"] = True
        return arguments

    def report(self, job):
        r = job.result
        self.stdout.write(f"{r['model']}: {r['predicted']} of {r['images']} image(s) predicted ({r['nails']} nails), "
                          f"{r['drafted']} draft(s) written, {r['kept']} unchanged, {r['skipped_human']} left alone "
                          f"(human labels), {r['skipped_status']} not open for labelling, {r['failed']} failed")
