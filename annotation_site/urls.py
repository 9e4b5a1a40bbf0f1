from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.permissions import AllowAny
from rest_framework.routers import DefaultRouter

from curation.api import DatasetStatsView, ParticipantSplitViewSet, SnapshotViewSet
from jobs.api import JobViewSet
from labeling.api import ImageViewSet, ParticipantViewSet, UploadViewSet
from prelabel.api import CorrectionViewSet, PredictionViewSet, PromotionViewSet
from training.api import ModelVersionViewSet, TrainingRunViewSet
from training.export_api import ModelArtifactViewSet

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
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("", include("labeling.urls")),
    path("", include("curation.urls")),
    path("", include("training.urls")),
    path("", include("training.export_urls")),
    path("", include("tryon.urls")),
    path("", include("prelabel.urls")),  # before the router: /api/models/<id>/predict, /api/prelabel/...
    path("api/dataset/stats/", DatasetStatsView.as_view(), name="dataset-stats"),
    path("api/", include(router.urls)),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[AllowAny]), name="api-docs"),
]
