import json
import re

import pytest
from django.core import mail
from django.test import Client, TestCase
from django.urls import reverse

from newsletter import tokens
from newsletter.addresses import address_hmac
from newsletter.forms import form_started_token
from newsletter.models import (
    ConsentEvent,
    ConsentEventKind,
    ConsentText,
    RevocationChannel,
    Subscription,
    SubscriptionState,
    Suppression,
)
from newsletter.services.consent import subscription_revoke, subscription_suppress

pytestmark = pytest.mark.django_db

SIGNUP = "/newsletter/anmelden/"


@pytest.fixture(autouse=True)
def _no_minimum_fill_time(settings):
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 0


def signup_data(newsletter, email="leserin@example.org", **extra):
    text = ConsentText.objects.filter(newsletter=newsletter, language="de").latest("version")
    return {
        "email": email,
        "newsletter": newsletter.slug,
        "consent_text": text.id,
        "page": "/artikel/china-ki/",
        "website": "",
        "started": form_started_token(),
        **extra,
    }


def post_signup(client, newsletter, email="leserin@example.org", capture=None, **extra):
    """The page's POST, with what it leaves to run after commit (the signup task) run."""
    with (capture or TestCase.captureOnCommitCallbacks)(execute=True):
        return client.post(
            SIGNUP, signup_data(newsletter, email, **extra), REMOTE_ADDR="203.0.113.9"
        )


def confirm_path(sub):
    return reverse(
        "newsletter_confirm", kwargs={"token": tokens.make_confirm_token(sub.id, sub.confirm_round)}
    )


def unsubscribe_path(sub):
    return reverse(
        "newsletter_unsubscribe", kwargs={"token": tokens.make_unsubscribe_token(sub.id)}
    )


def preferences_path(sub):
    return reverse(
        "newsletter_preferences",
        kwargs={"token": tokens.make_preferences_token(sub.id, sub.address_hmac)},
    )


def test_signup_page_shows_current_text_verbatim_and_nothing_preticked(client, newsletter):
    response = client.get(SIGNUP)
    assert response.status_code == 200
    html = response.content.decode()
    text = ConsentText.objects.get(newsletter=newsletter, language="de")
    assert "Ich bin damit einverstanden, per E-Mail über Produktneuheiten" in html
    assert f'name="consent_text" value="{text.id}"' in html
    assert "Abschicken" in html
    assert "checked" not in html
    assert "<script" not in html.split("</main>")[0].split("<main")[1]
    assert 'style="' not in html


def test_signup_records_request_with_page_and_mails_confirmation(
    client, newsletter, django_capture_on_commit_callbacks
):
    response = post_signup(client, newsletter, capture=django_capture_on_commit_callbacks)
    assert response.status_code == 303
    assert response["Location"] == "/newsletter/anmelden/danke/"
    sub = Subscription.objects.get()
    event = ConsentEvent.objects.get(subscription=sub, kind=ConsentEventKind.REQUESTED)
    assert event.url == "http://testserver/artikel/china-ki/"
    assert event.ip == "203.0.113.9"
    assert event.form == "signup_box"
    assert len(mail.outbox) == 1
    assert client.get(response["Location"]).status_code == 200


def test_english_signup_records_english_text_and_language(client, newsletter):
    response = client.get("/en/newsletter/anmelden/")
    assert "I agree to be informed by e-mail" in response.content.decode()
    text = ConsentText.objects.get(newsletter=newsletter, language="en")
    with TestCase.captureOnCommitCallbacks(execute=True):
        client.post(
            "/en/newsletter/anmelden/",
            {**signup_data(newsletter), "consent_text": text.id},
            REMOTE_ADDR="203.0.113.9",
        )
    sub = Subscription.objects.get()
    assert sub.language == "en"
    assert ConsentEvent.objects.get(subscription=sub, kind="requested").consent_text == text


