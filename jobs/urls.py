from django.urls import path

from . import browse, views

app_name = "jobs"
urlpatterns = [
    path("accounts/", views.account_list, name="accounts"),
    path("accounts/new/", views.account_create, name="account-create"),
    path("accounts/<int:pk>/edit/", views.account_edit, name="account-edit"),
    path("accounts/<int:pk>/delete/", views.account_delete, name="account-delete"),
    path("accounts/<int:pk>/", browse.account_backups, name="account-backups"),
    path("accounts/<int:pk>/versions/", browse.file_versions, name="file-versions"),
    path("mine/", browse.my_accounts, name="my-accounts"),
    path("downloads/<int:pk>/<str:token>/", browse.download_file, name="download"),
    path("clients/", views.client_list, name="clients"),
    path("clients/new/", views.client_create, name="client-create"),
    path("clients/<int:pk>/", views.client_edit, name="client-edit"),
    path("clients/<int:pk>/delete/", views.client_delete, name="client-delete"),
    path("password/", views.password_change, name="password"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/new/", views.job_create, name="job-create"),
    path("jobs/<int:pk>/", views.job_edit, name="job-edit"),
    path("jobs/<int:pk>/delete/", views.job_delete, name="job-delete"),
    path("jobs/<int:pk>/run/", views.job_run, name="job-run"),
    path("queue/", views.queue_list, name="queue"),
    path("queue/rows/", views.queue_rows, name="queue-rows"),
    path("queue/<int:pk>/", views.queue_detail, name="queue-detail"),
    path("queue/<int:pk>/abort/", views.queue_abort, name="queue-abort"),
    path("backups/", views.snapshot_list, name="snapshots"),
    path("backups/<int:pk>/", browse.snapshot_detail, name="snapshot-detail"),
    path("backups/<int:pk>/files/", browse.snapshot_files, name="snapshot-files"),
    path("backups/<int:pk>/restore/", browse.snapshot_restore, name="snapshot-restore"),
    path("backups/<int:pk>/download/", browse.snapshot_download, name="snapshot-download"),
    path("backups/<int:pk>/delete/", views.snapshot_delete, name="snapshot-delete"),
    path("backups/<int:pk>/lock/", views.snapshot_lock, name="snapshot-lock"),
    path("backups/<int:pk>/unlock/", views.snapshot_unlock, name="snapshot-unlock"),
]
