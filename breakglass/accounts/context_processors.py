from django.conf import settings
from django.utils.functional import SimpleLazyObject


def console(request):
    from breakglass.project import navigation

    # Lazy: only pages that draw the navigation ask who may open what.
    return {
        "breakglass_env": settings.BREAKGLASS_ENV,
        "nav_areas": SimpleLazyObject(lambda: navigation.nav_links(request, navigation.AREAS)),
        "nav_access": SimpleLazyObject(lambda: navigation.nav_links(request, navigation.ACCESS)),
    }
