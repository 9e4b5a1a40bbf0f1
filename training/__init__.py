"""Training runs and model versions: the Django side of ``ml/`` (which never imports Django)."""
