"""Every write to articles, topics and disclaimers, with the publishing rules.

Each change that readers can see bumps the content generation after commit, so cached pages
never outlive the change.
"""

from collections.abc import Iterable
from datetime import datetime

import reversion
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from reversion.models import Revision, Version

from .caching import content_generation_bump
from .imaging import PreparedImage
from .markdown import render_markdown
from .models import (
    Article,
    ArticleEvent,
    ArticleEventKind,
    ArticleImage,
    ArticleKind,
    ArticleStatus,
    ArticleTranslation,
    Author,
    Disclaimer,
    DisclaimerVersion,
    Image,
    Topic,
    UnpublishedRevision,
    image_stem_new,
)
from .pictures import BodyPictures
from .selectors import (
    disclaimer_default_version,
    disclaimer_latest_version,
    image_list_named_in,
)

LIVE_STATUSES = (ArticleStatus.PUBLISHED, ArticleStatus.SCHEDULED)


def _invalidate_on_commit() -> None:
    transaction.on_commit(content_generation_bump)


def article_render_body(*, article: Article) -> None:
    """Render the Markdown body to sanitised HTML on the instance (saved by the caller);
    pictures of the media library in it get their renditions and dimensions."""
    article.body_html = render_markdown(
        article.body_markdown, pictures=BodyPictures.for_texts(article.body_markdown)
    )


def article_translation_render_body(*, translation: ArticleTranslation) -> None:
    """The same for a translation's text."""
    translation.body_html = render_markdown(
        translation.body_markdown, pictures=BodyPictures.for_texts(translation.body_markdown)
    )


def article_body_images_sync(*, article: Article) -> None:
    """Record the library pictures the article's texts (original and translations) name as
    in use by it, and only those: the library shows where a picture is used, and the
    database refuses to delete one that is."""
    texts = [article.body_markdown]
    texts += ArticleTranslation.objects.filter(article=article).values_list(
        "body_markdown", flat=True
    )
    wanted = {image.pk for image in image_list_named_in(texts=texts)}
    ArticleImage.objects.filter(article=article).exclude(image_id__in=wanted).delete()
    ArticleImage.objects.bulk_create(
        [ArticleImage(article=article, image_id=pk) for pk in sorted(wanted)],
        ignore_conflicts=True,
    )


def article_apply_publishing_defaults(*, article: Article, now: datetime | None = None) -> None:
    """A live article gets a live time, the status matching it, and (for an opinion) a disclaimer.

    Raises ValidationError(code="disclaimer_missing") when an opinion would go live without one.
    """
    if article.status not in LIVE_STATUSES:
        return
    now = now or timezone.now()
    if article.published_at is None:
        # Whole seconds: the admin's form shows and posts no more, so a preview of an
        # unchanged article is the page readers get, to the byte.
        article.published_at = now.replace(microsecond=0)
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


# What readers see of an article: a change to any of these after go-live is a correction.
READER_FIELDS = ("title", "lead", "body_markdown")


