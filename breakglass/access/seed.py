"""A realistic demo organisation: teams, 18 critical services with their dependencies,
backup paths into each, demo people in every role, and one deliberately flawed path.

Idempotent: running it again adds what is missing and changes nothing else. Demo
passwords are random, generated on first run, and written with the TOTP secrets and
backup codes to DATA_DIR/demo-credentials.txt (mode 0600), never to the repository.
"""

from __future__ import annotations

import base64
import functools
import importlib
import importlib.util
import json
import os
import secrets
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from breakglass.access.models import BackupPath, CriticalService, Team, ssh_principal_default
from breakglass.accounts import roles

TEAMS = [
    ("Identity", "identity"),
    ("Network", "network"),
    ("Platform", "platform"),
    ("Data", "data"),
    ("Product", "product"),
    ("Support", "support"),
    ("Security", "security"),
]

# slug, name, tier, team, depends on, description
SERVICES = [
    ("dns", "DNS (authoritative)", 1, "network", [], "Public and internal authoritative DNS."),
    (
        "sso",
        "Identity provider (SSO)",
        1,
        "identity",
        ["dns"],
        "Single sign-on for staff and tools.",
    ),
    ("vpn", "VPN", 1, "network", ["sso", "dns"], "Staff VPN; logs in through SSO."),
    (
        "network-config",
        "Network configuration",
        1,
        "network",
        ["dns"],
        "Router and firewall configuration service.",
    ),
    (
        "bastion",
        "Bastion hosts",
        1,
        "platform",
        ["dns", "network-config"],
        "SSH jump hosts into production.",
    ),
    (
        "secrets",
        "Secrets manager",
        1,
        "security",
        ["dns"],
        "Application secrets and database credentials.",
    ),
    (
        "object-storage",
        "Object storage",
        1,
        "platform",
        ["dns"],
        "Blob storage for backups, artefacts, logs.",
    ),
    (
        "cdn-config-api",
        "CDN configuration API",
        1,
        "platform",
        ["sso", "dns", "secrets"],
        "Pushes edge configuration worldwide.",
    ),
    (
        "database-admin",
        "Database administration",
        1,
        "data",
        ["bastion", "secrets"],
        "Primary PostgreSQL clusters.",
    ),
    ("paging", "Paging", 1, "platform", ["dns"], "On-call paging (external vendor)."),
    ("chat", "Chat", 2, "platform", ["sso", "dns"], "Staff chat; logs in through SSO."),
    (
        "observability",
        "Observability",
        2,
        "platform",
        ["sso", "object-storage"],
        "Metrics, logs and traces.",
    ),
    ("ci-cd", "CI/CD", 2, "platform", ["sso", "secrets", "object-storage"], "Builds and deploys."),
    (
        "customer-dashboard",
        "Customer dashboard",
        1,
        "product",
        ["dns", "cdn-config-api", "database-admin"],
        "Where customers manage their accounts.",
    ),
    ("billing", "Billing", 2, "product", ["database-admin", "secrets"], "Invoices and payments."),
    ("ticketing", "Ticketing", 3, "support", ["sso"], "Customer support tickets."),
    (
        "support-tooling",
        "Support tooling",
        2,
        "support",
        ["sso", "ticketing", "database-admin"],
        "Account lookups for support staff.",
    ),
    ("status-page", "Status page", 2, "product", ["dns", "object-storage"], "Public status page."),
]

