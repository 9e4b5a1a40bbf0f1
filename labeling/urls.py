from django.urls import path

from . import api, views

urlpatterns = [
    # The participant's page. Names start with "participant-page": the API router owns "participant-<action>".
    path("u/<str:token>/", views.participant_page, name="participant-page"),
    path("u/<str:token>/consent", views.participant_consent, name="participant-page-consent"),
    path("u/<str:token>/erase", views.participant_erase, name="participant-page-erase"),
    path("u/<str:token>/thumbnails/<int:image_id>.jpg", views.participant_thumbnail, name="participant-page-thumbnail"),
    # Annotators: the queue and the annotation tool.
    path("annotate/", views.queue_page, name="annotate-queue"),
    path("annotate/next/", views.queue_next, name="annotate-next"),
    path("annotate/<int:image_id>/", views.annotate_page, name="annotate-image"),
    # Reviewers.
    path("review/", views.review_list, name="review-list"),
    path("review/next/", views.review_next, name="review-next"),
    path("review/<int:image_id>/", views.review_page, name="review-image"),
    # The queue's API (the rest of the API is the router's, under /api/).
    path("api/queue/", api.QueueView.as_view(), name="api-queue"),
    path("api/queue/next/", api.QueueNextView.as_view(), name="api-queue-next"),
]
