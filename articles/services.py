"""Every write to articles, topics and disclaimers, with the publishing rules.

Each change that readers can see bumps the content generation after commit, so cached pages
never outlive the change.
"""

import secrets
from collections.abc import Iterable
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .caching import content_generation_bump
from .imaging import PreparedImage
from .markdown import render_markdown
from .models import (
    Article,
    ArticleKind,
    ArticleStatus,
    ArticleTranslation,
    Author,
    Disclaimer,
    DisclaimerVersion,
    Image,
    Topic,
)
from .selectors import disclaimer_default_version, disclaimer_latest_version

LIVE_STATUSES = (ArticleStatus.PUBLISHED, ArticleStatus.SCHEDULED)


def _invalidate_on_commit() -> None:
    transaction.on_commit(content_generation_bump)


def article_render_body(*, article: Article) -> None:
    """Render the Markdown body to sanitised HTML on the instance (saved by the caller)."""
    article.body_html = render_markdown(article.body_markdown)


def article_apply_publishing_defaults(*, article: Article, now: datetime | None = None) -> None:
    """A live article gets a live time, the status matching it, and (for an opinion) a disclaimer.

    Raises ValidationError(code="disclaimer_missing") when an opinion would go live without one.
    """
    if article.status not in LIVE_STATUSES:
        return
    now = now or timezone.now()
    if article.published_at is None:
        article.published_at = now
    # The status says what readers see: a future time is a schedule (whole minutes), a
    # past one is published.
    if article.published_at > now:
        article.status = ArticleStatus.SCHEDULED
        article.published_at = article.published_at.replace(second=0, microsecond=0)
    else:
        article.status = ArticleStatus.PUBLISHED
    if article.disclaimer_version_id is None:
        default = disclaimer_default_version(kind=article.kind)
        if default is not None:
            article.disclaimer_version = default
    if article.kind == ArticleKind.OPINION and article.disclaimer_version_id is None:
        raise ValidationError(
            _(
                "Ein Meinungsartikel kann nur mit Hinweis veröffentlicht werden. Bitte wählen "
                "Sie einen Hinweis aus oder legen Sie einen Standard-Hinweis für Meinungen an."
            ),
            code="disclaimer_missing",
        )


@transaction.atomic
def article_save(
    *,
    article: Article,
    authors: Iterable[Author] | None = None,
    topics: Iterable[Topic] | None = None,
    mark_corrected: bool = False,
) -> Article:
    """Validate and store an article with its body rendered once; readers see it at once."""
    article_apply_publishing_defaults(article=article)
    if mark_corrected:
        article.corrected_at = timezone.now()
    article_render_body(article=article)
    article.full_clean()
    article.save()
    if authors is not None:
        article.authors.set(authors)
    if topics is not None:
        article.topics.set(topics)
    _invalidate_on_commit()
    return article


@transaction.atomic
def article_translation_save(*, translation: ArticleTranslation) -> ArticleTranslation:
    """Validate and store a translation with its body rendered once; readers see it at once."""
    translation.body_html = render_markdown(translation.body_markdown)
    translation.full_clean()
    translation.save()
    _invalidate_on_commit()
    return translation


@transaction.atomic
def article_translation_delete(*, translation: ArticleTranslation) -> None:
    """Remove a translation; its pages show the original again at once."""
    translation.delete()
    _invalidate_on_commit()


def article_create(
    *,
    title: str,
    slug: str,
    body_markdown: str,
    kind: str = ArticleKind.OPINION,
    lead: str = "",
    meta_description: str = "",
    authors: Iterable[Author] = (),
    topics: Iterable[Topic] = (),
    disclaimer_version: DisclaimerVersion | None = None,
    feature_image: Image | None = None,
) -> Article:
    """Create a draft article; publishing is a separate step."""
    article = Article(
        title=title,
        slug=slug,
        kind=kind,
        lead=lead,
        body_markdown=body_markdown,
        meta_description=meta_description,
        disclaimer_version=disclaimer_version,
        feature_image=feature_image,
        status=ArticleStatus.DRAFT,
    )
    return article_save(article=article, authors=list(authors), topics=list(topics))


@transaction.atomic
def article_publish(
    *, article: Article, at: datetime | None = None, now: datetime | None = None
) -> Article:
    """Publish now, or schedule for `at` (live from that minute); opinions need a disclaimer."""
    now = now or timezone.now()
    article = Article.objects.select_for_update().get(pk=article.pk)
    go_live = at.replace(second=0, microsecond=0) if at else now
    if article.status == ArticleStatus.PUBLISHED and at is None:
        return article
    article.status = ArticleStatus.SCHEDULED if go_live > now else ArticleStatus.PUBLISHED
    article.published_at = go_live
    article_apply_publishing_defaults(article=article, now=now)
    article.save(update_fields=["status", "published_at", "disclaimer_version", "modified_at"])
    _invalidate_on_commit()
    return article


