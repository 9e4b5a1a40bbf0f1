from django.urls import path

from . import api, views

urlpatterns = [
    path("tryon/", views.tryon_page, name="tryon"),
    path("api/tryon/config", api.TryOnConfigView.as_view(), name="tryon-config"),
    path("api/tryon/render", api.TryOnRenderView.as_view(), name="tryon-render"),
]
