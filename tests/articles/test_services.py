"""Workflow: draft, publish now or at a minute, withdraw, correct; disclaimers versioned."""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from articles.models import Article, ArticleKind, ArticleStatus, Disclaimer
from articles.selectors import article_get_live, article_list_live, live_article_filter
from articles.services import (
    article_correct,
    article_create,
    article_publish,
    article_withdraw,
    articles_publish_due,
    disclaimer_save,
    disclaimer_set_text,
)
from articles.tasks import articles_publish_due_task
from tests.articles.factories import ArticleFactory, DraftArticleFactory, TopicFactory

pytestmark = pytest.mark.django_db
BERLIN_MORNING = timezone.make_aware(datetime(2025, 7, 25, 6, 11, 0))


def test_create_renders_and_sanitises_the_body_once():
    article = article_create(
        title="Gold",
        slug="gold",
        body_markdown="## Lage\n\nGut <script>alert(1)</script> [x](javascript:alert(1))",
        topics=[TopicFactory()],
    )
    article.refresh_from_db()
    assert article.status == ArticleStatus.DRAFT
    assert article.body_html.startswith("<h2>Lage</h2>")
    assert "script" not in article.body_html and "javascript" not in article.body_html
    assert article.topics.count() == 1


def test_publishing_an_opinion_attaches_the_current_default_disclaimer(default_disclaimer):
    article = DraftArticleFactory()
    article_publish(article=article, now=BERLIN_MORNING)
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    assert article.published_at == BERLIN_MORNING
    assert article.disclaimer_version == default_disclaimer


def test_publishing_an_opinion_without_any_disclaimer_is_refused_in_words():
    Disclaimer.objects.update(default_for_kind="")
    article = DraftArticleFactory()
    with pytest.raises(ValidationError, match="nur mit Hinweis") as caught:
        article_publish(article=article)
    assert caught.value.code == "disclaimer_missing"
    article.refresh_from_db()
    assert article.status == ArticleStatus.DRAFT


def test_news_can_be_published_without_disclaimer():
    Disclaimer.objects.update(default_for_kind="")
    article = DraftArticleFactory(kind=ArticleKind.NEWS)
    article_publish(article=article)
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    assert article.disclaimer_version is None


def test_scheduled_article_goes_live_at_its_minute_not_before(default_disclaimer):
    now = timezone.now().replace(second=0, microsecond=0)
    at = now + timedelta(minutes=30, seconds=42)
    article = article_publish(article=DraftArticleFactory(), at=at, now=now)
    assert article.status == ArticleStatus.SCHEDULED
    assert article.published_at == now + timedelta(minutes=30)  # whole minutes

    minute = now + timedelta(minutes=30)
    just_before = minute - timedelta(seconds=1)
    assert article_get_live(slug=article.slug, now=just_before) is None
    assert article_get_live(slug=article.slug, now=minute) == article
    assert not Article.objects.filter(live_article_filter(now=just_before), pk=article.pk).exists()

    assert articles_publish_due(now=just_before) == 0
    assert articles_publish_due(now=minute) == 1
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    assert articles_publish_due(now=minute) == 0  # running twice changes nothing


def test_beat_task_flips_due_articles(default_disclaimer):
    due = article_publish(article=DraftArticleFactory(), at=timezone.now() + timedelta(minutes=5))
    Article.objects.filter(pk=due.pk).update(published_at=timezone.now() - timedelta(minutes=1))
    later = article_publish(article=DraftArticleFactory(), at=timezone.now() + timedelta(hours=2))
    assert articles_publish_due_task.delay().get() == 1
    due.refresh_from_db()
    later.refresh_from_db()
    assert due.status == ArticleStatus.PUBLISHED
    assert later.status == ArticleStatus.SCHEDULED


def test_publish_now_on_a_scheduled_article_brings_it_forward(default_disclaimer):
    article = article_publish(article=DraftArticleFactory(), at=timezone.now() + timedelta(days=1))
    article_publish(article=article, now=BERLIN_MORNING)
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    assert article.published_at == BERLIN_MORNING


def test_publishing_twice_keeps_the_first_live_time():
    article = ArticleFactory()
    first = article.published_at
    article_publish(article=article)
    article.refresh_from_db()
    assert article.published_at == first


def test_withdraw_takes_the_article_off_the_site():
    article = ArticleFactory()
    version = article.disclaimer_version
    article_withdraw(article=article, reason="Test")
    article.refresh_from_db()
    assert article.status == ArticleStatus.WITHDRAWN
    assert article.disclaimer_version == version
    assert not article_list_live().filter(pk=article.pk).exists()


def test_correct_sets_the_time_and_rerenders():
    article = ArticleFactory()
    article_correct(article=article, body_markdown="Neu **korrigiert**", now=BERLIN_MORNING)
    article.refresh_from_db()
    assert article.corrected_at == BERLIN_MORNING
    assert article.body_html == "<p>Neu <strong>korrigiert</strong></p>"


def test_only_published_articles_can_be_corrected():
    article = DraftArticleFactory()
    with pytest.raises(ValidationError) as caught:
        article_correct(article=article, title="Neu")
    assert caught.value.code == "not_published"


def test_changed_disclaimer_text_is_a_new_version_and_articles_keep_theirs(default_disclaimer):
    published = article_publish(article=DraftArticleFactory())
    disclaimer = default_disclaimer.disclaimer

    same = disclaimer_set_text(
        disclaimer=disclaimer,
        text_de=default_disclaimer.text_de,
        text_en=default_disclaimer.text_en,
    )
    assert same == default_disclaimer

    new = disclaimer_set_text(disclaimer=disclaimer, text_de="Neuer Hinweis.", text_en="New.")
    assert new.version == default_disclaimer.version + 1
    published.refresh_from_db()
    assert published.disclaimer_version == default_disclaimer

    later = article_publish(article=DraftArticleFactory())
    assert later.disclaimer_version == new


def test_disclaimer_save_creates_the_first_version():
    version = disclaimer_save(
        disclaimer=Disclaimer(name="Analyse-Hinweis", default_for_kind=ArticleKind.ANALYSIS),
        text_de="Keine Anlageberatung.",
    )
    assert version.version == 1
    article = article_publish(article=DraftArticleFactory(kind=ArticleKind.ANALYSIS))
    assert article.disclaimer_version == version
