import os

from django.core.wsgi import get_wsgi_application

from breakglass.project.files import private_umask_apply

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "breakglass.project.settings")
private_umask_apply()  # before settings create the data folder

application = get_wsgi_application()
