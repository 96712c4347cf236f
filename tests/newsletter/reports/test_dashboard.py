"""The dashboard at /admin/newsletter/, the report of a digest, their CSVs and query counts."""

import csv
import io

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from newsletter.models import (
    Batch,
    BatchState,
    ConsentEvent,
    Delivery,
    DeliveryState,
    Digest,
    DigestState,
    ProviderEvent,
    RevocationChannel,
)
from newsletter.services.consent import (
    subscription_confirm,
    subscription_request,
    subscription_revoke,
    subscription_suppress,
)
from newsletter.services.stats import daily_counts_roll_up
from tests.newsletter.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db
DASHBOARD = "/admin/newsletter/"


def signup(newsletter, address, *, confirm=True):
    sub = subscription_request(
        address=address,
        newsletter=newsletter,
        ip="203.0.113.9",
        user_agent="UA",
        url="http://testserver/",
        form="signup_box",
        language="de",
    )
    if confirm:
        sub = subscription_confirm(
            subscription_id=sub.id,
            confirm_round=sub.confirm_round,
            ip="203.0.113.9",
            user_agent="B",
        )
    return sub


def seed(newsletter, n: int):
    subs = [signup(newsletter, f"leser{i}@example.org", confirm=i % 3 != 0) for i in range(n)]
    confirmed = [s for s in subs if s.confirmed_at]
    subscription_revoke(subscription_id=confirmed[0].id, channel=RevocationChannel.LINK)
    subscription_suppress(
        subscription_id=confirmed[1].id, reason="hard_bounce", channel=RevocationChannel.WEBHOOK
    )
    return subs


def table(html: str, key: str) -> str:
    start = html.index(f'id="fig-{key}"')
    return html[start : html.index("</section>", start)]


def test_dashboard_shows_charts_tables_and_the_conversion_rate(manager_client, newsletter):
    seed(newsletter, 6)  # 6 signups, 4 confirmed, 1 revoked by link, 1 suppressed
    daily_counts_roll_up()
    response = manager_client.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    dashboard = response.context["dashboard"]
    assert (dashboard.requested, dashboard.confirmed, dashboard.confirmed_now) == (6, 4, 2)
    assert dashboard.conversion_percent == 66.7
    assert "66.7 %" in html or "66,7 %" in html
    # Four charts, each an inline SVG without any script, with a table and a CSV link.
    assert html.count('class="nl-chart"><svg') == 4
    assert "<script" not in html.split('id="newsletter-dashboard"')[1].split("</div>\n{%")[0]
    for key in ("abonnenten", "anmeldungen", "abmeldungen", "zustellfehler"):
        assert reverse("admin:newsletter_dashboard_csv", args=[key]) in table(html, key)
    assert "Öffnungen und Klicks werden nicht gemessen" in html
    # The model list is still there below the figures.
    assert reverse("admin:newsletter_subscription_changelist") in html
    channels = table(html, "abmeldungen")
    assert "Abmeldelink" in channels and "Versanddienstleister" in channels


