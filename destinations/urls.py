from django.urls import path

from . import views

app_name = "destinations"
urlpatterns = [
    path("", views.destination_list, name="list"),
    path("new/", views.destination_create, name="create"),
    path("validate/", views.destination_validate, name="validate"),
    path("<int:pk>/", views.destination_edit, name="edit"),
    path("<int:pk>/delete/", views.destination_delete, name="delete"),
    path("<int:pk>/reindex/", views.destination_reindex, name="reindex"),
    path("<int:pk>/verify/", views.destination_verify, name="verify"),
    path("<int:pk>/status/", views.destination_status, name="status"),
]