def test_signup_answer_is_byte_identical_for_every_address_state(client, newsletter):
    """New, pending, confirmed, unsubscribed and suppressed: the same bytes, no enumeration."""
    from tests.newsletter.factories import SubscriptionFactory

    SubscriptionFactory(email="bestaetigt@example.org", newsletter=newsletter)
    SubscriptionFactory(
        email="wartet@example.org", newsletter=newsletter, state="pending", confirmed_at=None
    )
    gone = SubscriptionFactory(email="weg@example.org", newsletter=newsletter)
    subscription_revoke(subscription_id=gone.id, channel=RevocationChannel.LINK)
    blocked = SubscriptionFactory(email="gesperrt@example.org", newsletter=newsletter)
    subscription_suppress(subscription_id=blocked.id, reason="complaint", channel="webhook")

    answers = []
    for email in (
        "neu@example.org",
        "wartet@example.org",
        "bestaetigt@example.org",
        "weg@example.org",
        "gesperrt@example.org",
    ):
        # The request id is echoed from the caller (else random per request): fix it, so that
        # every header and byte of the answer can be compared.
        response = post_signup(Client(HTTP_X_REQUEST_ID="a" * 32), newsletter, email)
        answers.append(
            (
                response.status_code,
                sorted(response.items()),
                response.cookies.output(),
                response.content,
            )
        )
    assert all(answer == answers[0] for answer in answers), answers
    assert answers[0][0] == 303


def test_honeypot_gets_the_success_answer_and_records_nothing(client, newsletter):
    response = post_signup(client, newsletter, website="http://spam.example")
    assert response.status_code == 303
    assert not Subscription.objects.exists()


def test_too_fast_or_forged_start_time_is_refused_with_a_fresh_form(client, newsletter, settings):
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 60
    response = post_signup(client, newsletter)
    assert response.status_code == 400
    assert "Das ging sehr schnell" in response.content.decode()
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 0
    response = post_signup(client, newsletter, started="1700000000.0")
    assert response.status_code == 400
    assert "abgelaufen" in response.content.decode()
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    "email",
    ["nope", "a" * 300 + "@example.org", "x@example.org\r\nBcc: y@example.org", "<b>x</b>@e.de"],
)
def test_bad_addresses_get_a_400_with_the_form(client, newsletter, email):
    response = post_signup(client, newsletter, email)
    assert response.status_code == 400
    assert "<b>x</b>" not in response.content.decode()
    assert not Subscription.objects.exists()


def test_signup_without_csrf_token_is_refused(newsletter):
    client = Client(enforce_csrf_checks=True)
    response = post_signup(client, newsletter)
    assert response.status_code == 403
    assert not Subscription.objects.exists()


def test_thousand_signups_from_one_ip_are_rate_limited(client, newsletter, settings):
    settings.NEWSLETTER_RATE_LIMIT_IP = "30/3600"
    statuses = [
        post_signup(client, newsletter, f"bot{n}@example.org").status_code for n in range(1000)
    ]
    assert statuses[:30] == [303] * 30
    assert set(statuses[30:]) == {429}
    assert Subscription.objects.count() == 30
    response = post_signup(client, newsletter, "spaeter@example.org")
    assert response.status_code == 429
    assert "Zu viele Anfragen" in response.content.decode()
    assert int(response["Retry-After"]) > 0


def test_one_address_from_many_ips_is_rate_limited(newsletter, settings):
    settings.NEWSLETTER_RATE_LIMIT_ADDRESS = "3/3600"
    statuses = [
        Client()
        .post(SIGNUP, signup_data(newsletter, "ziel@example.org"), REMOTE_ADDR=f"198.51.100.{n}")
        .status_code
        for n in range(6)
    ]
    assert statuses == [303, 303, 303, 429, 429, 429]


def test_confirm_get_changes_nothing_and_post_confirms_once(client, newsletter):
    post_signup(client, newsletter)
    sub = Subscription.objects.get()
    path = confirm_path(sub)
    page = client.get(path)
    assert page.status_code == 200
    assert "newsletter/confirm.js" in page.content.decode()
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.PENDING
    first = client.post(path, HTTP_USER_AGENT="Firefox")
    second = client.post(path, HTTP_USER_AGENT="Firefox")
    assert first.status_code == second.status_code == 200
    assert first.content.count(b"Anmeldung best\xc3\xa4tigt") and second.content == first.content
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.CONFIRMED
    assert ConsentEvent.objects.filter(subscription=sub, kind="confirmed").count() == 1