@transaction.atomic
def article_withdraw(*, article: Article) -> Article:
    """Take an article off the site (it keeps its history and disclaimer version)."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    if article.status == ArticleStatus.WITHDRAWN:
        return article
    article.status = ArticleStatus.WITHDRAWN
    article.save(update_fields=["status", "modified_at"])
    _invalidate_on_commit()
    return article


@transaction.atomic
def article_correct(
    *,
    article: Article,
    title: str | None = None,
    lead: str | None = None,
    body_markdown: str | None = None,
    now: datetime | None = None,
) -> Article:
    """Correct a published article; the page then says when ("aktualisiert am …")."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    if article.status != ArticleStatus.PUBLISHED:
        raise ValidationError(
            _("Nur veröffentlichte Artikel können korrigiert werden."), code="not_published"
        )
    if title is not None:
        article.title = title
    if lead is not None:
        article.lead = lead
    if body_markdown is not None:
        article.body_markdown = body_markdown
    article_render_body(article=article)
    article.corrected_at = now or timezone.now()
    article.full_clean()
    article.save()
    _invalidate_on_commit()
    return article


def articles_publish_due(*, now: datetime | None = None) -> int:
    """Flip scheduled articles whose minute has come to published; returns how many."""
    count = Article.objects.filter(
        status=ArticleStatus.SCHEDULED, published_at__lte=now or timezone.now()
    ).update(status=ArticleStatus.PUBLISHED, modified_at=timezone.now())
    if count:
        _invalidate_on_commit()
    return count


def topic_save(*, topic: Topic) -> Topic:
    """Store a topic; pages naming it are refreshed."""
    topic.full_clean()
    topic.save()
    _invalidate_on_commit()
    return topic


def author_save(*, author: Author) -> Author:
    """Store an author; bylines naming them are refreshed."""
    author.full_clean()
    author.save()
    _invalidate_on_commit()
    return author


@transaction.atomic
def disclaimer_set_text(
    *, disclaimer: Disclaimer, text_de: str, text_en: str = ""
) -> DisclaimerVersion:
    """A changed wording becomes a new version; published articles keep the one they had."""
    if disclaimer.pk is None:
        disclaimer.full_clean()
        disclaimer.save()
    else:
        Disclaimer.objects.select_for_update().filter(pk=disclaimer.pk).first()
    latest = disclaimer_latest_version(disclaimer=disclaimer)
    if latest is not None and latest.text_de == text_de and latest.text_en == text_en:
        return latest
    version = DisclaimerVersion.objects.create(
        disclaimer=disclaimer,
        version=(latest.version + 1) if latest else 1,
        text_de=text_de,
        text_en=text_en,
    )
    return version


@transaction.atomic
def disclaimer_save(
    *, disclaimer: Disclaimer, text_de: str, text_en: str = ""
) -> DisclaimerVersion:
    """Store a disclaimer's settings and its wording (a new version only if it changed)."""
    disclaimer.full_clean()
    disclaimer.save()
    return disclaimer_set_text(disclaimer=disclaimer, text_de=text_de, text_en=text_en)


def image_store(
    *,
    prepared: PreparedImage,
    alt_text: str,
    caption: str = "",
    credit: str = "",
    uploaded_by: AbstractBaseUser | None = None,
    image: Image | None = None,
) -> Image:
    """Store a re-encoded picture and its renditions under fresh random names, then its row
    (`image`, when the admin's form already made the unsaved instance).

    Only bytes made by articles.imaging reach the storage. Names are never reused, so the
    files can be cached for good; a failed row leaves orphan files, never a row without files.
    """
    now = timezone.now()
    stem = f"images/{now:%Y/%m}/{secrets.token_hex(8)}"
    master = default_storage.save(f"{stem}.jpg", ContentFile(prepared.master.jpeg))
    renditions = []
    for item in prepared.renditions:
        jpeg = default_storage.save(f"{stem}-{item.width}.jpg", ContentFile(item.jpeg))
        webp = default_storage.save(f"{stem}-{item.width}.webp", ContentFile(item.webp))
        renditions.append(
            {
                "width": item.width,
                "height": item.height,
                "jpeg": jpeg,
                "jpeg_bytes": len(item.jpeg),
                "webp": webp,
                "webp_bytes": len(item.webp),
            }
        )
    image = image or Image()
    image.file = master
    image.alt_text = alt_text.strip()
    image.caption = caption.strip()
    image.credit = credit.strip()
    image.width, image.height = prepared.master.width, prepared.master.height
    image.renditions = renditions
    image.uploaded_by = uploaded_by
    image.full_clean()
    image.save()
    return image


def image_update(*, image: Image) -> Image:
    """Store changed alt text, caption or credit; pages showing the picture are refreshed."""
    image.full_clean()
    image.save()
    _invalidate_on_commit()
    return image
