from django.urls import path

from . import api, views

urlpatterns = [
    path("models/<slug:name>/exports/", views.model_exports_page, name="model-exports"),
    path("models/<slug:name>/exports/<int:artifact_id>/tfjs/", views.tfjs_check_page, name="model-export-tfjs"),
    # before the API router (included after this module): file names keep their extensions
    path("api/model-artifacts/<int:pk>/files/<path:name>", api.ArtifactFileView.as_view(), name="model-artifact-file"),
]
