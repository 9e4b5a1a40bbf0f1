from django.core.management.base import BaseCommand

from labeling.intake import discard_processed_raws


class Command(BaseCommand):
    help = ("Remove the raw files (as sent, with their EXIF/GPS) of uploads already processed into images. New "
            "uploads lose theirs at ingest; run this once on data stored before that. The upload rows stay.")

    def handle(self, *args, **options):
        count = discard_processed_raws()
        self.stdout.write(f"removed the raw files of {count} processed uploads")
