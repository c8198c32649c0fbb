"""Removing a second factor (an authenticator app, a passkey): one confirm-then-remove flow."""

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render

from breakglass.accounts import services


def authenticator_remove(request, *, name: str, consequence: str, remove) -> HttpResponse:
    """One confirm-then-remove flow for every kind of second factor: GET asks, POST calls
    `remove()` (a service that refuses with AccountError, e.g. for the last factor)."""
    if request.method != "POST":
        return render(
            request,
            "accounts/confirm.html",
            {
                "title": f"Remove “{name}”?",
                "text": consequence,
                "action": request.path,
                "button": "Remove",
                "button_class": "danger",
            },
        )
    try:
        remove()
    except services.AccountError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"“{name}” was removed.")
    return redirect("accounts:account")