# slug, service, name, method, scopes, max minutes, k, self-issue, requires, responder group
PATHS = [
    (
        "sso-break-glass",
        "sso",
        "SSO emergency admin token",
        "signed-token",
        ["read", "admin"],
        60,
        2,
        True,
        ["dns"],
        roles.RESPONDER,
    ),
    # The deliberate flaw: the only other way into SSO needs chat, which logs in through SSO.
    (
        "sso-admin-via-chat",
        "sso",
        "SSO admin via chat bot",
        "signed-token",
        ["admin"],
        30,
        1,
        False,
        ["chat"],
        roles.RESPONDER,
    ),
    (
        "dns-emergency-token",
        "dns",
        "DNS zone editor token",
        "signed-token",
        ["read", "write"],
        60,
        1,
        True,
        [],
        roles.RESPONDER,
    ),
    (
        "vpn-console-ssh",
        "vpn",
        "VPN appliance console (SSH)",
        "ssh-certificate",
        ["login"],
        60,
        2,
        False,
        ["bastion"],
        roles.RESPONDER,
    ),
    (
        "network-oob-ssh",
        "network-config",
        "Out-of-band router console (SSH)",
        "ssh-certificate",
        ["login"],
        60,
        2,
        True,
        [],
        roles.RESPONDER,
    ),
    (
        "bastion-ssh",
        "bastion",
        "Bastion host login (SSH)",
        "ssh-certificate",
        ["login"],
        120,
        1,
        True,
        ["dns"],
        roles.RESPONDER,
    ),
    (
        "secrets-unseal",
        "secrets",
        "Secrets manager unseal token",
        "signed-token",
        ["unseal", "read"],
        30,
        2,
        False,
        [],
        roles.RESPONDER,
    ),
    (
        "object-storage-admin",
        "object-storage",
        "Object storage admin token",
        "signed-token",
        ["read", "write"],
        60,
        1,
        False,
        ["dns"],
        roles.RESPONDER,
    ),
    (
        "cdn-config-token",
        "cdn-config-api",
        "CDN config rollback token",
        "signed-token",
        ["read", "rollback"],
        60,
        2,
        True,
        ["dns"],
        roles.RESPONDER,
    ),
    (
        "database-admin-ssh",
        "database-admin",
        "Database host login (SSH)",
        "ssh-certificate",
        ["login"],
        120,
        2,
        False,
        ["bastion"],
        "dba-oncall",
    ),
    (
        "paging-admin",
        "paging",
        "Paging vendor admin token",
        "signed-token",
        ["admin"],
        60,
        1,
        True,
        [],
        roles.RESPONDER,
    ),
    (
        "chat-admin",
        "chat",
        "Chat local admin token",
        "signed-token",
        ["admin"],
        60,
        1,
        False,
        ["dns"],
        roles.RESPONDER,
    ),
    (
        "observability-read",
        "observability",
        "Observability read-only token",
        "signed-token",
        ["read"],
        240,
        1,
        True,
        ["object-storage"],
        roles.RESPONDER,
    ),
    (
        "ci-cd-deploy-freeze",
        "ci-cd",
        "CI/CD deploy freeze token",
        "signed-token",
        ["freeze", "rollback"],
        60,
        1,
        False,
        ["secrets"],
        roles.RESPONDER,
    ),
    (
        "customer-dashboard-ops",
        "customer-dashboard",
        "Dashboard operations token",
        "signed-token",
        ["read", "maintenance-mode"],
        60,
        2,
        False,
        ["dns"],
        roles.RESPONDER,
    ),
    (
        "billing-ops",
        "billing",
        "Billing operations token",
        "signed-token",
        ["read", "pause-runs"],
        60,
        2,
        False,
        ["secrets"],
        roles.RESPONDER,
    ),
    (
        "ticketing-admin",
        "ticketing",
        "Ticketing admin token",
        "signed-token",
        ["admin"],
        60,
        1,
        False,
        [],
        roles.RESPONDER,
    ),
    (
        "support-tooling-read",
        "support-tooling",
        "Support tooling read token",
        "signed-token",
        ["read"],
        60,
        1,
        False,
        ["ticketing"],
        roles.RESPONDER,
    ),
    (
        "status-page-publish",
        "status-page",
        "Status page publish token",
        "signed-token",
        ["publish"],
        60,
        1,
        True,
        ["object-storage"],
        roles.RESPONDER,
    ),
]

# username, first name, roles, extra groups, team, staff
PEOPLE = [
    ("rita", "Rita", [roles.RESPONDER], [], "identity", False),
    ("ravi", "Ravi", [roles.RESPONDER], ["dba-oncall"], "data", False),
    ("nora", "Nora", [roles.RESPONDER], [], "network", False),
    ("alex", "Alex", [roles.APPROVER], ["dba-oncall"], "platform", False),
    ("bea", "Bea", [roles.APPROVER], [], "security", False),
    ("carl", "Carl", [roles.APPROVER], [], "identity", False),
    ("ines", "Ines", [roles.INCIDENT_COMMANDER, roles.RESPONDER], [], "platform", False),
    ("cody", "Cody", [roles.COMMS_LEAD], [], "support", False),
    ("dana", "Dana", [roles.DRILL_COORDINATOR], [], "security", False),
    ("ada", "Ada", [roles.ADMINISTRATOR], [], "security", True),
]

# The demo's probed SSH path: its drill logs in to an sshd here (docs/drills.md); with
# nothing listening on the demo machine the probe step says "unreachable".
SSH_PROBE = {"bastion-ssh": ("127.0.0.1", 2222, "breakglass")}


def _credentials_paths() -> tuple[Path, Path]:
    data_dir = Path(settings.DATA_DIR)
    return data_dir / "demo-credentials.json", data_dir / "demo-credentials.txt"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def _person(username, first_name, role_names, extra_groups, team, staff, creds) -> bool:
    user = User.objects.filter(username=username).first()
    created = user is None
    if created:
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user(
            username=username,
            email=f"{username}@example.org",
            password=password,
            first_name=first_name,
            is_staff=staff,
            is_superuser=staff,
        )
        totp = TOTPDevice.objects.create(
            user=user, name="authenticator", key=random_hex(20), confirmed=True
        )
        static = StaticDevice.objects.create(user=user, name="backup codes", confirmed=True)
        codes = [StaticToken.random_token() for _ in range(5)]
        for code in codes:
            static.token_set.create(token=code)
        creds[username] = {
            "password": password,
            "totp_secret": base64.b32encode(totp.bin_key).decode(),
            "backup_codes": codes,
            "roles": role_names,
        }
    for name in [*role_names, *extra_groups]:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    Team.objects.get(slug=team).members.add(user)
    return created


