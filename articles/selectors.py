"""Reads that carry the publishing rule: what counts as live at a given time."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from .caching import cached_fragment
from .models import (
    IMAGE_STEM,
    ORIGINAL_LANGUAGE,
    Article,
    ArticleStatus,
    ArticleTranslation,
    Author,
    Disclaimer,
    DisclaimerVersion,
    Image,
    Topic,
)

# What a translation puts in place of the original's words on a page.
TRANSLATED_FIELDS = ("title", "slug", "lead", "body_html", "meta_description")


def live_article_filter(*, now: datetime | None = None) -> Q:
    """Published, or scheduled with its minute reached: live without waiting for a job."""
    return Q(
        status__in=[ArticleStatus.PUBLISHED, ArticleStatus.SCHEDULED],
        published_at__lte=now or timezone.now(),
    )


def article_list_live(*, now: datetime | None = None) -> QuerySet[Article]:
    return Article.objects.filter(live_article_filter(now=now)).order_by("-published_at", "-id")


def article_list_by_ids(ids: list[int], *, live_only: bool = False) -> QuerySet[Article]:
    """Articles by id, with what a mail shows of them: only the live ones (the web archive)
    or every one that still exists (a mail, rendered as it was sent)."""
    articles = article_list_live() if live_only else Article.objects.all()
    return articles.filter(pk__in=ids).select_related("disclaimer_version", "feature_image")


def article_list_published_between(*, start: datetime, end: datetime) -> list[Article]:
    """Articles that went live in [start, end), oldest first, with what a digest shows."""
    return list(
        article_list_live(now=end)
        .filter(published_at__gte=start, published_at__lt=end)
        .select_related("disclaimer_version", "feature_image")
        .order_by("published_at", "id")
    )


def _for_page(queryset: QuerySet[Article]) -> QuerySet[Article]:
    """Public pages show the rendered body only: the Markdown source (as long again) stays
    behind; the disclaimer and the feature image come along in the same query."""
    return queryset.defer("body_markdown").select_related("disclaimer_version", "feature_image")


def _with_cards(queryset: QuerySet[Article]) -> QuerySet[Article]:
    """What a teaser shows, fetched in a fixed number of queries whatever the count."""
    return _for_page(queryset).prefetch_related("topics", "authors")


def article_list_for_page(*, now: datetime | None = None) -> QuerySet[Article]:
    """Live articles, newest first, ready for a list page."""
    return _with_cards(article_list_live(now=now))


def article_list_for_topic(*, topic: Topic, now: datetime | None = None) -> QuerySet[Article]:
    """Live articles on one topic, newest first."""
    return _with_cards(article_list_live(now=now).filter(topics=topic))


def article_get_live(*, slug: str, now: datetime | None = None) -> Article | None:
    """The live article with this slug (with its disclaimer), or None."""
    return _for_page(article_list_live(now=now)).filter(slug=slug).first()


def articles_localize(articles: Iterable[Article], *, language: str | None) -> list[Article]:
    """The articles as readers of `language` see them, in one query: a translation's words
    in place of the original's where one exists. Each gets `text_language` (the language its
    words are in, for `lang` attributes) and `original_slug`. For display only: never saved."""
    articles = list(articles)
    for article in articles:
        article.text_language = ORIGINAL_LANGUAGE
        article.original_slug = article.slug
    if not articles or not language or language == ORIGINAL_LANGUAGE:
        return articles
    translations = {
        t.article_id: t
        for t in ArticleTranslation.objects.filter(
            language=language, article_id__in=[article.pk for article in articles]
        ).only("article_id", *TRANSLATED_FIELDS)
    }
    for article in articles:
        translation = translations.get(article.pk)
        if translation is not None:
            for field in TRANSLATED_FIELDS:
                setattr(article, field, getattr(translation, field))
            article.text_language = language
    return articles


def article_slugs(*, article: Article) -> dict[str, str]:
    """The article's slug in every language it has a page in (the original's as fallback).

    An unsaved article (the editor's preview of a new form) has no translations yet."""
    slugs = {ORIGINAL_LANGUAGE: getattr(article, "original_slug", article.slug)}
    if article.pk is None:
        return slugs
    slugs.update(ArticleTranslation.objects.filter(article=article).values_list("language", "slug"))
    return slugs


@dataclass(frozen=True)
class ArticlePage:
    """What an article's page shows of it: the article, its topics and its authors."""

    article: Article
    topics: list[Topic]
    authors: list[Author]


def article_page_get_live(
    *, slug: str, language: str = ORIGINAL_LANGUAGE, now: datetime | None = None
) -> ArticlePage | None:
    """The live article a page in `language` shows under `slug`: its translation's slug in
    that language, else the original's slug (then the translation, if any, or the original)."""
    article = None
    if language != ORIGINAL_LANGUAGE:
        article_id = (
            ArticleTranslation.objects.filter(language=language, slug=slug)
            .values_list("article_id", flat=True)
            .first()
        )
        if article_id is not None:
            article = _for_page(article_list_live(now=now)).filter(pk=article_id).first()
    article = article or article_get_live(slug=slug, now=now)
    if article is None:
        return None
    articles_localize([article], language=language)
    return _with_topics_and_authors(article)


def article_page_get_for_preview(
    *, pk: int, language: str = ORIGINAL_LANGUAGE
) -> ArticlePage | None:
    """Any article, whatever its status, for the staff preview, as readers will get it."""
    article = _for_page(Article.objects.all()).filter(pk=pk).first()
    if article is None:
        return None
    articles_localize([article], language=language)
    _with_publishing_disclaimer(article)
    return _with_topics_and_authors(article)


def article_page_for_unsaved(
    *, article: Article, topics: list[Topic], authors: list[Author]
) -> ArticlePage:
    """The page of an article as typed, not stored: for the editor's previews."""
    _with_publishing_disclaimer(article)
    return ArticlePage(
        article=article,
        topics=sorted(topics, key=lambda t: (t.name, t.pk)),
        authors=sorted(authors, key=lambda a: (a.name, a.pk)),
    )


def _with_publishing_disclaimer(article: Article) -> None:
    """A draft has no disclaimer yet: publishing attaches the default for its kind
    (services.article_apply_publishing_defaults), so a preview shows that one."""
    if article.disclaimer_version_id is None:
        article.disclaimer_version = disclaimer_default_version(kind=article.kind)


def _with_topics_and_authors(article: Article) -> ArticlePage:
    """One query for both lists, in plain SQL: an article page that is not in the cache is
    mostly ORM work, and this replaced two prefetch queries (bench/pages.py, article_uncached:
    about 310 -> 460 req/s)."""
    topics: list[Topic] = []
    authors: list[Author] = []
    with connection.cursor() as cursor:
        cursor.execute(_TOPICS_AND_AUTHORS_SQL, [article.pk, article.pk])
        for kind, pk, name, slug, name_en in cursor.fetchall():
            if kind == "topic":
                topics.append(Topic(pk=pk, name=name, slug=slug, name_en=name_en))
            else:
                authors.append(Author(pk=pk, name=name, slug=slug))
    return ArticlePage(article=article, topics=topics, authors=authors)


def _topics_and_authors_sql() -> str:
    """Both lists in their models' own order (by name), from the models' own tables."""
    parts = []
    # Topics bring their English name; authors' names are not translated.
    for kind, field, name_en in (
        ("topic", Article.topics.field, "x.name_en"),
        ("author", Article.authors.field, "''"),
    ):
        through = field.remote_field.through._meta
        label = field.related_model._meta
        parts.append(
            f"SELECT '{kind}' AS kind, x.id, x.name, x.slug, {name_en} AS name_en "
            f"FROM {label.db_table} x "
            f"JOIN {through.db_table} m ON m.{field.m2m_reverse_name()} = x.id "
            f"WHERE m.{field.m2m_column_name()} = %s"
        )
    return " UNION ALL ".join(parts) + " ORDER BY 1, 3, 2"


_TOPICS_AND_AUTHORS_SQL = _topics_and_authors_sql()


def article_list_related(
    *, article_id: int, topic_ids: list[int], limit: int = 4, now: datetime | None = None
) -> list[Article]:
    """Up to `limit` other live articles sharing one of `topic_ids`, newest first.

    Every article on the same topics has the same list but for itself, so the newest
    `limit + 1` are cached per set of topics and content generation, like the navigation."""
    topic_ids = sorted(topic_ids)
    if not topic_ids:
        return []

    def newest() -> list[Article]:
        ids = article_list_live(now=now).filter(topics__in=topic_ids).values("pk")
        return list(
            article_list_live(now=now)
            .filter(pk__in=ids)
            .only("id", "title", "slug", "lead", "published_at", "kind")
            .order_by("-published_at", "-id")[: limit + 1]
        )

    candidates = newest() if now else cached_fragment("related", limit, *topic_ids, build=newest)
    return [candidate for candidate in candidates if candidate.pk != article_id][:limit]


def topic_get(*, slug: str) -> Topic | None:
    return Topic.objects.filter(slug=slug).first()


def topic_list_all() -> QuerySet[Topic]:
    """Every topic, by name: what a reader may choose to hear more about."""
    return Topic.objects.order_by("name", "id")


def topic_list_navigation() -> list[Topic]:
    """Topics that have at least one live article, for the site navigation. EXISTS looks for
    one live article per topic instead of joining every live article of the archive."""
    has_live_article = article_list_live().filter(topics=OuterRef("pk"))
    return list(
        Topic.objects.filter(Exists(has_live_article))
        .only("id", "name", "name_en", "slug")
        .order_by("name")
    )


def disclaimer_default_version(*, kind: str) -> DisclaimerVersion | None:
    """The newest version of the disclaimer that is the default for `kind`, if any."""
    return (
        DisclaimerVersion.objects.filter(disclaimer__default_for_kind=kind)
        .order_by("-version")
        .first()
    )


def disclaimer_latest_version(*, disclaimer: Disclaimer) -> DisclaimerVersion | None:
    return disclaimer.versions.order_by("-version").first()


def image_list_named_in(*, texts: Iterable[str]) -> list[Image]:
    """The library pictures whose files the texts name (an image, or a link to the file),
    whatever host the URL has: one query for all of them."""
    stems = {match.group(0) for text in texts for match in IMAGE_STEM.finditer(text or "")}
    if not stems:
        return []
    named = Q()
    for stem in sorted(stems):
        named |= Q(file__startswith=f"{stem}.")
    return list(Image.objects.filter(named))


@dataclass(frozen=True)
class ImageUse:
    article: Article
    feature: bool
    body: bool


def image_usage(*, image: Image) -> list[ImageUse]:
    """Where a library picture appears: every article showing it as its feature image or in
    its text (two queries)."""
    featured = {article.pk: article for article in image.featured_in.order_by("-id")}
    in_body = {
        article.pk: article
        for article in Article.objects.filter(body_images__image=image).order_by("-id")
    }
    return [
        ImageUse(
            article=featured.get(pk) or in_body[pk], feature=pk in featured, body=pk in in_body
        )
        for pk in sorted(featured.keys() | in_body.keys(), reverse=True)
    ]
