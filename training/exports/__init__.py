"""Exports of model versions, the Django side of ``ml/export`` (docs/export.md):

- ``core``: run an export and store it as a ``training.ModelArtifact``; browser parity runs
- ``jobs``: the ``export_model`` job kind (queue "export"), registered through training/job_kinds.py
- ``api``: ``/api/model-artifacts/`` (the viewset is registered with the router in annotation_site/urls.py)
- ``views`` and ``urls``: the exports page of a model version and the TF.js check page
"""
