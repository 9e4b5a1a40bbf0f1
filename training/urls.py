from django.urls import path

from . import views

urlpatterns = [
    path("training/", views.training_page, name="training"),
    path("training/runs/<int:run_id>/", views.run_page, name="training-run"),
    path("models/", views.models_page, name="models"),
]
