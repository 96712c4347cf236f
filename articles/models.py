import re
import secrets
from datetime import datetime

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The language articles are written in; translations exist beside the original.
ORIGINAL_LANGUAGE = "de"
TRANSLATION_LANGUAGES = [("en", "English")]


class Topic(models.Model):
    name = models.CharField(_("Name"), max_length=100, unique=True)
    slug = models.SlugField(_("Kurzname"), max_length=100, unique=True)
    description = models.TextField(_("Beschreibung"), blank=True)
    name_en = models.CharField(_("Name (Englisch)"), max_length=100, blank=True)
    description_en = models.TextField(_("Beschreibung (Englisch)"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("Thema")
        verbose_name_plural = _("Themen")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("articles:topic", kwargs={"slug": self.slug})

    def name_for(self, language: str) -> str:
        """The name in a language, the German one where no translation exists."""
        return (self.name_en or self.name) if (language or "").startswith("en") else self.name

    def description_for(self, language: str) -> str:
        if (language or "").startswith("en"):
            return self.description_en or self.description
        return self.description

    def name_language(self, language: str) -> str:
        """The language `name_for` answers in: German where no translation exists, so pages
        can mark it (lang="de") inside an English page."""
        return "en" if (language or "").startswith("en") and self.name_en else "de"

    def description_language(self, language: str) -> str:
        return "en" if (language or "").startswith("en") and self.description_en else "de"


class Author(models.Model):
    name = models.CharField(_("Name"), max_length=120)
    slug = models.SlugField(_("Kurzname"), max_length=120, unique=True)
    bio = models.TextField(_("Kurzbiografie"), blank=True)
    bio_en = models.TextField(_("Kurzbiografie (Englisch)"), blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("Autor")
        verbose_name_plural = _("Autoren")

    def __str__(self) -> str:
        return self.name


class ArticleKind(models.TextChoices):
    OPINION = "opinion", _("Meinung")
    NEWS = "news", _("Nachricht")
    ANALYSIS = "analysis", _("Analyse")


class Disclaimer(models.Model):
    """A managed disclaimer; its wording lives in immutable versions."""

    name = models.CharField(_("Name"), max_length=120, unique=True)
    default_for_kind = models.CharField(
        _("Standard für Artikelart"),
        max_length=20,
        choices=ArticleKind.choices,
        blank=True,
        help_text=_("Neue Artikel dieser Art erhalten diesen Hinweis automatisch."),
    )

    class Meta:
        verbose_name = _("Hinweis")
        verbose_name_plural = _("Hinweise")
        constraints = [
            models.UniqueConstraint(
                fields=["default_for_kind"],
                condition=~Q(default_for_kind=""),
                name="disclaimer_one_default_per_kind",
            )
        ]

    def __str__(self) -> str:
        return self.name


class DisclaimerVersion(models.Model):
    """One wording of a disclaimer. Never edited: a change is a new version."""

    disclaimer = models.ForeignKey(Disclaimer, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField(_("Version"))
    text_de = models.TextField(_("Text (Deutsch)"))
    text_en = models.TextField(_("Text (Englisch)"), blank=True)
    created_at = models.DateTimeField(_("erstellt am"), auto_now_add=True)

    class Meta:
        ordering = ["disclaimer", "-version"]
        verbose_name = _("Hinweis-Version")
        verbose_name_plural = _("Hinweis-Versionen")
        constraints = [
            models.UniqueConstraint(
                fields=["disclaimer", "version"], name="disclaimer_version_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.disclaimer} v{self.version}"

    def text_for(self, language: str) -> str:
        if language.startswith("en") and self.text_en:
            return self.text_en
        return self.text_de


# Every file of a library picture is named "<stem>.jpg" or "<stem>-<width>.<ext>", the stem
# holding a random token: a URL that names any of its files, on any host, names the picture.
IMAGE_STEM = re.compile(r"images/\d{4}/\d{2}/[0-9a-f]{16}")


def image_stem_new(*, now: datetime) -> str:
    return f"images/{now:%Y/%m}/{secrets.token_hex(8)}"


class Image(models.Model):
    """A picture of the media library: only re-encoded files, never the uploaded bytes.

    `file` is the re-encoded master; `renditions` lists the smaller copies made at upload
    (width, height, JPEG and WebP storage names and sizes), so a page builds its `srcset`
    from this row without asking the storage anything.
    """

    file = models.CharField(_("Datei"), max_length=255, editable=False)
    alt_text = models.CharField(
        _("Alternativtext"),
        max_length=300,
        help_text=_("Beschreibt das Bild für Menschen, die es nicht sehen."),
    )
    caption = models.CharField(_("Bildunterschrift"), max_length=500, blank=True)
    credit = models.CharField(_("Bildnachweis"), max_length=200, blank=True)
    width = models.PositiveIntegerField(_("Breite"), editable=False)
    height = models.PositiveIntegerField(_("Höhe"), editable=False)
    renditions = models.JSONField(_("Größen"), default=list, editable=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("hochgeladen von"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    created_at = models.DateTimeField(_("hochgeladen am"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("Bild")
        verbose_name_plural = _("Bilder")
        constraints = [
            models.CheckConstraint(
                condition=~Q(alt_text=""),
                name="image_alt_text_required",
                violation_error_code="alt_missing",
                violation_error_message=_("Ein Bild braucht einen Alternativtext."),
            ),
            models.CheckConstraint(
                condition=Q(width__gt=0, height__gt=0), name="image_has_dimensions"
            ),
        ]

    def __str__(self) -> str:
        return self.alt_text[:80]

    @property
    def url(self) -> str:
        return default_storage.url(self.file)

    @property
    def file_names(self) -> list[str]:
        """The storage names of the master and of every rendition."""
        names = [self.file]
        for item in self.renditions:
            names += [item["jpeg"], item["webp"]]
        return names

    def rendition(self, *, min_width: int) -> dict:
        """The smallest rendition at least `min_width` wide, else the largest there is."""
        for item in self.renditions:
            if item["width"] >= min_width:
                return item
        return self.renditions[-1]


class ArticleStatus(models.TextChoices):
    DRAFT = "draft", _("Entwurf")
    SCHEDULED = "scheduled", _("Geplant")
    PUBLISHED = "published", _("Veröffentlicht")
    WITHDRAWN = "withdrawn", _("Zurückgezogen")


class Article(models.Model):
    title = models.CharField(_("Titel"), max_length=200)
    slug = models.SlugField(_("Kurzname"), max_length=200, unique=True)
    kind = models.CharField(
        _("Art"), max_length=20, choices=ArticleKind.choices, default=ArticleKind.OPINION
    )
    lead = models.TextField(_("Vorspann"), max_length=1000, blank=True)
    body_markdown = models.TextField(_("Text (Markdown)"), max_length=200_000)
    body_html = models.TextField(_("Text (HTML, bereinigt)"), editable=False, blank=True)
    authors = models.ManyToManyField(Author, verbose_name=_("Autoren"), blank=True)
    topics = models.ManyToManyField(
        Topic, verbose_name=_("Themen"), blank=True, related_name="articles"
    )
    status = models.CharField(
        _("Status"), max_length=20, choices=ArticleStatus.choices, default=ArticleStatus.DRAFT
    )
    published_at = models.DateTimeField(
        _("online ab"),
        null=True,
        blank=True,
        db_index=True,
        help_text=_("Zeitpunkt, zu dem der Artikel online geht oder ging."),
    )
    corrected_at = models.DateTimeField(_("aktualisiert am"), null=True, blank=True)
    feature_image = models.ForeignKey(
        Image,
        verbose_name=_("Titelbild"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="featured_in",
        help_text=_(
            "Erscheint über dem Text, in Vorschauen sozialer Netzwerke, in Feeds und im "
            "Newsletter; Alternativtext, Bildunterschrift und Nachweis kommen aus der Mediathek."
        ),
    )
    withdrawn_at = models.DateTimeField(_("zurückgezogen am"), null=True, blank=True)
    meta_description = models.CharField(_("Meta-Beschreibung"), max_length=300, blank=True)
    disclaimer_version = models.ForeignKey(
        DisclaimerVersion,
        verbose_name=_("Hinweis"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="articles",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-published_at", "-id"]
        verbose_name = _("Artikel")
        verbose_name_plural = _("Artikel")
        indexes = [models.Index(fields=["status", "-published_at"], name="article_live_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~Q(
                    kind=ArticleKind.OPINION,
                    status__in=[ArticleStatus.SCHEDULED, ArticleStatus.PUBLISHED],
                    disclaimer_version__isnull=True,
                ),
                name="opinion_live_needs_disclaimer",
                violation_error_code="disclaimer_missing",
                violation_error_message=_(
                    "Ein Meinungsartikel kann nur mit Hinweis veröffentlicht werden."
                ),
            ),
            models.CheckConstraint(
                condition=~Q(
                    status__in=[ArticleStatus.SCHEDULED, ArticleStatus.PUBLISHED],
                    published_at__isnull=True,
                ),
                name="live_article_has_live_time",
                violation_error_code="live_time_missing",
                violation_error_message=_(
                    "Geplante und veröffentlichte Artikel brauchen ein Datum."
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("articles:detail", kwargs={"slug": self.slug})

    @property
    def display_time(self):
        """The time the byline shows: the correction if there was one, else going live."""
        return self.corrected_at or self.published_at

    def has_gone_live(self, *, now=None) -> bool:
        """Readers saw it (and a digest may have mailed it): it went live before now or before
        it was withdrawn. Such an article is withdrawn, never deleted, by editors."""
        if self.published_at is None or self.status == ArticleStatus.DRAFT:
            return False
        until = self.withdrawn_at if self.status == ArticleStatus.WITHDRAWN else None
        return self.published_at <= (until or now or timezone.now())

    def is_live(self, *, now=None) -> bool:
        """What readers see right now: published, or scheduled with its minute reached."""
        return (
            self.status in (ArticleStatus.PUBLISHED, ArticleStatus.SCHEDULED)
            and self.published_at is not None
            and self.published_at <= (now or timezone.now())
        )


def _through_str(self) -> str:
    return f"{self.article} – {getattr(self, 'author', None) or getattr(self, 'topic', '')}"


# The automatic link tables of authors and topics have no __str__ of their own, so the admin's
# delete confirmation listed them as "Article_authors object (8)".
for _through, _name, _plural in (
    (Article.authors.through, _("Autorenzuordnung"), _("Autorenzuordnungen")),
    (Article.topics.through, _("Themenzuordnung"), _("Themenzuordnungen")),
):
    _through.__str__ = _through_str
    _through._meta.verbose_name = _name
    _through._meta.verbose_name_plural = _plural


class ArticleImage(models.Model):
    """A library picture that an article's text (the original or a translation) shows.

    Kept in step with the texts at every save (services.article_body_images_sync), so the
    library can say where a picture is used, and the database refuses to delete one in use."""

    article = models.ForeignKey(
        Article, verbose_name=_("Artikel"), on_delete=models.CASCADE, related_name="body_images"
    )
    image = models.ForeignKey(
        Image, verbose_name=_("Bild"), on_delete=models.PROTECT, related_name="body_uses"
    )

    class Meta:
        verbose_name = _("Bild im Text")
        verbose_name_plural = _("Bilder im Text")
        constraints = [
            models.UniqueConstraint(fields=["article", "image"], name="article_image_once")
        ]

    def __str__(self) -> str:
        return f"{self.image} – {self.article}"


class ArticleEventKind(models.TextChoices):
    WITHDRAWN = "withdrawn", _("zurückgezogen")
    PURGED = "purged", _("endgültig entfernt")
    CORRECTED = "corrected", _("korrigiert")
    RESTORED = "restored", _("Version wiederhergestellt")


class ArticleEvent(models.Model):
    """Append-only log of what happened to an article after it went out, and who did it.

    `article_ref` keeps the article's id when the article itself is purged, so the purge (and
    its reason) stays on record; the title is kept only where the article still exists."""

    article = models.ForeignKey(
        Article,
        verbose_name=_("Artikel"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
    )
    article_ref = models.PositiveIntegerField(_("Artikel-Nr."), db_index=True)
    kind = models.CharField(_("Ereignis"), max_length=20, choices=ArticleEventKind.choices)
    at = models.DateTimeField(_("Zeitpunkt"), default=timezone.now)
    acting_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("von"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.TextField(_("Begründung"), blank=True)
    data = models.JSONField(_("Änderung"), default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("Artikel-Ereignis")
        verbose_name_plural = _("Artikel-Ereignisse")
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind__in=["withdrawn", "purged"], reason=""),
                name="article_event_reason_required",
                violation_error_code="reason_missing",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.data.get('title') or self.article_ref}"


class UnpublishedRevision(models.Model):
    """Marks a revision of a live article that holds autosaved, never published text: it is
    kept for the editor, but it is not a state readers saw, so diffs skip it."""

    revision = models.OneToOneField(
        "reversion.Revision", on_delete=models.CASCADE, related_name="unpublished"
    )
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("Unveröffentlichte Fassung")
        verbose_name_plural = _("Unveröffentlichte Fassungen")

    def __str__(self) -> str:
        return f"{self.article} ({self.revision.date_created:%Y-%m-%d %H:%M})"


class ArticleTranslation(models.Model):
    """An article's words in another language, maintained beside the German original; the
    article's status, dates, authors and topics are the original's."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="translations")
    language = models.CharField(_("Sprache"), max_length=8, choices=TRANSLATION_LANGUAGES)
    title = models.CharField(_("Titel"), max_length=200)
    slug = models.SlugField(_("Kurzname"), max_length=200)
    lead = models.TextField(_("Vorspann"), max_length=1000, blank=True)
    body_markdown = models.TextField(_("Text (Markdown)"), max_length=200_000)
    body_html = models.TextField(_("Text (HTML, bereinigt)"), editable=False, blank=True)
    meta_description = models.CharField(_("Meta-Beschreibung"), max_length=300, blank=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["article", "language"]
        verbose_name = _("Übersetzung")
        verbose_name_plural = _("Übersetzungen")
        constraints = [
            models.UniqueConstraint(
                fields=["article", "language"],
                name="article_translation_one_per_language",
                violation_error_message=_(
                    "Dieser Artikel hat schon eine Übersetzung in dieser Sprache."
                ),
            ),
            models.UniqueConstraint(
                fields=["language", "slug"],
                name="article_translation_slug_unique",
                violation_error_message=_("Diesen Kurznamen hat schon eine andere Übersetzung."),
            ),
            models.CheckConstraint(
                condition=~Q(language=ORIGINAL_LANGUAGE),
                name="article_translation_not_original_language",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.article} ({self.language})"
