"""Arbitrary input to every public consent form: a clear answer, never a 500."""

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from newsletter import tokens
from newsletter.forms import form_started_token
from newsletter.models import Subscription
from tests.newsletter.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db

FUZZ = hsettings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
anything = st.text(max_size=400) | st.sampled_from(
    [
        "",
        "a@b.de\r\nBcc: x@y.de",
        "<script>alert(1)</script>@example.org",
        "Leser@BÜCHER.example",
        "x" * 300 + "@example.org",
        "\x00@example.org",
        "One-Click",
        "erase_confirmed",
    ]
)
fields = st.dictionaries(
    st.sampled_from(
        [
            "email",
            "newsletter",
            "consent_text",
            "page",
            "website",
            "started",
            "action",
            "language",
            "List-Unsubscribe",
            "nl_1",
            "freq_1",
        ]
    ),
    anything,
    max_size=8,
)
ALLOWED = {200, 303, 400, 403, 405, 410, 429}


@pytest.fixture
def open_limits(settings):
    settings.NEWSLETTER_RATE_LIMIT_IP = "100000/3600"
    settings.NEWSLETTER_RATE_LIMIT_ADDRESS = "100000/3600"
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 0


def _post(client, url, data, user_agent):
    response = client.post(url, data, HTTP_USER_AGENT=user_agent)
    assert response.status_code in ALLOWED, (url, data, response.status_code)
    return response


@FUZZ
@given(data=fields, fresh=st.booleans(), user_agent=anything)
def test_signup_and_link_forms_never_fail(newsletter, open_limits, data, fresh, user_agent):
    if fresh:
        data = {"started": form_started_token(), "newsletter": newsletter.slug, **data}
    client = Client()
    for url in (reverse("newsletter:signup"), reverse("newsletter:preferences_request")):
        _post(client, url, data, user_agent.replace("\x00", ""))
    for sub in Subscription.objects.all():
        assert "\n" not in sub.email and "\r" not in sub.email and len(sub.email) <= 254


@FUZZ
@given(token=anything, data=fields)
def test_token_pages_never_fail_on_forged_tokens(newsletter, token, data):
    client = Client()
    quoted = quote(token.replace("/", ""), safe="") or "x"
    for name in ("newsletter_confirm", "newsletter_unsubscribe", "newsletter_preferences"):
        url = reverse(name, kwargs={"token": "T"}).replace("/T/", f"/{quoted}/")
        assert client.get(url).status_code in {200, 400, 404, 410}
        _post(client, url, data, "fuzz")


@FUZZ
@given(data=fields)
def test_preference_centre_never_fails_on_arbitrary_posts(newsletter, data):
    sub = SubscriptionFactory(newsletter=newsletter)
    url = reverse(
        "newsletter_preferences",
        kwargs={"token": tokens.make_preferences_token(sub.id, sub.address_hmac)},
    )
    _post(Client(), url, data, "fuzz")
    unsubscribe = reverse(
        "newsletter_unsubscribe", kwargs={"token": tokens.make_unsubscribe_token(sub.id)}
    )
    _post(Client(), unsubscribe, data, "fuzz")
