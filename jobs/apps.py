from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Background jobs"

    def ready(self):
        # Each app declares its job kinds in ``<app>/job_kinds.py`` with ``@job_kind``.
        autodiscover_modules("job_kinds")
