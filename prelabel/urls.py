"""Pages under /prelabel/ and the API paths that are not router viewsets (the router registrations are
in annotation_site/urls.py: prelabel/predictions, prelabel/corrections, prelabel/promotions)."""
from django.urls import path

from . import api, views

urlpatterns = [
    path("prelabel/", views.review_predictions, name="prelabel-review"),
    path("prelabel/predictions/<int:prediction_id>/", views.prediction_page, name="prelabel-prediction"),
    path("prelabel/predictions/<int:prediction_id>/decide", views.decide, name="prelabel-decide"),
    path("prelabel/run", views.run, name="prelabel-run"),
    path("prelabel/metrics/", views.metrics_page, name="prelabel-metrics"),
    path("prelabel/queue-order", views.queue_order, name="prelabel-queue-order"),
    path("prelabel/promote", views.promote, name="prelabel-promote"),
    path("api/prelabel/metrics/", api.MetricsView.as_view(), name="api-prelabel-metrics"),
    path("api/prelabel/open/", api.OpenView.as_view(), name="api-prelabel-open"),
    path("api/prelabel/queue-order/", api.QueueOrderView.as_view(), name="api-prelabel-queue-order"),
    path("api/prelabel/run/", api.RunView.as_view(), name="api-prelabel-run"),
]
