from django.urls import path

from . import views

urlpatterns = [
    path("jobs/", views.jobs_page, name="jobs"),
]
