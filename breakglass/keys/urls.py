from django.urls import path

from breakglass.keys import views

app_name = "keys"

urlpatterns = [
    path("bundle.json", views.bundle_json, name="bundle"),
    path("roots.json", views.roots_json, name="roots"),
    path("ssh/<slug:path_slug>/ca.pub", views.ssh_ca_pub, name="ssh_ca"),
    path("ssh/<slug:path_slug>/revoked.krl", views.ssh_krl, name="ssh_krl"),
    path("keys/", views.keys_page, name="keys"),
    path("kits/", views.kits_page, name="kits"),
    path("kits/new/", views.kit_new, name="kit_new"),
    path("kits/check/", views.kit_check, name="kit_check"),
    path("kits/<slug:kit_id>/retire/", views.kit_retire_view, name="kit_retire"),
    path("keys/rotate-issuer/", views.issuer_rotate, name="issuer_rotate"),
]