def _reason_required(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Bitte geben Sie eine Begründung an."), code="reason_missing")
    return reason


def article_status_check(*, before: Article, status: str) -> None:
    """A form may publish, schedule or keep; it never quietly takes a live article down."""
    if status == ArticleStatus.WITHDRAWN and before.status != ArticleStatus.WITHDRAWN:
        raise ValidationError(
            _("Zurückziehen geht nur über „Zurückziehen“, mit Begründung."),
            code="withdraw_needs_reason",
        )
    if status == ArticleStatus.DRAFT and before.has_gone_live():
        raise ValidationError(
            _(
                "Ein Artikel, der schon online war, wird nicht wieder zum Entwurf. "
                "Ziehen Sie ihn zurück, wenn er nicht mehr erscheinen soll."
            ),
            code="live_back_to_draft",
        )


@transaction.atomic
def article_save(
    *,
    article: Article,
    authors: Iterable[Author] | None = None,
    topics: Iterable[Topic] | None = None,
    actor: AbstractBaseUser | None = None,
    comment: str = "",
    corrected_at: datetime | None = None,
) -> Article:
    """Validate and store an article with its body rendered once; readers see it at once.

    Every save keeps a revision (who, when, the whole state). A change readers can see to an
    article that is live, scheduled or not, is a correction: dated on the page (at
    `corrected_at`, by default now) and logged."""
    now = timezone.now()
    before = (
        Article.objects.select_for_update().filter(pk=article.pk).first() if article.pk else None
    )
    if before is not None:
        article_status_check(before=before, status=article.status)
    article_apply_publishing_defaults(article=article, now=now)
    changed = [
        name
        for name in READER_FIELDS
        if before is not None and getattr(before, name) != getattr(article, name)
    ]
    corrected = bool(changed) and before is not None and before.is_live(now=now)
    if corrected:
        article.corrected_at = corrected_at or now
    article_render_body(article=article)
    article.full_clean()
    with reversion.create_revision():
        article.save()
        if authors is not None:
            article.authors.set(authors)
        if topics is not None:
            article.topics.set(topics)
        reversion.add_to_revision(article)
        if actor is not None:
            reversion.set_user(actor)
        reversion.set_comment(comment or (_("Korrektur") if corrected else _("Gespeichert")))
    article_body_images_sync(article=article)
    if corrected:
        ArticleEvent.objects.create(
            article=article,
            article_ref=article.pk,
            kind=ArticleEventKind.CORRECTED,
            at=article.corrected_at,
            acting_user=actor,
            data={
                "title": article.title,
                "fields": changed,
                "old": {name: getattr(before, name) for name in changed},
                "new": {name: getattr(article, name) for name in changed},
            },
        )
    _invalidate_on_commit()
    return article


@transaction.atomic
def article_translation_save(*, translation: ArticleTranslation) -> ArticleTranslation:
    """Validate and store a translation with its body rendered once; readers see it at once."""
    article_translation_render_body(translation=translation)
    translation.full_clean()
    translation.save()
    article_body_images_sync(article=translation.article)
    _invalidate_on_commit()
    return translation


@transaction.atomic
def article_translation_delete(*, translation: ArticleTranslation) -> None:
    """Remove a translation; its pages show the original again at once."""
    article = translation.article
    translation.delete()
    article_body_images_sync(article=article)
    _invalidate_on_commit()


@transaction.atomic
def article_autosave(
    *,
    article: Article,
    actor: AbstractBaseUser | None = None,
    authors: Iterable[Author] | None = None,
    topics: Iterable[Topic] | None = None,
) -> bool:
    """Keep what an editor typed without publishing it; returns whether the article was written.

    A new article or a draft is saved as a draft (whatever status the form shows). Anything
    that is or was out keeps its live state: the typed text becomes a revision only, to be
    previewed, compared and applied later."""
    before = (
        Article.objects.select_for_update().filter(pk=article.pk).first() if article.pk else None
    )
    comment = _("Automatisch gesichert")
    if before is None or before.status == ArticleStatus.DRAFT:
        article.status = ArticleStatus.DRAFT
        article.published_at = before.published_at if before else None
        article_save(article=article, authors=authors, topics=topics, actor=actor, comment=comment)
        return True
    article_render_body(article=article)
    with reversion.create_revision(manage_manually=True):
        reversion.add_to_revision(article)
        if actor is not None:
            reversion.set_user(actor)
        reversion.set_comment(_("Automatisch gesichert, nicht veröffentlicht"))
        reversion.add_meta(UnpublishedRevision, article=article)
    return False


# What restoring a revision brings back: the words and their settings, not the live state.
RESTORED_FIELDS = (
    "title",
    "slug",
    "kind",
    "lead",
    "body_markdown",
    "meta_description",
    "disclaimer_version",
)


@transaction.atomic
def article_restore(
    *, article: Article, fields: dict, label: str, actor: AbstractBaseUser | None = None
) -> Article:
    """Bring back an earlier revision's words (`fields` as the revision stored them) under the
    current live state; on a live article that is a correction like any other."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    for name in RESTORED_FIELDS:
        attname = Article._meta.get_field(name).attname  # how revisions key their fields
        if attname in fields:
            setattr(article, attname, fields[attname])
    article_save(
        article=article,
        authors=Author.objects.filter(pk__in=fields.get("authors") or []),
        topics=Topic.objects.filter(pk__in=fields.get("topics") or []),
        actor=actor,
        comment=_("Fassung vom %(label)s wiederhergestellt") % {"label": label},
    )
    ArticleEvent.objects.create(
        article=article,
        article_ref=article.pk,
        kind=ArticleEventKind.RESTORED,
        acting_user=actor,
        data={"title": article.title, "restored": label},
    )
    return article


@transaction.atomic
def article_delete(*, article: Article, actor: AbstractBaseUser | None = None) -> None:
    """Delete an article nobody has read yet. One that went live is withdrawn instead, so
    archives and digests that named it keep their content."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    if article.has_gone_live():
        raise ValidationError(
            _(
                "„%(title)s“ war schon online und kann nicht gelöscht werden; "
                "ziehen Sie ihn stattdessen zurück."
            )
            % {"title": article.title},
            code="gone_live",
        )
    article.delete()
    _invalidate_on_commit()


@transaction.atomic
def article_purge(*, article: Article, actor: AbstractBaseUser, reason: str) -> ArticleEvent:
    """Remove an article for legal reasons, with its revisions: superusers only, with a reason.

    What stays is the record that it was purged (id, who, when, why), not its words: earlier
    log entries of the article lose their copies of the text too."""
    reason = _reason_required(reason)
    if not actor.is_superuser:
        raise ValidationError(
            _("Nur Administratoren dürfen Artikel endgültig entfernen."), code="not_allowed"
        )
    article = Article.objects.select_for_update().get(pk=article.pk)
    ArticleEvent.objects.filter(article_ref=article.pk).update(data={})
    event = ArticleEvent.objects.create(
        article=None,
        article_ref=article.pk,
        kind=ArticleEventKind.PURGED,
        acting_user=actor,
        reason=reason,
        data={"published_at": article.published_at.isoformat() if article.published_at else None},
    )
    Version.objects.get_for_object(article).delete()
    Revision.objects.filter(version__isnull=True).delete()
    article.delete()
    _invalidate_on_commit()
    return event


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
    *,
    article: Article,
    at: datetime | None = None,
    now: datetime | None = None,
    actor: AbstractBaseUser | None = None,
) -> Article:
    """Publish now, or schedule for `at` (live from that minute); opinions need a disclaimer."""
    now = now or timezone.now()
    article = Article.objects.select_for_update().get(pk=article.pk)
    go_live = at.replace(second=0, microsecond=0) if at else now.replace(microsecond=0)
    if article.status == ArticleStatus.PUBLISHED and at is None:
        return article
    article.status = ArticleStatus.SCHEDULED if go_live > now else ArticleStatus.PUBLISHED
    article.published_at = go_live
    article_apply_publishing_defaults(article=article, now=now)
    with reversion.create_revision():
        article.save(update_fields=["status", "published_at", "disclaimer_version", "modified_at"])
        reversion.add_to_revision(article)
        if actor is not None:
            reversion.set_user(actor)
        reversion.set_comment(
            _("Veröffentlicht") if article.status == ArticleStatus.PUBLISHED else _("Geplant")
        )
    _invalidate_on_commit()
    return article


