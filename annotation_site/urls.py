from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter

from accounts.api import ApiTokenView
from accounts.views import LoginView
from curation.api import DatasetStatsView, ParticipantSplitViewSet, SnapshotViewSet
from jobs.api import JobViewSet
from labeling.api import ImageViewSet, ParticipantViewSet, UploadViewSet
from prelabel.api import CorrectionViewSet, PredictionViewSet, PromotionViewSet
from training.api import ModelVersionViewSet, TrainingRunViewSet
from training.exports.api import ModelArtifactViewSet

from . import views

router = DefaultRouter()
router.register("participants", ParticipantViewSet, basename="participant")
router.register("uploads", UploadViewSet, basename="upload")
router.register("images", ImageViewSet, basename="image")
router.register("jobs", JobViewSet, basename="job")
router.register("snapshots", SnapshotViewSet, basename="snapshot")
router.register("splits", ParticipantSplitViewSet, basename="split")
router.register("prelabel/predictions", PredictionViewSet, basename="prelabel-prediction")
router.register("prelabel/corrections", CorrectionViewSet, basename="prelabel-correction")
router.register("prelabel/promotions", PromotionViewSet, basename="prelabel-promotion")
router.register("training-runs", TrainingRunViewSet, basename="training-run")
router.register("model-versions", ModelVersionViewSet, basename="model-version")
router.register("model-artifacts", ModelArtifactViewSet, basename="model-artifact")

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # One login page, behind the login lockout, for the admin too.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("", include("labeling.urls")),
    path("", include("curation.urls")),
    path("", include("training.urls")),  # before the router: /api/model-versions/<id>/predict
    path("", include("training.exports.urls")),
    path("", include("tryon.urls")),
    path("", include("jobs.urls")),
    path("", include("prelabel.urls")),  # before the router: /api/prelabel/...
    path("api/dataset/stats/", DatasetStatsView.as_view(), name="dataset-stats"),
    path("api/", include(router.urls)),
    path("api/auth/token/", ApiTokenView.as_view(), name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    # The split view serves Swagger UI's start-up script at ?script= instead of inline: the CSP allows no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema", permission_classes=[AllowAny]), name="api-docs"),
]
