from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self):
        # Erasure reaches every app that keeps something derived from a participant's photos: each
        # registers its steps with ``@erasure_step`` in ``<app>/erasure_steps.py`` (labeling/erasure.py).
        from . import erasure  # noqa: F401  (the core steps: job records, uploads, images, labels)

        autodiscover_modules("erasure_steps")
