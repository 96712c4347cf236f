import csv
import io
import json

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from newsletter.models import ConsentEvent, ConsentText, Subscription, SubscriptionState
from newsletter.services.consent import subscription_confirm, subscription_request
from tests.newsletter.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def staff(username, group):
    user = User.objects.create_user(username, password="x", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def manager_client(client):
    client.force_login(staff("verwaltung", "Newsletter-Verwaltung"))
    return client


@pytest.fixture
def confirmed(newsletter):
    sub = subscription_request(
        address="beleg@example.org",
        newsletter=newsletter,
        ip="203.0.113.5",
        user_agent="Browser",
        url="http://testserver/artikel/x/",
        form="signup_box",
        language="de",
    )
    return subscription_confirm(
        subscription_id=sub.id, confirm_round=sub.confirm_round, ip="203.0.113.5", user_agent="B"
    )


def test_editors_see_nothing_of_the_newsletter_admin(client, confirmed):
    client.force_login(staff("redakteurin", "Redaktion"))
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert "/admin/newsletter/" not in index.content.decode()
    for url in (
        reverse("admin:newsletter_subscription_changelist"),
        reverse("admin:newsletter_subscription_change", args=[confirmed.id]),
        reverse("admin:newsletter_subscription_proof", args=[confirmed.id]),
        reverse("admin:newsletter_subscription_proof_json", args=[confirmed.id]),
        reverse("admin:newsletter_consentevent_changelist"),
        reverse("admin:newsletter_newsletter_changelist"),
    ):
        assert client.get(url).status_code == 403, url


def test_manager_filters_searches_and_sees_the_log_read_only(manager_client, confirmed, newsletter):
    changelist = reverse("admin:newsletter_subscription_changelist")
    response = manager_client.get(
        changelist,
        {"state__exact": "confirmed", "newsletter__id__exact": newsletter.id, "q": "beleg"},
    )
    assert response.status_code == 200
    assert "beleg@example.org" in response.content.decode()
    change = manager_client.get(
        reverse("admin:newsletter_subscription_change", args=[confirmed.id])
    )
    html = change.content.decode()
    assert "203.0.113.5" in html and "signup_box" in html
    assert 'name="events-0-note"' not in html


def test_consent_events_cannot_be_added_changed_or_deleted(manager_client, confirmed):
    event = ConsentEvent.objects.filter(subscription=confirmed).first()
    assert manager_client.get(reverse("admin:newsletter_consentevent_add")).status_code == 403
    url = reverse("admin:newsletter_consentevent_change", args=[event.id])
    manager_client.post(url, {"kind": "revoked", "note": "forged"})
    event.refresh_from_db()
    assert event.data == {"language": "de"} and event.kind == "requested"
    delete = reverse("admin:newsletter_consentevent_delete", args=[event.id])
    assert manager_client.post(delete, {"post": "yes"}).status_code == 403
    assert ConsentEvent.objects.filter(id=event.id).exists()


def test_manual_revocation_asks_for_a_note_and_records_it(manager_client, confirmed):
    changelist = reverse("admin:newsletter_subscription_changelist")
    data = {"action": "revoke_with_note", "_selected_action": [confirmed.id]}
    step = manager_client.post(changelist, data)
    assert step.status_code == 200
    assert "Vermerk" in step.content.decode()
    confirmed.refresh_from_db()
    assert confirmed.state == SubscriptionState.CONFIRMED
    done = manager_client.post(changelist, {**data, "apply": "1", "note": "Brief vom 03.07.2025"})
    assert done.status_code == 302
    confirmed.refresh_from_db()
    assert confirmed.state == SubscriptionState.UNSUBSCRIBED
    event = ConsentEvent.objects.get(subscription=confirmed, kind="revoked")
    assert event.channel == "admin"
    # The note is the manager's text alone; who acted is the event's actor, not prose.
    assert event.note == "Brief vom 03.07.2025"
    assert event.actor.get_username() == "verwaltung"


def test_csv_export_holds_only_confirmed_subscribers(manager_client, confirmed, newsletter):
    SubscriptionFactory(
        newsletter=newsletter, email="offen@example.org", state="pending", confirmed_at=None
    )
    SubscriptionFactory(newsletter=newsletter, email="=cmd@example.org")
    response = manager_client.post(
        reverse("admin:newsletter_subscription_changelist"),
        {
            "action": "export_confirmed_csv",
            "_selected_action": list(Subscription.objects.values_list("id", flat=True)),
        },
    )
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    emails = sorted(row[0] for row in rows[1:])
    assert emails == ["'=cmd@example.org", "beleg@example.org"]


def test_proof_as_json_and_printable_page(manager_client, confirmed):
    data = json.loads(
        manager_client.get(
            reverse("admin:newsletter_subscription_proof_json", args=[confirmed.id])
        ).content
    )
    assert data["email"] == "beleg@example.org"
    assert [e["kind"] for e in data["events"]] == ["requested", "confirmed"]
    text = ConsentText.objects.get(newsletter=confirmed.newsletter, language="de")
    assert data["events"][0]["text_sha256"] == text.sha256
    page = manager_client.get(reverse("admin:newsletter_subscription_proof", args=[confirmed.id]))
    assert page.status_code == 200
    assert text.sha256 in page.content.decode()


def test_editing_the_consent_text_in_the_admin_makes_a_new_version(manager_client, newsletter):
    url = reverse("admin:newsletter_newsletter_change", args=[newsletter.id])
    form = manager_client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name in form.fields
    }
    data.update(
        {
            "starts_at_0": newsletter.starts_at.strftime("%d.%m.%Y"),
            "starts_at_1": newsletter.starts_at.strftime("%H:%M:%S"),
            "send_time": "07:00",
            "consent_text_de": "Neuer Text, Version zwei.",
            "consent_texts-TOTAL_FORMS": "0",
            "consent_texts-INITIAL_FORMS": "0",
        }
    )
    for flag in ("welcome_mail", "is_active", "offers_daily", "offers_weekly"):
        if not data.get(flag):
            data.pop(flag, None)
    response = manager_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    versions = list(
        ConsentText.objects.filter(newsletter=newsletter, language="de").values_list(
            "version", "text"
        )
    )
    assert versions[0] == (2, "Neuer Text, Version zwei.")
    assert versions[1][0] == 1 and "Ich bin damit einverstanden" in versions[1][1]


