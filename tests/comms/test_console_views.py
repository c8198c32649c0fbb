import pytest

from comms.models import Incident, StatusUpdate


def test_declaring_a_sev1_without_a_comms_lead_shows_the_error(as_user, commander, sso):
    response = as_user(commander).post(
        "/comms/declare/", {"title": "Down", "severity": "1", "impact": "major_outage"}
    )
    assert response.status_code == 200
    assert b"cannot be declared without a communications lead" in response.content
    assert not Incident.objects.exists()


def test_declare_then_open_the_room(as_user, commander, comms_lead, sso):
    response = as_user(commander).post(
        "/comms/declare/",
        {
            "title": "Down",
            "severity": "1",
            "impact": "major_outage",
            "services": [sso.pk],
            "commander": commander.pk,
            "comms_lead": comms_lead.pk,
        },
    )
    incident = Incident.objects.get()
    assert response["Location"] == f"/comms/incidents/{incident.reference}/"
    room = as_user(comms_lead).get(response["Location"]).content.decode()
    assert "cody-comms" in room and "ines-commander" in room
    assert "Cadence clock" in room and "Every 30 minutes" in room


def test_preview_reports_unknown_variables(as_user, sev1, comms_lead):
    response = as_user(comms_lead).post(
        f"/comms/incidents/{sev1.reference}/draft/",
        {
            "audience": "external",
            "state": "investigating",
            "body": "ETA {{ eta }}",
            "action": "preview",
        },
    )
    assert b"unknown variable {{ eta }}" in response.content
    assert not StatusUpdate.objects.exists()


def test_preview_renders_without_saving(as_user, sev1, comms_lead):
    response = as_user(comms_lead).post(
        f"/comms/incidents/{sev1.reference}/draft/",
        {
            "audience": "external",
            "state": "investigating",
            "body": "{{ affected_services }} down",
            "action": "preview",
        },
    )
    assert b"Single sign-on down" in response.content
    assert not StatusUpdate.objects.exists()


def test_publishing_without_review_is_refused_with_a_message(as_user, sev1, comms_lead):
    client = as_user(comms_lead)
    client.post(
        f"/comms/incidents/{sev1.reference}/draft/",
        {"audience": "external", "state": "investigating", "body": "x", "action": "save"},
    )
    update = StatusUpdate.objects.get()
    response = client.post(f"/comms/updates/{update.pk}/publish/", follow=True)
    assert b"need an approving review by a second person" in response.content
    update.refresh_from_db()
    assert update.status == "draft"


def test_bad_webhook_url_is_a_form_error(as_user, comms_lead):
    response = as_user(comms_lead).post(
        "/comms/webhooks/", {"name": "x", "url": "gopher://x", "format": "json"}
    )
    assert b"must start with http:// or https://" in response.content


def test_people_without_a_role_are_turned_away(as_user, outsider, sev1):
    assert as_user(outsider).get("/comms/").status_code == 403
    assert (
        as_user(outsider)
        .post(f"/comms/incidents/{sev1.reference}/notes/", {"body": "x"})
        .status_code
        == 403
    )


def test_postmortem_link_must_be_http(as_user, sev1, commander):
    client = as_user(commander)
    response = client.post(
        f"/comms/incidents/{sev1.reference}/postmortem/",
        {"url": "javascript:alert(1)"},
        follow=True,
    )
    assert b"must be an http(s) URL" in response.content
    client.post(
        f"/comms/incidents/{sev1.reference}/postmortem/", {"url": "https://wiki.example/pm"}
    )
    sev1.refresh_from_db()
    assert sev1.postmortem_url == "https://wiki.example/pm"


@pytest.mark.parametrize(
    "body, message",
    [
        ("{{ title|date:'r' }}", b"the filter &#x27;date&#x27; is not allowed"),
        ("{{ title|default:severity }}", b"takes a quoted text, not a variable"),
        ("{{ title|upper:'x' }}", b"Template syntax error"),
        ("{{ title|truncatechars:3 }}", b"the filter &#x27;truncatechars&#x27; is not allowed"),
    ],
)
def test_preview_refuses_a_filter_or_argument_it_cannot_render(
    as_user, sev1, comms_lead, body, message
):
    response = as_user(comms_lead).post(
        f"/comms/incidents/{sev1.reference}/draft/",
        {"audience": "external", "state": "investigating", "body": body, "action": "preview"},
    )
    assert response.status_code == 200
    assert message in response.content
    assert not StatusUpdate.objects.exists()


def test_a_template_saved_with_a_date_filter_is_refused_up_front(comms_lead):
    from django.core.exceptions import ValidationError

    from comms.templating import template_validate

    with pytest.raises(ValidationError, match="'date' is not allowed"):
        template_validate("Next update {{ next_update_at|date:'r' }}")
    template_validate("{{ title|default:'untitled'|upper }}")  # text filters stay allowed
