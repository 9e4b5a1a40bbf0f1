"""Background jobs: one Job row per long-running piece of work, run by Celery or in the foreground."""
