import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from breakglass.outbox.models import OutboxMessage
from comms import subscribers
from comms.models import Subscriber
from tests.comms.conftest import subscriber_make


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.test", "a b@example.test", ""])
def test_malformed_email_is_refused(db, email):
    with pytest.raises(ValidationError, match="not a valid e-mail address"):
        subscribers.subscriber_subscribe(email=email)
    assert not Subscriber.objects.exists()


def test_subscribing_sends_one_confirmation_and_nothing_else_until_confirmed(db, sso):
    sub = subscribers.subscriber_subscribe(email="Reader@Example.test", services=[sso])
    subscribers.subscriber_subscribe(email="reader@example.test", services=[sso])  # again
    assert Subscriber.objects.count() == 1
    confirmations = OutboxMessage.objects.filter(idempotency_key__startswith="comms.confirm:")
    assert confirmations.count() == 1
    assert f"/status/subscribe/confirm/{sub.token}/" in confirmations.get().payload["body"]
    assert not sub.active


def test_confirm_link_needs_a_post_and_then_activates(db):
    sub = subscribers.subscriber_subscribe(email="reader@example.test")
    client = Client()
    url = f"/status/subscribe/confirm/{sub.token}/"
    assert client.get(url).status_code == 200  # a prefetching mail scanner confirms nothing
    sub.refresh_from_db()
    assert not sub.active
    response = client.post(url)
    assert b"Subscribed" in response.content
    sub.refresh_from_db()
    assert sub.active


def test_one_click_unsubscribe_works_without_a_csrf_token(db):
    sub = subscribers.subscriber_subscribe(email="reader@example.test")
    subscribers.subscriber_confirm(token=sub.token)
    client = Client(enforce_csrf_checks=True)
    response = client.post(f"/status/unsubscribe/{sub.token}/", {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    sub.refresh_from_db()
    assert sub.unsubscribed_at is not None
    assert client.post(f"/status/unsubscribe/{sub.token}/").status_code == 200  # idempotent


def test_unknown_tokens_get_a_clear_404(db):
    response = Client().post("/status/unsubscribe/nope/")
    assert response.status_code == 404
    assert b"not valid" in response.content


def test_public_subscribe_form_reports_a_bad_address(db):
    response = Client().post("/status/subscribe/", {"email": "bad@@x"})
    assert response.status_code == 200
    assert b"is not a valid e-mail address" in response.content
    assert not Subscriber.objects.exists()


def test_export_lists_every_subscriber_as_csv(as_user, comms_lead, sso):
    subscribers.subscriber_subscribe(email="one@example.test", services=[sso])
    subscribers.subscriber_confirm(
        token=subscribers.subscriber_subscribe(email="two@example.test").token
    )
    response = as_user(comms_lead).get("/comms/subscribers/export.csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "email,status,drill,services,created_at,confirmed_at"
    assert lines[1].startswith("one@example.test,pending,no,sso,")
    assert lines[2].startswith("two@example.test,active,no,all,")


@pytest.mark.parametrize("prefix", ["=", "+", "-", "@"])
def test_export_neutralises_cells_a_spreadsheet_would_run_as_formulas(as_user, comms_lead, prefix):
    address = f"{prefix}hyperlink@example.test" if prefix != "@" else "x@example.test"
    subscribers.subscriber_subscribe(email=address)
    if prefix == "@":  # no valid address starts with @: check the writer on a service slug
        from comms.views import _FormulaSafeWriter

        rows = []
        _FormulaSafeWriter(type("W", (), {"writerow": lambda self, r: rows.append(r)})()).writerow(
            ["@SUM(A1)", "\tx", "\rx", "ok"]
        )
        assert rows == [["'@SUM(A1)", "'\tx", "'\rx", "ok"]]
        return
    response = as_user(comms_lead).get("/comms/subscribers/export.csv")
    lines = response.content.decode().splitlines()
    assert lines[1].startswith(f"'{address},pending,")


# --- an anonymous request never changes a confirmed subscription by itself ---------------


def test_an_anonymous_request_does_not_change_a_confirmed_subscription(db, sso, vpn):
    reader = subscriber_make("reader@example.test", services_=[sso])

    response = Client().post(
        "/status/subscribe/", {"email": "reader@example.test", "services": [vpn.pk]}
    )

    assert b"Check your inbox" in response.content  # the same answer as for a new address
    reader.refresh_from_db()
    assert list(reader.services.all()) == [sso]
    assert reader.active and reader.pending_services == [vpn.pk]
    [mail] = OutboxMessage.objects.filter(idempotency_key__startswith="comms.change:")
    assert mail.recipient == "reader@example.test"
    assert "to: VPN" in mail.payload["body"]
    assert f"/status/subscribe/confirm/{reader.change_token}/" in mail.payload["body"]


def test_the_change_applies_when_the_mailed_link_is_followed(db, sso, vpn):
    reader = subscriber_make("reader@example.test", services_=[sso])
    subscribers.subscriber_subscribe(email="reader@example.test", services=[vpn])
    reader.refresh_from_db()

    response = Client().post(f"/status/subscribe/confirm/{reader.change_token}/")

    assert response.status_code == 200
    reader.refresh_from_db()
    assert list(reader.services.all()) == [vpn]
    assert reader.pending_services is None and reader.change_token == ""
    assert Client().post(f"/status/subscribe/confirm/{reader.token}/").status_code == 200
    reader.refresh_from_db()
    assert list(reader.services.all()) == [vpn]  # the subscription link changes nothing


def test_asking_for_the_same_change_twice_mails_once_and_no_change_mails_nothing(db, sso, vpn):
    subscriber_make("reader@example.test", services_=[sso])
    subscribers.subscriber_subscribe(email="reader@example.test", services=[sso])
    subscribers.subscriber_subscribe(email="reader@example.test", services=[vpn])
    subscribers.subscriber_subscribe(email="reader@example.test", services=[vpn])

    assert OutboxMessage.objects.filter(idempotency_key__startswith="comms.change:").count() == 1


def test_anonymous_subscriptions_are_not_audit_events(db, sso):
    from breakglass.audit.models import AuditEvent

    sub = subscribers.subscriber_subscribe(email="reader@example.test", services=[sso])
    subscribers.subscriber_confirm(token=sub.token)
    subscribers.subscriber_unsubscribe(token=sub.token)

    assert not AuditEvent.objects.filter(action__startswith="comms.subscriber").exists()
