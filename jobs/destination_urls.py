"""The destination pages this app adds (`destinations.urls` has the others; both are served
under the "destinations" namespace by `backupsite.urls`)."""

from django.urls import path

from . import destination_views as views

urlpatterns = [
    path("<int:pk>/", views.destination_edit, name="edit"),
    path("<int:pk>/reindex/", views.destination_reindex, name="reindex"),
    path("<int:pk>/verify/", views.destination_verify, name="verify"),
    path("<int:pk>/status/", views.destination_status, name="status"),
]
