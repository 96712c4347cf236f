"""Provider webhooks answer 4xx, never 500, to what they cannot process."""

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