def test_dashboard_csv_has_the_numbers_of_the_table(manager_client, newsletter):
    seed(newsletter, 6)
    daily_counts_roll_up()
    response = manager_client.get(reverse("admin:newsletter_dashboard_csv", args=["anmeldungen"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["Tag", "Anmeldungen", "Bestätigungen", "Importe mit Nachweis"]
    assert len(rows) == 1 + 90
    assert sum(int(r[1]) for r in rows[1:]) == 6
    assert sum(int(r[2]) for r in rows[1:]) == 4
    size = list(
        csv.reader(
            io.StringIO(
                manager_client.get(
                    reverse("admin:newsletter_dashboard_csv", args=["abonnenten"])
                ).content.decode()
            )
        )
    )
    assert size[-1][1] == "2"


def test_dashboard_answers_unknown_figures_and_newsletters_with_404(manager_client, newsletter):
    assert manager_client.get(f"{DASHBOARD}statistik/gibtsnicht.csv").status_code == 404
    assert manager_client.get(f"{DASHBOARD}?newsletter=abc").status_code == 404
    assert manager_client.get(f"{DASHBOARD}?newsletter=999999").status_code == 404
    assert manager_client.get(f"{DASHBOARD}?newsletter={newsletter.pk}").status_code == 200


def _queries(client, url: str) -> int:
    cache.clear()  # the dashboard's figures are cached: count the queries that build them
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.fixture
def digest_with_outcomes(newsletter):
    subs = SubscriptionFactory.create_batch(6, newsletter=newsletter)
    digest = Digest.objects.create(
        newsletter=newsletter,
        frequency="daily",
        slot="2026-01-05T06:00:00Z",
        state=DigestState.DONE,
        period_start="2026-01-04T06:00:00Z",
        period_end="2026-01-05T06:00:00Z",
        recipients=6,
        article_ids=[1],
    )
    deliveries = [Delivery.objects.create(digest=digest, subscription=s) for s in subs]
    Batch.objects.create(
        digest=digest,
        first_delivery_id=deliveries[0].id,
        last_delivery_id=deliveries[-1].id,
        size=6,
        sent_count=5,
        state=BatchState.SENT,
    )
    Delivery.objects.filter(pk=deliveries[5].pk).update(state=DeliveryState.FAILED)
    for n, (delivery, kind) in enumerate(
        [(deliveries[0], "bounced"), (deliveries[1], "complained"), (deliveries[2], "delivered")]
    ):
        ProviderEvent.objects.create(
            esp="mailgun", event_id=f"e{n}", event_type=kind, delivery=delivery
        )
    subscription_revoke(subscription_id=subs[3].id, channel=RevocationChannel.ONE_CLICK)
    digest.refresh_from_db()
    return digest


def test_report_of_a_digest_counts_every_outcome(manager_client, digest_with_outcomes):
    url = reverse("admin:newsletter_digest_report", args=[digest_with_outcomes.pk])
    response = manager_client.get(url)
    assert response.status_code == 200
    report = response.context["report"]
    figures = (
        report.recipients,
        report.accepted,
        report.failed,
        report.bounced,
        report.complained,
        report.unsubscribed_7d,
    )
    # The revocation happened "now", i.e. within 7 days of the digest's start (created now).
    assert figures == (6, 5, 1, 1, 1, 1)
    html = response.content.decode()
    assert 'class="nl-chart"><svg' in html and "Öffnungen und Klicks werden nicht gemessen" in html
    rows = list(
        csv.reader(
            io.StringIO(
                manager_client.get(
                    reverse("admin:newsletter_digest_report_csv", args=[digest_with_outcomes.pk])
                ).content.decode()
            )
        )
    )
    assert [r[1] for r in rows[1:]] == ["6", "5", "1", "1", "1", "1"]


def test_query_counts_do_not_grow_with_the_data(manager_client, newsletter, digest_with_outcomes):
    # dashboard, report, subscription list / filtered / searched, digest list, suppression
    # search, consent events, a subscriber's detail.
    urls = [
        DASHBOARD,
        reverse("admin:newsletter_digest_report", args=[digest_with_outcomes.pk]),
        reverse("admin:newsletter_subscription_changelist"),
        reverse("admin:newsletter_subscription_changelist") + "?state__exact=confirmed",
        reverse("admin:newsletter_subscription_changelist") + "?q=leser1%40example.org",
        reverse("admin:newsletter_digest_changelist"),
        reverse("admin:newsletter_suppression_changelist") + "?q=leser1%40example.org",
        reverse("admin:newsletter_consentevent_changelist"),
    ]
    sub = signup(newsletter, "mit-nachweis@example.org")
    urls.append(reverse("admin:newsletter_subscription_change", args=[sub.pk]))
    for url in urls:  # Django caches content types and the like on the first request
        _queries(manager_client, url)
    before = {url: _queries(manager_client, url) for url in urls}
    seed(newsletter, 9)
    # Addresses of their own: the factory's sequence may reach seed's "leser<n>" names.
    for n in range(40):
        SubscriptionFactory(newsletter=newsletter, email=f"mehr{n}@example.org")
    subscription_revoke(subscription_id=sub.id, channel=RevocationChannel.ADMIN)
    after = {url: _queries(manager_client, url) for url in urls}
    assert after == before
    # Each page's count, pinned (session and user included): a new query per page, or one
    # that now depends on the data, shows up here first.
    assert list(before.values()) == [7, 9, 8, 8, 8, 10, 8, 8, 7], before


def test_subscription_search_by_address_uses_the_keyed_hash(manager_client, newsletter):
    subs = SubscriptionFactory.create_batch(3, newsletter=newsletter)
    subscription_suppress(
        subscription_id=subs[0].id, reason="complaint", channel=RevocationChannel.WEBHOOK
    )
    address = subs[0].email.upper()  # any case finds it
    lists = reverse("admin:newsletter_suppression_changelist")
    found = manager_client.get(lists, {"q": address}).context["cl"].result_list
    assert [s.reason for s in found] == ["complaint"]
    assert not manager_client.get(lists, {"q": subs[1].email}).context["cl"].result_list
    changelist = reverse("admin:newsletter_subscription_changelist")
    found = manager_client.get(changelist, {"q": subs[1].email}).context["cl"].result_list
    assert [s.pk for s in found] == [subs[1].pk]
    prefix = manager_client.get(changelist, {"q": "leser"}).context["cl"].result_list
    assert {s.pk for s in prefix} == {s.pk for s in subs}
    events = reverse("admin:newsletter_consentevent_changelist")
    found = manager_client.get(events, {"q": subs[0].email}).context["cl"].result_list
    assert {e.kind for e in found} == {"suppressed"}


def test_admin_names_digests_and_events_in_berlin_time(manager_client, digest_with_outcomes):
    # Slot 06:00 UTC in January is 07:00 in Berlin; the list and the report title agree.
    assert "05.01.2026 07:00" in str(digest_with_outcomes)
    html = manager_client.get(reverse("admin:newsletter_digest_changelist")).content.decode()
    assert "05.01.2026 07:00" in html and "05.01.2026 06:00" not in html
    event = ConsentEvent.objects.get(kind="revoked")
    local = timezone.localtime(event.at)
    assert f"{local:%d.%m.%Y %H:%M}" in str(event)