def test_confirm_post_needs_csrf(newsletter):
    post_signup(Client(), newsletter)
    sub = Subscription.objects.get()
    response = Client(enforce_csrf_checks=True).post(confirm_path(sub))
    assert response.status_code == 403
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.PENDING


def test_expired_tampered_and_cross_purpose_tokens_get_clear_4xx_pages(
    client, newsletter, settings
):
    post_signup(client, newsletter)
    sub = Subscription.objects.get()
    good = tokens.make_confirm_token(sub.id, sub.confirm_round)
    cases = [
        (reverse("newsletter_confirm", args=[good[:-2] + "xx"]), 400),
        (reverse("newsletter_confirm", args=[tokens.make_unsubscribe_token(sub.id)]), 400),
        (reverse("newsletter_unsubscribe", args=[good]), 400),
        (reverse("newsletter_preferences", args=[good]), 400),
        (reverse("newsletter_unsubscribe", args=["garbage"]), 400),
    ]
    for path, status in cases:
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == status, path
            assert "Neu anmelden" in response.content.decode()
    settings.NEWSLETTER_CONFIRM_MAX_AGE = -1
    response = client.post(reverse("newsletter_confirm", args=[good]))
    assert response.status_code == 410
    assert "abgelaufen" in response.content.decode()
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.PENDING


def test_unsubscribe_get_shows_one_button_and_post_revokes(client, newsletter):
    from tests.newsletter.factories import SubscriptionFactory

    sub = SubscriptionFactory(newsletter=newsletter)
    page = client.get(unsubscribe_path(sub))
    assert page.status_code == 200
    assert page.content.decode().count('type="submit"') == 1
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.CONFIRMED
    response = Client(enforce_csrf_checks=True).post(unsubscribe_path(sub))
    assert response.status_code == 200
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.UNSUBSCRIBED
    assert ConsentEvent.objects.get(subscription=sub, kind="revoked").channel == "link"


@pytest.mark.parametrize("multipart", [False, True])
def test_one_click_post_revokes_without_cookie_or_csrf_and_is_idempotent(newsletter, multipart):
    from tests.newsletter.factories import SubscriptionFactory

    sub = SubscriptionFactory(newsletter=newsletter)
    client = Client(enforce_csrf_checks=True)
    body = {"List-Unsubscribe": "One-Click"}
    for _ in range(2):
        if multipart:
            response = client.post(unsubscribe_path(sub), body)
        else:
            response = client.post(
                unsubscribe_path(sub),
                "List-Unsubscribe=One-Click",
                content_type="application/x-www-form-urlencoded",
            )
        assert response.status_code == 200
        assert "Location" not in response
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.UNSUBSCRIBED
    events = ConsentEvent.objects.filter(subscription=sub, kind="revoked")
    assert [e.channel for e in events] == ["one_click"]


def test_preferences_page_lists_subscriptions_and_changes_them(
    client, newsletter, django_capture_on_commit_callbacks
):
    from newsletter.services.consent import consent_text_default_publish
    from tests.newsletter.factories import NewsletterFactory, SubscriptionFactory

    other = NewsletterFactory(slug="wochenblick", name="Wochenblick")
    consent_text_default_publish(newsletter=other)
    sub = SubscriptionFactory(newsletter=newsletter, email="p@example.org")
    path = preferences_path(sub)
    page = client.get(path)
    assert page.status_code == 200
    assert "Meinung am Morgen" in page.content.decode()
    # The text the reader consents to by switching the other newsletter on is shown with it.
    assert "„Wochenblick“" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            path,
            {
                "action": "save",
                "language": "en",
                f"nl_{other.id}": "on",
                f"freq_{newsletter.id}": "weekly",
                f"nl_{newsletter.id}": "on",
            },
        )
    assert response.status_code == 303
    sub.refresh_from_db()
    assert (sub.language, sub.frequency, sub.state) == ("en", "weekly", "confirmed")
    new = Subscription.objects.get(newsletter=other)
    assert new.state == SubscriptionState.PENDING
    requested = ConsentEvent.objects.get(subscription=new, kind="requested")
    assert requested.form == "preferences"
    assert requested.consent_text.newsletter == other
    assert mail.outbox[-1].to == ["p@example.org"]
    # Switching one off revokes it with the preference-centre channel.
    client.post(path, {"action": "save", "language": "en", f"nl_{other.id}": "on"})
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.UNSUBSCRIBED
    assert ConsentEvent.objects.get(subscription=sub, kind="revoked").channel == "preferences"


