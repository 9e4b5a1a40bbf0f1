"""Training's pages and the served model's API paths that are not router viewsets (the router registrations
are in annotation_site/urls.py: training-runs, model-versions, model-artifacts; this module is included
before the router). Model exports have their own: training/exports/urls.py."""
from django.urls import path, re_path

from . import api, views

urlpatterns = [
    path("training/", views.training_page, name="training"),
    path("training/runs/<int:run_id>/", views.run_page, name="training-run"),
    path("models/", views.models_page, name="models"),
    # The model endpoint for other tools (no trailing slash; one is accepted too).
    re_path(r"^api/model-versions/(?P<ref>[^/]+)/predict/?$", api.ModelPredictView.as_view(), name="api-model-predict"),
    # Its old address, redirected (308) for one release: LegacyModelPredictRedirect.
    re_path(r"^api/models/(?P<ref>[^/]+)/predict/?$", api.LegacyModelPredictRedirect.as_view(),
            name="api-model-predict-legacy"),
]
