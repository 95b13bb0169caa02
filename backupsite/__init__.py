"""The project shell: settings, URLs, the Celery app, access rules and the error base.

The Celery app is created when Django starts (BackupsiteConfig.ready) or when a worker is
started with `celery -A backupsite`, which finds `backupsite.celery`; importing this package
loads nothing, so Django-free code may use `backupsite.errors`."""
