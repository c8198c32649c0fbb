from django.urls import path

from breakglass.accounts import passkeys, views

app_name = "accounts"

urlpatterns = [
    path("", views.account, name="account"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("verify/", views.verify, name="verify"),
    path("sudo/", views.sudo, name="sudo"),
    path("enrol/", views.enrol, name="enrol"),
    path("backup-codes/", views.backup_codes, name="backup_codes"),
    path("backup-codes/new/", views.backup_codes_regenerate, name="backup_codes_regenerate"),
    path("devices/<int:pk>/remove/", views.device_remove, name="device_remove"),
    path("passkeys/<int:pk>/remove/", passkeys.passkey_remove, name="passkey_remove"),
]
