from django.conf import settings


def console(request):
    return {"breakglass_env": settings.BREAKGLASS_ENV}
