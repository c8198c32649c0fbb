from django.urls import path

from breakglass.access import api

app_name = "api"

urlpatterns = [
    path("paths/", api.paths, name="paths"),
    path("grants/", api.grants, name="grants"),
    path("grants/self-issue/", api.grant_self_issue, name="self_issue"),
    path("grants/<int:pk>/", api.grant_detail, name="grant"),
    path("grants/<int:pk>/approve/", api.grant_approve, name="approve"),
    path("grants/<int:pk>/revoke/", api.grant_revoke, name="revoke"),
]
