"""The incident room as each person reads it: every control labelled, the cadence box with
the next external update's due time and the time left (late in red), and the draft form
first for the communications lead."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine

from comms import updates
from comms.models import StatusUpdate
from tests.labels import duplicate_ids, unlabelled_controls


def room(client, incident) -> str:
    response = client.get(f"/comms/incidents/{incident.reference}/")
    assert response.status_code == 200
    return response.content.decode()


def cadence_box(html: str) -> str:
    box = html[html.index('id="cadence"') : html.index('id="services"')]
    return " ".join(re.sub(r"<[^>]+>", "", box).split())


def test_every_form_control_of_the_room_has_a_label(as_user, published, comms_lead, commander):
    # A draft waiting for review adds the review and override forms to the page.
    updates.status_update_draft(
        incident=published.incident, audience="external", body="More.", actor=comms_lead
    )
    for person in (comms_lead, commander):
        html = room(as_user(person), published.incident)
        assert 'id="draft-form"' in html and 'id="role-form"' in html
        assert ("review-form" in html) is (person == commander)  # not the author's own
        assert unlabelled_controls(html) == []
        assert duplicate_ids(html) == []


def test_before_the_first_update_the_box_shows_when_it_is_due_and_the_time_left(
    as_user, sev1, comms_lead
):
    with time_machine.travel(sev1.declared_at + timedelta(minutes=18), tick=False):
        box = cadence_box(room(as_user(comms_lead), sev1))
    due = sev1.declared_at + timedelta(minutes=30)
    assert f"First external update due {due:%H:%M} UTC: 12 minutes left" in box
    assert "—" not in box and "late" not in box


def test_an_overdue_update_is_late_with_a_class_not_an_inline_style(as_user, published):
    due = published.next_update_at
    with time_machine.travel(due + timedelta(minutes=7), tick=False):
        html = room(as_user(published.author), published.incident)
    box = cadence_box(html)
    assert f"Next external update due {due:%H:%M} UTC: late by 7 minutes" in box
    assert re.search(r'<p class="due late">\s*Next external update due', html)
    assert "style=" not in html


def test_the_box_counts_down_to_the_time_the_last_update_promised(as_user, published):
    due = published.next_update_at
    with time_machine.travel(due - timedelta(minutes=25), tick=False):
        box = cadence_box(room(as_user(published.author), published.incident))
    assert f"Next external update due {due:%H:%M} UTC: 25 minutes left" in box
    assert "The first external update came within a minute of declaring." in box


def test_a_resolved_incident_has_nothing_due(as_user, published, comms_lead, commander):
    final = updates.status_update_draft(
        incident=published.incident,
        audience="external",
        body="All clear.",
        state="resolved",
        actor=comms_lead,
    )
    updates.status_update_review(update=final, reviewer=commander, approve=True)
    updates.status_update_publish(update=final, actor=comms_lead)
    assert "Resolved: no more updates due." in cadence_box(
        room(as_user(comms_lead), published.incident)
    )


def test_the_draft_form_comes_first_for_the_communications_lead(
    as_user, sev1, comms_lead, commander
):
    lead = room(as_user(comms_lead), sev1)
    assert lead.index('id="draft-form"') < lead.index('id="summary"')
    # Its heading carries the due time, so the lead sees it without scrolling.
    heading = lead[lead.index('id="h-draft"') : lead.index('id="draft-form"')]
    assert "First external update due" in heading
    other = room(as_user(commander), sev1)
    assert other.index('id="summary"') < other.index('id="draft-form"')
    assert other.count("First external update due") == 1  # only in the cadence box


def test_the_external_template_for_the_state_is_ready_in_the_draft_form(as_user, sev1, comms_lead):
    client = as_user(comms_lead)
    html = room(client, sev1)
    assert re.search(r'<option value="\d+" selected>External: investigating</option>', html)
    # Saved as is (no text typed): the selected template is the text.
    template = re.search(r'<option value="(\d+)" selected>External: investigating', html)[1]
    client.post(
        f"/comms/incidents/{sev1.reference}/draft/",
        {"audience": "external", "state": "investigating", "template": template, "action": "save"},
    )
    assert StatusUpdate.objects.get().body.startswith(
        "We are looking into a major outage of Single sign-on.\n"
    )


def test_the_box_counts_updates_on_time_and_late_once_there_are_several(
    as_user, published, comms_lead, commander
):
    due = published.next_update_at
    with time_machine.travel(due + timedelta(minutes=5), tick=False):
        late = updates.status_update_draft(
            incident=published.incident, audience="external", body="Later.", actor=comms_lead
        )
        updates.status_update_review(update=late, reviewer=commander, approve=True)
        updates.status_update_publish(update=late, actor=comms_lead)
    with time_machine.travel(due + timedelta(minutes=6), tick=False):
        box = cadence_box(room(as_user(comms_lead), published.incident))
    assert "within a minute of declaring; since then 0 on time, 1 late." in box
