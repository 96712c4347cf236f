"""The demo newsletter of `seed_demo`: its digest and mails as a reader of the local run sees."""

import pytest
from django.core import mail
from django.core.management import call_command

from articles.models import ArticleKind
from articles.selectors import disclaimer_default_version
from newsletter.demo import DEMO_SLUG
from newsletter.emails.digest import digest_render
from newsletter.models import Newsletter
from newsletter.selectors.digests import digest_articles
from newsletter.services.consent import subscription_request
from newsletter.services.digests import digest_start_now

pytestmark = pytest.mark.django_db


def _demo_digest_text() -> tuple[str, list]:
    digest = digest_start_now(newsletter=Newsletter.objects.get(slug=DEMO_SLUG)).digest
    articles = digest_articles(digest=digest)
    return digest_render(digest=digest, articles=articles, language="de").text, articles


def test_the_demo_digest_gives_each_kind_its_own_disclaimer():
    call_command("seed_demo", verbosity=0)
    disclaimers = {
        kind: version.text_de if (version := disclaimer_default_version(kind=kind)) else None
        for kind in ArticleKind.values
    }
    assert disclaimers[ArticleKind.OPINION] and disclaimers[ArticleKind.ANALYSIS]
    assert disclaimers[ArticleKind.NEWS] is None
    text, articles = _demo_digest_text()
    assert {a.kind for a in articles} == set(ArticleKind.values)

    # Each article's part of the mail runs from its title to the next article's title.
    starts = sorted((text.index(f"\n{a.title}\n"), a) for a in articles)
    for (start, article), end in zip(starts, [s for s, _ in starts[1:]] + [len(text)], strict=True):
        part = text[start:end]
        shown = [d for d in disclaimers.values() if d and d in part]
        expected = disclaimers[article.kind]
        assert shown == ([expected] if expected else []), (article.kind, part)


@pytest.mark.parametrize("seeded_before_the_fix", [False, True])
def test_demo_mails_link_the_imprint_on_the_site_url_of_sending(
    settings, django_capture_on_commit_callbacks, seeded_before_the_fix
):
    settings.SITE_URL = "http://localhost:8000"
    call_command("seed_demo", verbosity=0)
    if seeded_before_the_fix:
        # What earlier seeds stored: absolute links on the SITE_URL of the first run.
        Newsletter.objects.filter(slug=DEMO_SLUG).update(
            imprint_url="http://localhost:8000/impressum/",
            privacy_url="http://localhost:8000/datenschutz/",
        )
        call_command("seed_demo", verbosity=0)  # as every `make run` does
    # The site moved (another PORT for make run, or a real host) after the first seeding.
    settings.SITE_URL = "http://localhost:8765"
    with django_capture_on_commit_callbacks(execute=True):
        subscription_request(
            address="leserin@example.org",
            newsletter=Newsletter.objects.get(slug=DEMO_SLUG),
            ip="127.0.0.1",
            user_agent="test",
            url="/",
            form="test",
            language="de",
        )
    [confirmation] = mail.outbox
    digest_text, _articles = _demo_digest_text()
    for text in (confirmation.body, confirmation.alternatives[0][0], digest_text):
        assert "http://localhost:8765/impressum/" in text
        assert "http://localhost:8765/datenschutz/" in text
        assert "localhost:8000" not in text
