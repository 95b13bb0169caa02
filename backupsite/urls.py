from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView

from destinations import urls as destination_urls
from jobs import destination_urls as destination_work_urls

from . import passwords, views

# One namespace for the destination pages: their settings (destinations) and the work on them (jobs).
destination_patterns = [*destination_urls.urlpatterns, *destination_work_urls.urlpatterns]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("login/code/", views.login_code, name="login-code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/two-factor/", views.two_factor, name="two-factor"),
    # The admin logs in through the panel's login: one form, throttled, with the code step.
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    # Its password change checks the old password without the throttling: the panel's does.
    path("admin/password_change/", RedirectView.as_view(pattern_name="jobs:password")),
    path("preferences/", views.preferences, name="preferences"),
    path("", include(passwords.urlpatterns)),
    path("admin/", admin.site.urls),
    path("destinations/", include((destination_patterns, "destinations"))),
    path("", include("jobs.urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/v1/", include("backupsite.api_urls")),
]
