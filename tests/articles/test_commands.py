"""The two commands a fresh clone relies on: demo content and a non-interactive superuser."""

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from articles.models import Article, ArticleStatus, Author, DisclaimerVersion, Topic
from articles.selectors import article_list_live

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
    assert all(a.disclaimer_version == default_disclaimer for a in live)
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

    first = live[0]
    response = client.get(first.get_absolute_url())
    assert response.status_code == 200
    assert default_disclaimer.text_de in response.content.decode()


def test_createsuperuser_from_environment(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "chefin")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "chefin@example.org")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "ein-langes-passwort-2025")
    call_command("createsuperuser", interactive=False, verbosity=0)
    user = User.objects.get(username="chefin")
    assert user.is_superuser and user.is_staff
    assert user.check_password("ein-langes-passwort-2025")
