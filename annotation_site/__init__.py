"""NailSet project package: settings, URLs, the Celery app and the platform launcher."""
from .celery import app as celery_app

__all__ = ["celery_app"]
