"""The two commands a fresh clone relies on: demo content and a non-interactive superuser."""

import html
import re

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from articles.models import (
    Article,
    ArticleKind,
    ArticleStatus,
    Author,
    DisclaimerVersion,
    Topic,
)
from articles.selectors import article_list_live, disclaimer_default_version

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_content_once(client, default_disclaimer):
    call_command("seed_demo", verbosity=0)
    counts = (
        Article.objects.count(),
        Topic.objects.count(),
        Author.objects.count(),
        DisclaimerVersion.objects.count(),
    )
    assert counts[0] >= 6 and counts[1] >= 3
    live = list(article_list_live())
    assert len(live) == counts[0]
    assert {a.kind for a in live} == {"opinion", "analysis", "news"}
    assert all(a.topics.exists() and a.authors.exists() for a in live)
    assert all(a.body_html.startswith("<p>") for a in live)

    call_command("seed_demo", verbosity=0)
    assert (
        Article.objects.count(),
        Topic.objects.count(),
        Author.objects.count(),
        DisclaimerVersion.objects.count(),
    ) == counts
    assert not Article.objects.exclude(status=ArticleStatus.PUBLISHED).exists()


def test_each_kind_of_demo_article_shows_its_own_disclaimer(client, default_disclaimer):
    """Opinions the opinion disclaimer, analyses the analysis one, news none (issue: the demo
    had put the opinion disclaimer on every article)."""
    call_command("seed_demo", verbosity=0)
    analysis = disclaimer_default_version(kind=ArticleKind.ANALYSIS)
    assert analysis is not None and "Analyse unserer Redaktion" in analysis.text_de
    expected = {
        ArticleKind.OPINION: default_disclaimer.text_de,
        ArticleKind.ANALYSIS: analysis.text_de,
        ArticleKind.NEWS: None,
    }
    live = list(article_list_live())
    assert {a.kind for a in live} == set(expected)
    for article in live:
        page = client.get(article.get_absolute_url()).content.decode()
        shown = re.findall(r'<aside class="disclaimer"[^>]*>\s*<p>(.*?)</p>', page, flags=re.S)
        assert shown == ([html.escape(expected[article.kind])] if expected[article.kind] else [])


def test_createsuperuser_from_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "chefin")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "chefin@example.org")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "ein-langes-passwort-2025")
    call_command("createsuperuser", interactive=False, verbosity=0)
    user = User.objects.get(username="chefin")
    assert user.is_superuser and user.is_staff
    assert user.check_password("ein-langes-passwort-2025")
