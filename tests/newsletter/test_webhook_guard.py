"""Provider webhooks answer 4xx, never 500, to what they cannot process."""

import base64

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path", ["/anymail/mailgun/tracking/", "/anymail/postmark/tracking/", "/anymail/mandrill/"]
)
@pytest.mark.parametrize(
    "body",
    [{"data": "garbage", "content_type": "application/json"}, {"data": {"event-data": "{"}}],
    ids=["json", "form"],
)
def test_webhook_of_an_unconfigured_or_garbled_provider_is_4xx(client, settings, path, body):
    settings.ANYMAIL = {}  # no provider keys, no webhook secret
    response = client.post(path, **body)
    assert 400 <= response.status_code < 500


def test_inbound_mail_webhooks_are_not_routed(client):
    assert client.post("/anymail/mailgun/inbound/", {"x": "1"}).status_code == 404


SECRET = "hook:guard-secret"
NESTED = "[" * 5000 + "]" * 5000
HUGE = '{"event-data": "' + "x" * (5 * 1024 * 1024) + '"}'


@pytest.mark.parametrize(
    ("esp", "anymail"),
    [
        ("mailgun", {"MAILGUN_WEBHOOK_SIGNING_KEY": "guard-signing-key"}),
        ("postmark", {"POSTMARK_SERVER_TOKEN": "guard-token"}),
    ],
)
@pytest.mark.parametrize("body", [NESTED, HUGE], ids=["nested", "5mb"])
def test_deeply_nested_or_huge_bodies_are_400_not_500(client, settings, esp, anymail, body):
    """Past basic auth (the secret may be known to whoever sends this), straight into the
    JSON parsers of anymail and of the provider's view."""
    settings.ANYMAIL_ESP = esp
    settings.ANYMAIL = {**anymail, "WEBHOOK_SECRET": SECRET}
    auth = base64.b64encode(SECRET.encode()).decode()
    response = client.post(
        f"/anymail/{esp}/tracking/",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )
    assert response.status_code == 400