def test_the_reader_chooses_topics_in_the_preference_centre_and_the_ledger_records_it(
    client, newsletter
):
    from tests.articles.factories import TopicFactory
    from tests.newsletter.factories import SubscriptionFactory

    markets = TopicFactory(name="Märkte", name_en="Markets")
    energy = TopicFactory(name="Energie")
    sub = SubscriptionFactory(newsletter=newsletter, email="t@example.org")
    path = preferences_path(sub)
    page = client.get(path).content.decode()
    assert "Themen, die Sie besonders interessieren" in page and "Märkte" in page
    form = {"action": "save", "language": "de", f"nl_{newsletter.id}": "on"}
    response = client.post(path, {**form, "topics": [markets.pk, energy.pk]})
    assert response.status_code == 303
    assert set(sub.topics.all()) == {markets, energy}
    changed = ConsentEvent.objects.get(subscription=sub, kind="preferences_changed")
    assert changed.data == {"topics": {"old": [], "new": sorted([markets.pk, energy.pk])}}
    # Shown as chosen next time; the same choice again records nothing.
    page = client.get(path).content.decode()
    assert re.search(rf'value="{markets.pk}"[^>]*checked', page)
    client.post(path, {**form, "topics": [markets.pk, energy.pk]})
    assert ConsentEvent.objects.filter(subscription=sub, kind="preferences_changed").count() == 1
    client.post(path, {**form, "topics": [energy.pk]})
    assert set(sub.topics.all()) == {energy}
    # A topic that does not exist is a form error, not a 500.
    response = client.post(path, {**form, "topics": ["999999", "x"]})
    assert response.status_code == 400
    assert set(sub.topics.all()) == {energy}


def _mailed_link(kind: str) -> str:
    return re.search(rf"http://testserver(/n/{kind}/[^/\s]+/)", mail.outbox[-1].body).group(1)


def test_preferences_unsubscribe_all_then_export_and_erase_through_a_mailed_link(
    client, newsletter, django_capture_on_commit_callbacks
):
    from tests.newsletter.factories import SubscriptionFactory

    sub = SubscriptionFactory(newsletter=newsletter, email="x@example.org")
    path = preferences_path(sub)
    client.post(path, {"action": "unsubscribe_all"})
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.UNSUBSCRIBED

    # Export: the preference link only mails a short-lived link to the address.
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(path, {"action": "export"})
    assert asked.status_code == 200 and "Content-Disposition" not in asked
    assert "x@example.org" not in asked.content.decode()
    assert "60 Minuten" in asked.content.decode()
    assert mail.outbox[-1].to == ["x@example.org"]
    export_link = _mailed_link("daten-export")
    shown = client.get(export_link)  # what a link scanner sees: a button, no data
    assert shown.status_code == 200 and "x@example.org" not in shown.content.decode()
    assert not ConsentEvent.objects.filter(kind="exported").exists()
    export = client.post(export_link)
    assert export.status_code == 200
    assert export["Content-Disposition"].startswith("attachment")
    data = json.loads(export.content)
    assert data["address"] == "x@example.org"
    assert "revoked" in [event["kind"] for event in data["consent_log"]]

    # Erasure: the same, and the link's GET asks once more.
    with django_capture_on_commit_callbacks(execute=True):
        asked = client.post(path, {"action": "erase"})
    assert asked.status_code == 200
    assert Subscription.objects.filter(id=sub.id).exists()
    erase_link = _mailed_link("daten-loeschen")
    assert client.get(erase_link).status_code == 200
    assert Subscription.objects.filter(id=sub.id).exists()
    # One purpose never stands in for the other.
    wrong = erase_link.replace("daten-loeschen", "daten-export")
    assert client.post(wrong).status_code == 400
    done = client.post(erase_link)
    assert done.status_code == 200
    assert not Subscription.objects.filter(id=sub.id).exists()
    assert Suppression.objects.filter(address_hmac=address_hmac("x@example.org")).exists()
    # The links died with what they pointed to.
    assert client.get(path).status_code == 410
    assert client.post(export_link).status_code == 410
    assert client.post(erase_link).status_code == 410