def _ssh_ca(slug: str):
    """Each SSH path its own CA: a certificate from one path never opens another's hosts."""
    from breakglass.keys.services import ssh_ca_create

    return ssh_ca_create(name=f"{slug} CA")


def _credentials_text(creds: dict) -> str:
    lines = [
        "Breakglass demo credentials. Generated by `python manage.py seed_demo`; keep private.",
        "Log in with the password, then the 6-digit code from `python manage.py demo_otp USERNAME`",
        "(or add the TOTP secret to an authenticator app, or use one backup code once).",
        "",
    ]
    for username, entry in creds.items():
        lines += [
            f"{username}  ({', '.join(entry['roles'])})",
            f"  password:     {entry['password']}",
            f"  TOTP secret:  {entry['totp_secret']}",
            f"  backup codes: {' '.join(entry['backup_codes'])}",
            "",
        ]
    return "\n".join(lines)


def seed_demo(*, stdout=None) -> None:
    from breakglass.keys.services import bundle_refresh, keys_bootstrap

    stdout = stdout or sys.stdout
    json_path, text_path = _credentials_paths()
    creds: dict = json.loads(json_path.read_text()) if json_path.exists() else {}
    with transaction.atomic():
        keys_bootstrap()
        for name in [*roles.ALL_ROLES, "dba-oncall"]:
            Group.objects.get_or_create(name=name)
        for name, slug in TEAMS:
            Team.objects.get_or_create(slug=slug, defaults={"name": name})
        for slug, name, tier, team, _deps, description in SERVICES:
            CriticalService.objects.get_or_create(
                slug=slug,
                defaults={
                    "name": name,
                    "tier": tier,
                    "owning_team": Team.objects.get(slug=team),
                    "description": description,
                    "runbook_url": f"https://runbooks.example.org/{slug}",
                },
            )
        services = {service.slug: service for service in CriticalService.objects.all()}
        for slug, _name, _tier, _team, deps, _description in SERVICES:
            services[slug].depends_on.add(*(services[dep] for dep in deps))
        approver_group = Group.objects.get(name=roles.APPROVER)
        for (
            slug,
            service,
            name,
            method,
            scopes,
            minutes,
            k,
            self_issue,
            requires,
            responders,
        ) in PATHS:
            is_ssh = method == BackupPath.Method.SSH_CERTIFICATE
            probe_host, probe_port, probe_login = SSH_PROBE.get(slug, ("", 22, ""))
            path, created = BackupPath.objects.get_or_create(
                slug=slug,
                defaults={
                    "service": services[service],
                    "name": name,
                    "method": method,
                    "scopes": scopes,
                    "max_lifetime_minutes": minutes,
                    "approvals_required": k,
                    "approver_group": approver_group,
                    "responder_group": Group.objects.get(name=responders),
                    "allow_self_issue": self_issue,
                    "request_ttl_minutes": 30,
                    "ssh_principals": [ssh_principal_default(slug)] if is_ssh else [],
                    # A callable: get_or_create makes the CA only when it makes the path.
                    "ssh_ca": functools.partial(_ssh_ca, slug) if is_ssh else None,
                    "probe_ssh_host": probe_host,
                    "probe_ssh_port": probe_port,
                    "probe_ssh_login": probe_login,
                },
            )
            if created:
                path.requires.add(*(services[dep] for dep in requires))
        new_people = [person[0] for person in PEOPLE if _person(*person, creds)]
        # Publish the SSH paths' CAs and KRLs now rather than at the next scheduled refresh.
        bundle_refresh()
    if new_people or not text_path.exists():
        _write_private(json_path, json.dumps(creds, indent=2))
        _write_private(text_path, _credentials_text(creds))

    # The other areas seed their own demo data on top of this organisation, when present.
    for module in ("drills.seed", "comms.seed"):
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).seed_demo(stdout=stdout)

    users = ", ".join(f"{p[0]} ({'/'.join(p[2])})" for p in PEOPLE)
    stdout.write(
        f"Demo organisation ready: {len(SERVICES)} critical services, {len(PATHS)} backup paths, "
        f"{len(PEOPLE)} people (new this run: {', '.join(new_people) or 'none'}).\n"
        "\n"
        "Log in:\n"
        f"  URL:       {settings.BREAKGLASS_BASE_URL}/accounts/login/\n"
        f"  Users:     {users}\n"
        f"  Passwords: {text_path} (with TOTP secrets and backup codes)\n"
        "  OTP code:  python manage.py demo_otp USERNAME\n"
        "\n"
        "Try it: log in as rita and break the glass on dns-emergency-token; request access on\n"
        "sso-break-glass and approve it as alex and bea; run `python manage.py check_paths` to\n"
        "see the deliberately flawed path sso-admin-via-chat (sso -> chat -> sso).\n"
    )