@transaction.atomic
def article_withdraw(
    *, article: Article, reason: str, actor: AbstractBaseUser | None = None
) -> Article:
    """Take an article off the site with a logged reason (it keeps its history, disclaimer
    version and place in past digests)."""
    reason = _reason_required(reason)
    article = Article.objects.select_for_update().get(pk=article.pk)
    if article.status == ArticleStatus.WITHDRAWN:
        return article
    was = article.status
    article.status = ArticleStatus.WITHDRAWN
    article.withdrawn_at = timezone.now()
    with reversion.create_revision():
        article.save(update_fields=["status", "withdrawn_at", "modified_at"])
        reversion.add_to_revision(article)
        if actor is not None:
            reversion.set_user(actor)
        reversion.set_comment(_("Zurückgezogen: %(reason)s") % {"reason": reason})
    ArticleEvent.objects.create(
        article=article,
        article_ref=article.pk,
        kind=ArticleEventKind.WITHDRAWN,
        at=article.withdrawn_at,
        acting_user=actor,
        reason=reason,
        data={"title": article.title, "old": {"status": was}, "new": {"status": article.status}},
    )
    _invalidate_on_commit()
    return article


@transaction.atomic
def article_correct(
    *,
    article: Article,
    title: str | None = None,
    lead: str | None = None,
    body_markdown: str | None = None,
    actor: AbstractBaseUser | None = None,
    now: datetime | None = None,
) -> Article:
    """Correct a published article; the page then says when ("aktualisiert am …")."""
    article = Article.objects.select_for_update().get(pk=article.pk)
    if not article.is_live():
        raise ValidationError(
            _("Nur veröffentlichte Artikel können korrigiert werden."), code="not_published"
        )
    if title is not None:
        article.title = title
    if lead is not None:
        article.lead = lead
    if body_markdown is not None:
        article.body_markdown = body_markdown
    return article_save(article=article, actor=actor, corrected_at=now)


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
    stem = image_stem_new(now=now)
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


@transaction.atomic
def image_update(*, image: Image) -> Image:
    """Store changed alt text, caption or credit; pages showing the picture are refreshed,
    texts showing it rendered anew (where their Markdown gives no alt text of its own, the
    library's is in the stored HTML). A re-rendering changes no words: no revision."""
    image.full_clean()
    image.save()
    for article in Article.objects.filter(body_images__image=image).select_for_update():
        article_render_body(article=article)
        article.save(update_fields=["body_html"])
        for translation in article.translations.all():
            article_translation_render_body(translation=translation)
            translation.save(update_fields=["body_html"])
    _invalidate_on_commit()
    return image


@transaction.atomic
def image_delete(*, image: Image) -> None:
    """Delete a picture nothing shows, and its files once that is committed; one that an
    article shows (as feature image or in its text) is refused by the database (PROTECT)."""
    names = image.file_names
    image.delete()

    def remove_files() -> None:
        for name in names:
            default_storage.delete(name)

    transaction.on_commit(remove_files)
