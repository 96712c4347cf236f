"""The manager's dashboard and the CSV import in Chromium, and no newsletter admin page wider
than a 1,280 px window. With SCREENSHOT_DIR set, the pages are also saved as PNGs at 1280 and
390 px (console-<page>-<width>.png)."""

import os
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from newsletter.models import (
    Batch,
    BatchState,
    Campaign,
    ConsentEvent,
    Delivery,
    Digest,
    DigestState,
    Subscription,
    SubscriptionState,
)
from newsletter.services.consent import (
    subscription_confirm,
    subscription_request,
    subscription_revoke,
    subscription_suppress,
)
from newsletter.services.stats import daily_counts_roll_up
from tests.ops.test_browser_csp import COLLECT_VIOLATIONS

from .conftest import PASSWORD

# The flush after a transactional test drops the groups the migrations made: the manager
# fixture asks for `managers_group` (tests/conftest.py), which builds it with their own code.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("SCREENSHOT_DIR", "")


def log_in(page, base: str) -> None:
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", "verwaltung")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")


def page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def shoot(page, name: str) -> None:
    if not SHOTS:
        return
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(Path(SHOTS) / f"console-{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def seed(newsletter, n: int = 5) -> list[Subscription]:
    subs = []
    for i in range(n):
        sub = subscription_request(
            address=f"leser{i}@example.org",
            newsletter=newsletter,
            ip="203.0.113.9",
            user_agent="Mozilla/5.0 " + "(sehr langer Browser-Kennzeichner) " * 12,
            url="http://testserver/artikel/ein-sehr-langer-pfad-ohne-umbruch-" + "x" * 200,
            form="signup_box",
            language="de",
        )
        if i % 2 == 0:
            sub = subscription_confirm(
                subscription_id=sub.id,
                confirm_round=sub.confirm_round,
                ip="203.0.113.9",
                user_agent="B",
            )
        subs.append(sub)
    subscription_revoke(subscription_id=subs[0].id, channel="link")
    return subs


def test_manager_reads_the_dashboard_and_downloads_its_numbers(
    browser_page, live_server, newsletter, manager
):
    subs = seed(newsletter)
    daily_counts_roll_up()  # as the beat does every five minutes
    page = browser_page
    page.add_init_script(COLLECT_VIOLATIONS)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url)
    response = page.goto(f"{live_server.url}/admin/newsletter/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator(".nl-chart svg").count() == 4
    # Charts drawn on the server need no script: nothing on the page breaks the policy.
    page.wait_for_load_state("load")
    assert page.evaluate("window.__cspViolations") == []
    assert page.locator(".nl-kpis").inner_text().count("5") >= 1
    # The numbers behind a chart, as a table a screen reader can read.
    signups = page.locator("section[aria-labelledby=fig-anmeldungen]")
    signups.get_by_text("Zahlen als Tabelle").click()
    cells = signups.locator("tbody tr").last.locator("td").all_inner_texts()
    assert cells[:2] == ["5", "3"]
    with page.expect_download() as download:
        signups.get_by_role("link", name="CSV herunterladen").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[-1].endswith(",5,3,0")
    assert "Öffnungen und Klicks werden nicht gemessen" in page.content()
    assert page_width(page) <= 1280
    shoot(page, "dashboard")

    # Every newsletter page a manager opens fits the window.
    for url in (
        reverse("admin:newsletter_newsletter_change", args=[newsletter.pk]),
        reverse("admin:newsletter_subscription_changelist"),
        reverse("admin:newsletter_subscription_change", args=[subs[0].pk]),
        reverse("admin:newsletter_consentevent_changelist"),
        reverse("admin:newsletter_suppression_changelist"),
    ):
        page.goto(live_server.url + url)
        if SHOTS and page_width(page) > 1280:
            page.screenshot(path=f"{SHOTS}/console-debug-{len(url)}.png", full_page=True)
        assert page_width(page) <= 1280, url
    page.goto(live_server.url + reverse("admin:newsletter_subscription_changelist"))
    shoot(page, "subscriptions")

    # The report of a mailing: its chart, its table open, its CSV.
    digest = Digest.objects.create(
        newsletter=newsletter,
        frequency="daily",
        slot=timezone.now(),
        state=DigestState.DONE,
        period_start=timezone.now(),
        period_end=timezone.now(),
        recipients=3,
        subject="Meinung am Morgen: 3 neue Artikel",
    )
    deliveries = [Delivery.objects.create(digest=digest, subscription=s) for s in subs[:3]]
    Batch.objects.create(
        digest=digest,
        first_delivery_id=deliveries[0].pk,
        last_delivery_id=deliveries[-1].pk,
        size=3,
        sent_count=3,
        state=BatchState.SENT,
    )
    page.goto(live_server.url + reverse("admin:newsletter_digest_report", args=[digest.pk]))
    assert page.locator(".nl-chart svg").count() == 1
    rows = page.locator(".nl-table tbody tr")
    assert rows.first.locator("td").inner_text() == "3"
    assert page_width(page) <= 1280
    shoot(page, "report")
    # Every list a manager opens shows all its columns at 1,280 px, the admin's sidebar open,
    # without scrolling its table either.
    subscription_suppress(subscription_id=subs[2].id, reason="complaint", channel="webhook")
    Campaign.objects.create(
        newsletter=newsletter,
        name="Sonderangebot zum Jahresende",
        subject="Ein Jahr Meinung & Märkte zum halben Preis",
        body_markdown="Nur bis Silvester.",
    )
    too_wide = {}
    for name in ("subscription", "consentevent", "suppression", "digest", "campaign"):
        page.goto(live_server.url + reverse(f"admin:newsletter_{name}_changelist"))
        table = page.locator("#changelist .results")
        overflow = table.evaluate("el => el.scrollWidth - el.clientWidth")
        if overflow > 0:
            too_wide[name] = overflow
        shoot(page, f"list-{name}")
    assert too_wide == {}, "tables wider than the page at 1,280 px (px too wide)"
    page.goto(live_server.url + reverse("admin:newsletter_newsletter_change", args=[newsletter.pk]))
    shoot(page, "newsletter-form")
    page.goto(live_server.url + reverse("admin:newsletter_subscription_change", args=[subs[0].pk]))
    shoot(page, "subscription")


def test_manager_imports_a_csv_and_sees_what_happened(
    browser_page, live_server, newsletter, manager, tmp_path
):
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url)
    page.goto(live_server.url + reverse("admin:newsletter_subscription_changelist"))
    page.get_by_role("link", name="Aus CSV importieren").click()
    page.wait_for_url("**/subscription/import/")
    shoot(page, "import")

    bad = tmp_path / "kaputt.csv"
    bad.write_text("email\nok@example.org\nkeine-adresse\nok@example.org\n")
    page.select_option("#id_newsletter", str(newsletter.pk))
    page.set_input_files("#id_file", str(bad))
    page.get_by_role("button", name="Importieren").click()
    report = page.locator("#import-report")
    assert "wurde nicht importiert" in report.inner_text()
    assert "Zeile 3" not in report.inner_text()  # lines are in their own column
    assert report.locator("tbody tr").count() == 2
    assert not Subscription.objects.exists()
    shoot(page, "import-refused")

    good = tmp_path / "liste.csv"
    good.write_text(
        "email,consent_at,ip,source,text_version\n"
        "beleg@example.org,2025-03-01T09:30:00+01:00,198.51.100.4,Messe 2025,1\n"
        "neu@example.org,,,,\n",
        encoding="utf-8",
    )
    page.select_option("#id_newsletter", str(newsletter.pk))
    page.set_input_files("#id_file", str(good))
    page.get_by_role("button", name="Importieren").click()
    assert "„liste.csv“ importiert" in page.locator("#import-report").inner_text()
    assert Subscription.objects.get(email="beleg@example.org").state == SubscriptionState.CONFIRMED
    assert Subscription.objects.get(email="neu@example.org").state == SubscriptionState.PENDING
    assert ConsentEvent.objects.filter(kind="imported").count() == 1
    assert page_width(page) <= 1280
    shoot(page, "import-done")