@pytest.mark.parametrize("name", ["Redaktion\r\nBcc: x@evil.example", "Zeile\neins", "CR\rallein"])
def test_a_sender_name_with_a_line_break_is_refused_with_a_clear_message(
    manager_client, newsletter, name
):
    """A From header cannot hold a line break: saving one would make every confirmation fail."""
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    url = reverse("admin:newsletter_newsletter_change", args=[newsletter.id])
    form = manager_client.get(url).context["adminform"].form
    data = {
        name: value
        for name, value in form.initial.items()
        if value is not None and name in form.fields
    }
    data.update(
        {
            "sender_name": name,
            "starts_at_0": newsletter.starts_at.strftime("%d.%m.%Y"),
            "starts_at_1": newsletter.starts_at.strftime("%H:%M:%S"),
            "send_time": "07:00",
            "consent_texts-TOTAL_FORMS": "0",
            "consent_texts-INITIAL_FORMS": "0",
        }
    )
    for flag in ("welcome_mail", "is_active", "offers_daily", "offers_weekly"):
        if not data.get(flag):
            data.pop(flag, None)
    response = manager_client.post(url, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["sender_name"] == ["Der Absendername darf keine Zeilenumbrüche enthalten."]
    newsletter.refresh_from_db()
    assert newsletter.sender_name == "Redaktion"
    # The model refuses it too, and the database as the last line.
    newsletter.sender_name = name
    with pytest.raises(ValidationError, match="Zeilenumbrüche") as caught:
        newsletter.full_clean()
    assert caught.value.error_dict["sender_name"][0].code == "line_break"
    with (
        pytest.raises(IntegrityError, match="newsletter_sender_name_one_line"),
        transaction.atomic(),
    ):
        type(newsletter).objects.filter(pk=newsletter.pk).update(sender_name=name)


def test_proof_shows_each_text_in_the_language_it_was_agreed_in(manager_client, newsletter):
    from newsletter.models import ConsentText

    english = ConsentText.objects.get(newsletter=newsletter, language="en")
    sub = subscription_request(
        address="english@example.org",
        newsletter=newsletter,
        ip="203.0.113.5",
        user_agent="Browser",
        url="http://testserver/en/artikel/x/",
        form="signup_box",
        language="en",
        consent_text=english,
    )
    page = manager_client.get(reverse("admin:newsletter_subscription_proof", args=[sub.id]))
    html = page.content.decode()
    # The proof document is in the subscription's language and quotes the text it agreed to.
    assert '<html lang="en">' in html
    assert "Sign up here for the free newsletter" in html


def test_every_field_the_newsletter_admin_shows_has_a_german_label():
    """A field without verbose_name shows its Python name ("Created at", "Nach kind")."""
    from django.contrib import admin
    from django.core.exceptions import FieldDoesNotExist

    unlabelled = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label != "newsletter":
            continue
        shown = [
            (model, name)
            for attr in ("list_display", "list_filter", "readonly_fields")
            for name in getattr(model_admin, attr) or []
            if isinstance(name, str)
        ]
        shown += [
            (inline.model, name) for inline in model_admin.inlines for name in inline.fields or []
        ]
        for owner, name in shown:
            try:
                field = owner._meta.get_field(name)
            except FieldDoesNotExist:
                continue
            if str(field.verbose_name) == name.replace("_", " "):
                unlabelled.append(f"{owner.__name__}.{name}")
    assert unlabelled == []