def test_a_forwarded_preference_link_can_neither_read_nor_erase_the_data(
    client, newsletter, django_capture_on_commit_callbacks
):
    """Whoever holds only the preference link (a forwarded newsletter, a link scanner that
    also posts forms) gets neither the data nor an erasure: both go to the mailbox first."""
    from tests.newsletter.factories import SubscriptionFactory

    sub = SubscriptionFactory(newsletter=newsletter, email="weitergeleitet@example.org")
    stranger = Client()
    with django_capture_on_commit_callbacks(execute=True):
        for action in ("export", "erase", "erase_confirmed"):
            response = stranger.post(preferences_path(sub), {"action": action})
            assert response.status_code in (200, 400)
            assert "Content-Disposition" not in response
            assert "consent_log" not in response.content.decode()
    assert Subscription.objects.filter(id=sub.id).exists()
    assert not ConsentEvent.objects.filter(kind__in=["exported", "erased"]).exists()
    assert [m.to for m in mail.outbox] == [["weitergeleitet@example.org"]] * 2


def test_a_data_link_expires(client, newsletter, settings):
    from tests.newsletter.factories import SubscriptionFactory

    sub = SubscriptionFactory(newsletter=newsletter)
    for purpose, route in (
        (tokens.DATA_EXPORT, "newsletter_data_export"),
        (tokens.DATA_ERASE, "newsletter_data_erase"),
    ):
        token = tokens.make_data_token(purpose, sub.id, sub.address_hmac)
        link = reverse(route, kwargs={"token": token})
        settings.NEWSLETTER_DATA_LINK_MAX_AGE = 3600
        assert client.get(link).status_code == 200
        settings.NEWSLETTER_DATA_LINK_MAX_AGE = -1  # any age is past it
        assert client.get(link).status_code == 410
        assert client.post(link).status_code == 410
        # A preference token is no data token, and the other way round.
        pref = preferences_path(sub).split("/")[-2]
        settings.NEWSLETTER_DATA_LINK_MAX_AGE = 3600
        assert client.post(reverse(route, kwargs={"token": pref})).status_code == 400
        assert (
            client.get(reverse("newsletter_preferences", kwargs={"token": token})).status_code
            == 400
        )
    assert Subscription.objects.filter(id=sub.id).exists()
    assert not ConsentEvent.objects.exists()


def test_get_on_preferences_and_unsubscribe_changes_nothing(client, newsletter):
    from tests.newsletter.factories import SubscriptionFactory

    sub = SubscriptionFactory(newsletter=newsletter)
    for path in (
        preferences_path(sub),
        unsubscribe_path(sub),
        preferences_path(sub) + "?action=erase_confirmed",
    ):
        assert client.get(path).status_code == 200
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.CONFIRMED
    assert not ConsentEvent.objects.exists()


