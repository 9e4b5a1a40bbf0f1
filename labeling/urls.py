from django.urls import path

from . import views

urlpatterns = [
    path("u/<str:token>/", views.participant_page, name="participant-page"),
    path("u/<str:token>/consent", views.participant_consent, name="participant-consent"),
    path("u/<str:token>/erase", views.participant_erase, name="participant-erase"),
    path("u/<str:token>/thumbnails/<int:image_id>.jpg", views.participant_thumbnail, name="participant-thumbnail"),
]
