"""In a real Chromium: the site's own pages and the admin login break no CSP rule."""

import pytest
from django.urls import reverse

from tests.articles.factories import ArticleFactory

# Chromium reports every blocked inline script/style or foreign load as a
# `securitypolicyviolation` event on the document; collect them before any page script runs.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    event.violatedDirective + " blocked " + (event.blockedURI || "inline") +
    " at " + event.sourceFile + ":" + event.lineNumber
  );
});
"""


@pytest.fixture
def csp_page(browser_page):
    console: list[str] = []
    browser_page.on(
        "console",
        lambda message: (
            console.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    browser_page.add_init_script(COLLECT_VIOLATIONS)
    return browser_page, console


def _violations(page) -> list[str]:
    page.wait_for_load_state("load")
    return page.evaluate("window.__cspViolations")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_home_article_and_admin_login_satisfy_the_policy(csp_page, live_server):
    page, console = csp_page
    article = ArticleFactory(title="Warum Zinsen wieder zählen")
    for url in ("/", article.get_absolute_url(), reverse("admin:login")):
        response = page.goto(live_server.url + url)
        assert response.status == 200, url
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert _violations(page) == [], url
    assert console == []


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_check_would_see_a_violation(csp_page, live_server):
    """The listener is live: an inline style injected into a public page is reported."""
    page, _console = csp_page
    page.goto(live_server.url + "/")
    page.evaluate(
        "document.body.insertAdjacentHTML('beforeend', '<div style=\"color: red\">x</div>')"
    )
    page.wait_for_function("window.__cspViolations.length > 0")
    assert any("style-src" in v for v in _violations(page))


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_pages_work_under_the_admin_policy(csp_page, live_server, django_user_model):
    """The admin's own scripts (actions, prepopulated slug) run with scripts kept strict."""
    page, console = csp_page
    django_user_model.objects.create_superuser("chefin", "chefin@example.org", "geheim-geheim-42")
    ArticleFactory()
    page.goto(live_server.url + reverse("admin:login"))
    page.fill("#id_username", "chefin")
    page.fill("#id_password", "geheim-geheim-42")
    page.click("input[type=submit]")
    page.wait_for_url(live_server.url + reverse("admin:index"))
    for url in (
        reverse("admin:index"),
        reverse("admin:articles_article_changelist"),
        reverse("admin:articles_article_add"),
    ):
        response = page.goto(live_server.url + url)
        assert response.status == 200, url
        assert _violations(page) == [], url
    # The slug is prepopulated from the title by the admin's own script.
    page.fill("#id_title", "Ein Titel")
    page.locator("#id_title").blur()
    assert page.input_value("#id_slug") == "ein-titel"
    assert console == []