def test_preferences_link_request_answers_the_same_for_every_address(
    newsletter, django_capture_on_commit_callbacks
):
    from tests.newsletter.factories import SubscriptionFactory

    SubscriptionFactory(newsletter=newsletter, email="bekannt@example.org")
    answers = []
    for email in ("bekannt@example.org", "unbekannt@example.org"):
        with django_capture_on_commit_callbacks(execute=True):
            response = Client(HTTP_X_REQUEST_ID="b" * 32).post(
                reverse("newsletter:preferences_request"),
                {"email": email, "website": "", "started": form_started_token()},
            )
        answers.append((response.status_code, sorted(response.items()), response.content))
    assert answers[0] == answers[1]
    assert answers[0][0] == 303
    assert len(mail.outbox) == 1
    link = re.search(r"http://testserver(/n/einstellungen/[^/\s]+/)", mail.outbox[0].body).group(1)
    assert Client().get(link).status_code == 200


def test_preference_forms_without_csrf_token_are_refused(newsletter):
    from tests.newsletter.factories import SubscriptionFactory

    sub = SubscriptionFactory(newsletter=newsletter)
    client = Client(enforce_csrf_checks=True)
    for action in ("unsubscribe_all", "erase", "export", "save"):
        assert client.post(preferences_path(sub), {"action": action}).status_code == 403
    for purpose, route in (
        (tokens.DATA_EXPORT, "newsletter_data_export"),
        (tokens.DATA_ERASE, "newsletter_data_erase"),
    ):
        token = tokens.make_data_token(purpose, sub.id, sub.address_hmac)
        assert client.post(reverse(route, kwargs={"token": token})).status_code == 403
    request_link = client.post(
        reverse("newsletter:preferences_request"),
        {"email": sub.email, "started": form_started_token()},
    )
    assert request_link.status_code == 403
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.CONFIRMED
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize(
    "page", ["signup", "confirm", "unsubscribe", "preferences", "data_export", "data_erase"]
)
def test_pages_answer_head_like_get(client, newsletter, page):
    from tests.newsletter.factories import SubscriptionFactory

    sub = SubscriptionFactory(
        newsletter=newsletter, email="kopf@example.org", state="pending", confirmed_at=None
    )
    path = {
        "signup": SIGNUP,
        "confirm": confirm_path(sub),
        "unsubscribe": unsubscribe_path(sub),
        "preferences": preferences_path(sub),
        "data_export": reverse(
            "newsletter_data_export",
            kwargs={"token": tokens.make_data_token(tokens.DATA_EXPORT, sub.id, sub.address_hmac)},
        ),
        "data_erase": reverse(
            "newsletter_data_erase",
            kwargs={"token": tokens.make_data_token(tokens.DATA_ERASE, sub.id, sub.address_hmac)},
        ),
    }[page]
    get = client.get(path)
    head = client.head(path)
    assert get.status_code == 200 and get.content
    assert head.status_code == get.status_code
    assert head.content == b""
    assert head["Content-Type"] == get["Content-Type"]
    sub.refresh_from_db()
    assert sub.state == SubscriptionState.PENDING
    assert not ConsentEvent.objects.exists()


def test_a_preference_link_from_before_an_erasure_does_not_open_the_new_subscription(
    client, newsletter, request_signup, django_capture_on_commit_callbacks
):
    from newsletter.services.consent import subscriber_erase, subscription_confirm

    def signed_up_and_confirmed():
        with django_capture_on_commit_callbacks(execute=True):
            sub = request_signup("Wieder@Example.org")
        sub = subscription_confirm(
            subscription_id=sub.id, confirm_round=sub.confirm_round, ip=None, user_agent=""
        )
        page = client.post(confirm_path(sub))
        found = re.search(r'href="(/n/einstellungen/[^"?]+/)\?lang=de"', page.content.decode())
        link = found.group(1)
        return sub, link

    old_sub, old_link = signed_up_and_confirmed()
    assert "Wieder@example.org" in client.get(old_link).content.decode()
    subscriber_erase(address_hmac=old_sub.address_hmac)
    new_sub, new_link = signed_up_and_confirmed()
    assert new_sub.address_hmac == old_sub.address_hmac

    old = client.get(old_link)
    assert old.status_code == 410
    assert "Wieder@example.org" not in old.content.decode()
    assert client.post(old_link, {"action": "unsubscribe_all"}).status_code == 410
    new_sub.refresh_from_db()
    assert new_sub.state == SubscriptionState.CONFIRMED
    assert "Wieder@example.org" in client.get(new_link).content.decode()


