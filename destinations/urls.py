from django.urls import path

from . import views

# The destination's own page and the work on it are added by jobs (`jobs.destination_urls`);
# `backupsite.urls` serves both lists under the one "destinations" namespace.
urlpatterns = [
    path("", views.destination_list, name="list"),
    path("new/", views.destination_create, name="create"),
    path("validate/", views.destination_validate, name="validate"),
    path("<int:pk>/delete/", views.destination_delete, name="delete"),
]
