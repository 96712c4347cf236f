"""The database itself refuses articles that break the publishing rules."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from articles.models import ArticleKind, ArticleStatus, DisclaimerVersion
from tests.articles.factories import (
    SEED_NOTE,
    ArticleFactory,
    DisclaimerFactory,
    DisclaimerVersionFactory,
    DraftArticleFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("status", [ArticleStatus.PUBLISHED, ArticleStatus.SCHEDULED])
def test_database_refuses_live_opinion_without_disclaimer(status):
    article = DraftArticleFactory()
    article.status = status
    article.published_at = timezone.now()
    with pytest.raises(IntegrityError, match="opinion_live_needs_disclaimer"), transaction.atomic():
        article.save()


@pytest.mark.parametrize("kind", [ArticleKind.NEWS, ArticleKind.ANALYSIS])
def test_other_kinds_may_go_live_without_disclaimer(kind):
    article = ArticleFactory(kind=kind, disclaimer_version=None)
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED


@pytest.mark.parametrize("status", [ArticleStatus.DRAFT, ArticleStatus.WITHDRAWN])
def test_opinion_off_the_site_may_lack_a_disclaimer(status):
    article = ArticleFactory(status=status, disclaimer_version=None)
    assert article.pk


def test_database_refuses_live_article_without_time():
    article = DraftArticleFactory(kind=ArticleKind.NEWS)
    article.status = ArticleStatus.PUBLISHED
    with pytest.raises(IntegrityError, match="live_article_has_live_time"), transaction.atomic():
        article.save()


def test_full_clean_names_the_problem_with_a_code():
    article = DraftArticleFactory.build(status=ArticleStatus.PUBLISHED, published_at=timezone.now())
    with pytest.raises(ValidationError) as caught:
        article.full_clean()
    codes = [error.code for errors in caught.value.error_dict.values() for error in errors]
    assert "disclaimer_missing" in codes


def test_one_default_disclaimer_per_kind(default_disclaimer):
    duplicate = "disclaimer_one_default_per_kind"
    with pytest.raises(IntegrityError, match=duplicate), transaction.atomic():
        DisclaimerFactory(default_for_kind=ArticleKind.OPINION)
    assert DisclaimerFactory(default_for_kind=ArticleKind.NEWS).pk


def test_version_numbers_are_unique_per_disclaimer():
    version = DisclaimerVersionFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        DisclaimerVersion.objects.create(disclaimer=version.disclaimer, version=1, text_de="x")


def test_migration_created_the_seed_disclaimer_verbatim(default_disclaimer):
    assert default_disclaimer.text_de == SEED_NOTE
    assert default_disclaimer.text_en.startswith("Note: This article is an expression of opinion")
    assert default_disclaimer.text_for("en") == default_disclaimer.text_en
    assert default_disclaimer.text_for("de") == default_disclaimer.text_de


def test_article_url_uses_the_slug():
    article = ArticleFactory(slug="gold-glaenzt")
    assert article.get_absolute_url() == "/artikel/gold-glaenzt/"