def _address_states(newsletter) -> list[str]:
    """One address per state: new, pending, confirmed, unsubscribed, suppressed (bounced)."""
    from tests.newsletter.factories import SubscriptionFactory

    SubscriptionFactory(email="bestaetigt@example.org", newsletter=newsletter)
    SubscriptionFactory(
        email="wartet@example.org", newsletter=newsletter, state="pending", confirmed_at=None
    )
    gone = SubscriptionFactory(email="weg@example.org", newsletter=newsletter)
    subscription_revoke(subscription_id=gone.id, channel=RevocationChannel.LINK)
    blocked = SubscriptionFactory(email="gesperrt@example.org", newsletter=newsletter)
    subscription_suppress(subscription_id=blocked.id, reason="hard_bounce", channel="webhook")
    return [
        "neu@example.org",
        "wartet@example.org",
        "bestaetigt@example.org",
        "weg@example.org",
        "gesperrt@example.org",
    ]


def _sql_shape(sql: str) -> str:
    """A statement without its values: what the database was asked to do, not about whom."""
    return re.sub(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b", "?", sql)


def test_signup_does_the_same_queries_for_every_address_state(
    newsletter, django_capture_on_commit_callbacks
):
    """The page's part of a signup is the same for every state (so is its timing); what
    depends on the state runs in the task it leaves behind."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    emails = _address_states(newsletter)
    work, tasks = [], []
    for email in emails:
        with (
            CaptureQueriesContext(connection) as queries,
            django_capture_on_commit_callbacks() as callbacks,
        ):
            response = Client().post(
                SIGNUP, signup_data(newsletter, email), REMOTE_ADDR="203.0.113.9"
            )
        assert response.status_code == 303
        work.append([_sql_shape(q["sql"]) for q in queries.captured_queries])
        tasks.append(callbacks)
    assert all(len(shapes) == len(work[0]) for shapes in work), [len(w) for w in work]
    assert all(shapes == work[0] for shapes in work), work
    assert all(len(callbacks) == 1 for callbacks in tasks)
    assert not mail.outbox

    # The tasks do the state-dependent part: a confirmation request for the new, the pending
    # and the unsubscribed address; nothing for the confirmed one or the bounced one.
    for callbacks in tasks:
        with django_capture_on_commit_callbacks(execute=True):
            callbacks[0]()
    assert sorted(m.to[0] for m in mail.outbox) == [
        "neu@example.org",
        "wartet@example.org",
        "weg@example.org",
    ]
    states = dict(Subscription.objects.values_list("email", "state"))
    assert states["gesperrt@example.org"] == SubscriptionState.SUPPRESSED
    assert states["bestaetigt@example.org"] == SubscriptionState.CONFIRMED
    assert states["weg@example.org"] == states["neu@example.org"] == SubscriptionState.PENDING


def test_a_bounced_or_complained_address_gets_no_confirmation_but_the_same_answer(
    newsletter, django_capture_on_commit_callbacks
):
    from tests.newsletter.factories import SubscriptionFactory

    other = SubscriptionFactory(email="beschwerde@example.org")  # another newsletter
    subscription_suppress(subscription_id=other.id, reason="complaint", channel="webhook")
    answers = []
    for email in ("frisch@example.org", "beschwerde@example.org"):
        response = post_signup(
            Client(HTTP_X_REQUEST_ID="c" * 32),
            newsletter,
            email,
            django_capture_on_commit_callbacks,
        )
        answers.append((response.status_code, sorted(response.items()), response.content))
    assert answers[0] == answers[1]
    assert [m.to for m in mail.outbox] == [["frisch@example.org"]]
    assert not Subscription.objects.filter(newsletter=newsletter, email="beschwerde@example.org")
