"""Audit events for writes that do not come through a service: the Django admin, the
shell, `manage.py changepassword`, a plug-in saving a model directly.

Services record the human-level event ("auth.role_assigned by ada"); these hooks are the
safety net underneath, so no password, OTP device, group membership or admin edit can
change with nothing in the hash chain. They run inside the writer's transaction (signals
fire in the same transaction as the save), so the event exists exactly when the change
does. The acting person is taken from the current request (`AuditActorMiddleware`); a
write outside any request is recorded as "system".

Deliberately not hooked: OTP devices saving their own counters on every verification
(`last_t`, throttling), which would put a row in the chain per log-in.
"""

from __future__ import annotations

import contextvars

from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.db.models.signals import m2m_changed, post_delete, post_save
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from breakglass.audit.services import audit_record

_current_actor: contextvars.ContextVar = contextvars.ContextVar("audit_actor", default=None)

_ADMIN_ACTIONS = {ADDITION: "admin.added", CHANGE: "admin.changed", DELETION: "admin.deleted"}


class AuditActorMiddleware:
    """Remember who is making this request, for writes recorded by the hooks below."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        token = _current_actor.set(user if user is not None and user.is_authenticated else None)
        try:
            return self.get_response(request)
        finally:
            _current_actor.reset(token)


def _admin_logged(sender, instance: LogEntry, created: bool, **kwargs) -> None:
    if not created:
        return
    audit_record(
        action=_ADMIN_ACTIONS.get(instance.action_flag, "admin.changed"),
        actor=instance.user,
        object_type=(
            f"{instance.content_type.app_label}.{instance.content_type.model}"
            if instance.content_type_id
            else ""
        ),
        object_id=instance.object_id or "",
        data={"object": instance.object_repr[:200], "change": instance.get_change_message()},
    )


def _user_saved(sender, instance, created: bool, **kwargs) -> None:
    actor = _current_actor.get()
    if created:
        audit_record(
            action="auth.user_created",
            actor=actor,
            obj=instance,
            data={
                "user": instance.get_username(),
                "is_staff": instance.is_staff,
                "is_superuser": instance.is_superuser,
            },
        )
    elif getattr(instance, "_password", None) is not None:
        # set_password() keeps the raw password here until save() has run validators.
        audit_record(
            action="auth.password_changed",
            actor=actor,
            obj=instance,
            data={"user": instance.get_username()},
        )


def _groups_changed(sender, instance, action: str, pk_set, model, reverse: bool, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if reverse:  # group.user_set.add(...): instance is the group, pk_set are users
        users = [u.get_username() for u in get_user_model().objects.filter(pk__in=pk_set or ())]
        groups = [instance.name]
    else:
        users = [instance.get_username()]
        groups = sorted(model.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    audit_record(
        action=f"auth.groups_{action.removeprefix('post_')}",
        actor=_current_actor.get(),
        object_type="auth.user" if not reverse else "auth.group",
        object_id=instance.pk,
        data={"users": users, "groups": groups},
    )


def _device_created(sender, instance, created: bool, **kwargs) -> None:
    if created:
        audit_record(
            action="auth.device_created",
            actor=_current_actor.get(),
            obj=instance,
            data={"user": instance.user.get_username(), "name": instance.name},
        )


def _device_deleted(sender, instance, **kwargs) -> None:
    audit_record(
        action="auth.device_deleted",
        actor=_current_actor.get(),
        obj=instance,
        data={"user_id": instance.user_id, "name": instance.name},
    )


def audit_hooks_connect() -> None:
    user_model = get_user_model()
    uid = "breakglass.accounts.audit_hooks"
    post_save.connect(_admin_logged, sender=LogEntry, dispatch_uid=f"{uid}.admin")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid=f"{uid}.user")
    m2m_changed.connect(
        _groups_changed, sender=user_model.groups.through, dispatch_uid=f"{uid}.groups"
    )
    for device in (TOTPDevice, StaticDevice):
        post_save.connect(_device_created, sender=device, dispatch_uid=f"{uid}.{device.__name__}")
        post_delete.connect(
            _device_deleted, sender=device, dispatch_uid=f"{uid}.{device.__name__}.deleted"
        )