def test_a_large_import_shows_its_progress_then_its_report(
    browser_page, live_server, newsletter, manager, tmp_path
):
    from newsletter.models import SubscriptionImport

    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server.url)
    # A job a worker is checking right now: progress, and the page reloads itself.
    running = SubscriptionImport.objects.create(
        newsletter=newsletter,
        file_name="messe-2025-alle-besucher.csv",
        data=b"email\n",
        user_name="verwaltung",
        state="checking",
        lines=100_000,
        rows_checked=40_000,
    )
    page.goto(
        live_server.url + reverse("admin:newsletter_subscription_import_job", args=[running.pk])
    )
    assert "40000 von 100000 Zeilen geprüft" in page.locator("#import-report").inner_text()
    assert page.locator("progress#import-progress").get_attribute("value") == "40"
    assert page_width(page) <= 1280
    shoot(page, "import-job-progress")
    SubscriptionImport.objects.filter(pk=running.pk).update(
        state="refused",
        finished_at=timezone.now(),
        rows=100_000,
        error_count=2,
        errors=[
            [7, "Bitte geben Sie eine gültige E-Mail-Adresse ein."],
            [99_001, "Adresse doppelt (schon in Zeile 12)."],
        ],
    )
    # It reloads by itself and then shows the report, with no reload any more.
    page.wait_for_selector("text=wurde nicht importiert", timeout=10_000)
    assert page.locator("meta[http-equiv=refresh]").count() == 0
    shoot(page, "import-job-refused")

    # Above the request's 2,000 rows the upload becomes a job (run eagerly in this test).
    big = tmp_path / "gross.csv"
    big.write_text(
        "email,consent_at,ip,source,text_version\n"
        + "".join(
            f"leser{i}@example.org,2025-03-01T09:30:00+01:00,198.51.100.4,Messe,1\n"
            for i in range(2_500)
        )
    )
    page.goto(live_server.url + reverse("admin:newsletter_subscription_import"))
    page.select_option("#id_newsletter", str(newsletter.pk))
    page.set_input_files("#id_file", str(big))
    with page.expect_navigation(timeout=120_000):
        page.get_by_role("button", name="Importieren").click(no_wait_after=True)
    page.wait_for_url("**/subscription/import/*/", timeout=120_000)
    page.wait_for_selector("text=„gross.csv“ importiert", timeout=120_000)
    assert Subscription.objects.filter(state=SubscriptionState.CONFIRMED).count() == 2_500
    shoot(page, "import-job-done")
    page.goto(live_server.url + reverse("admin:newsletter_subscription_import"))
    assert page.locator("#import-jobs tbody tr").count() == 2
    assert page_width(page) <= 1280
    shoot(page, "import-with-jobs")
