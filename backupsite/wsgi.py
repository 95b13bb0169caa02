import os

from django.core.wsgi import get_wsgi_application

from backupsite.datadir import secure_process

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backupsite.settings")
secure_process()
application = get_wsgi_application()
