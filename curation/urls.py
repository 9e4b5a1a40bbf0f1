from django.urls import path

from . import views

urlpatterns = [
    path("dataset/", views.dataset_page, name="dataset"),
    path("dataset/spot-check/<int:image_id>/<str:kind>.png", views.spot_check_image, name="spot-check-image"),
]
