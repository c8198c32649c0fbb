"""A small organisation in the middle of an incident, for the overview tests and the
phone screenshots: every section of "what needs me now" has something in it for someone.

- rita (responder) asked for sso-backup (2 approvals): alex approved, bea has not yet;
  she broke the glass on dns-emergency: a live emergency grant whose review is open.
- ines commands, and cody is the communications lead of, a SEV2 with a published update
  (so the next one is due); rita is invited to a human drill of dns-emergency.
"""

from __future__ import annotations

from dataclasses import dataclass

from breakglass.access.grants import grant_approve, grant_request, grant_self_issue
from breakglass.access.models import BackupPath, Grant
from breakglass.accounts import roles
from comms import incidents, updates
from comms.models import Incident
from devkit.factories import user_make
from drills.definitions import drill_create
from drills.human import human_run_create
from drills.models import DrillRun
from tests.breakglass.conftest import path_make, service_make


@dataclass
class World:
    rita: object
    alex: object
    bea: object
    ines: object
    cody: object
    dana: object
    ada: object
    sso: BackupPath
    dns: BackupPath
    pending: Grant
    emergency: Grant
    incident: Incident
    drill_run: DrillRun


def people() -> dict:
    return {
        "rita": user_make("rita", role_names=(roles.RESPONDER,), first_name="Rita"),
        "alex": user_make("alex", role_names=(roles.APPROVER,), first_name="Alex"),
        "bea": user_make("bea", role_names=(roles.APPROVER,), first_name="Bea"),
        "ines": user_make("ines", role_names=(roles.INCIDENT_COMMANDER,), first_name="Ines"),
        "cody": user_make("cody", role_names=(roles.COMMS_LEAD,), first_name="Cody"),
        "dana": user_make("dana", role_names=(roles.DRILL_COORDINATOR,), first_name="Dana"),
        "ada": user_make("ada", role_names=(roles.ADMINISTRATOR,), is_staff=True, first_name="Ada"),
    }


def world_make() -> World:
    """Needs bootstrapped keys (the `trust` fixture, or keys_bootstrap())."""
    p = people()
    sso = path_make("sso-backup", service="sso", approvals_required=2, allow_self_issue=False)
    dns = path_make("dns-emergency", service="dns", approvals_required=1, allow_self_issue=True)
    pending = grant_request(
        path=sso,
        requester=p["rita"],
        reason="SSO admin console returns 500 for everyone",
        incident_ref="INC-2026-0042",
        lifetime_minutes=30,
    )
    grant_approve(grant=pending, approver=p["alex"])
    emergency, _token = grant_self_issue(
        path=dns,
        requester=p["rita"],
        reason="Zone apex records deleted",
        confirmation="dns-emergency",
        incident_ref="INC-2026-0042",
        lifetime_minutes=45,
    )
    drill = drill_create(name="Human DNS", owner=p["dana"], kind="human", paths=[dns])
    drill_run = human_run_create(drill=drill, path=dns, participants=[p["rita"]])
    incident = incidents.incident_declare(
        title="DNS answers SERVFAIL",
        severity=2,
        actor=p["ines"],
        services=[(service_make("dns"), "major_outage")],
        commander=p["ines"],
        comms_lead=p["cody"],
    )
    update = updates.status_update_draft(
        incident=incident,
        audience="external",
        body="We are looking into {{ affected_services }}.",
        actor=p["cody"],
    )
    updates.status_update_review(update=update, reviewer=p["ines"], approve=True)
    updates.status_update_publish(update=update, actor=p["cody"])
    return World(
        **p,
        sso=sso,
        dns=dns,
        pending=pending,
        emergency=emergency,
        incident=incident,
        drill_run=drill_run,
    )
