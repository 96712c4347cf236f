"""Campaigns: one-off mailings (product news, offers, an announcement, one article) written in
Markdown, for one newsletter's confirmed subscribers or a segment of them.

A campaign holds only what is said and to whom. Once a manager confirms it, its sending is a
Digest row of kind "campaign" (docs/design.md, "Campaigns and digests share one pipeline"):
the same fan-out, batches, re-check, webhooks and reconcile as every digest.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .consent import Newsletter


class SegmentLanguage(models.TextChoices):
    ALL = "", _("alle Sprachen")
    DE = "de", _("Deutsch")
    EN = "en", _("Englisch")


class Campaign(models.Model):
    newsletter = models.ForeignKey(
        Newsletter, verbose_name=_("Newsletter"), on_delete=models.PROTECT, related_name="campaigns"
    )
    name = models.CharField(
        _("interner Name"), max_length=120, help_text=_("Nur in der Verwaltung sichtbar.")
    )
    subject = models.CharField(_("Betreff"), max_length=200)
    preheader = models.CharField(
        _("Vorschauzeile"),
        max_length=200,
        blank=True,
        help_text=_("Erscheint in vielen Postfächern neben dem Betreff."),
    )
    body_markdown = models.TextField(_("Text (Markdown)"), max_length=100_000, blank=True)
    # The English version, optional: readers whose mails are English get it where it exists,
    # and the German text (marked as German) where it does not (README, "Campaigns").
    subject_en = models.CharField(
        _("Betreff (Englisch)"),
        max_length=200,
        blank=True,
        help_text=_(
            "Leer lassen, um englischen Lesern die deutsche Fassung zu senden; "
            "die Auswahl „Deutsch“ unten schließt sie ganz aus."
        ),
    )
    preheader_en = models.CharField(_("Vorschauzeile (Englisch)"), max_length=200, blank=True)
    body_markdown_en = models.TextField(
        _("Text (Markdown, Englisch)"), max_length=100_000, blank=True
    )
    # "One article sent as a mail": quoted with its lead, link and disclaimer.
    article = models.ForeignKey(
        "articles.Article",
        verbose_name=_("Artikel"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Optional: ein veröffentlichter Artikel, mit seinem Hinweis zitiert."),
    )
    # The segment; empty fields narrow nothing.
    segment_language = models.CharField(
        _("Sprache der Leser"), max_length=2, choices=SegmentLanguage.choices, blank=True
    )
    segment_confirmed_from = models.DateField(
        _("bestätigt ab"), null=True, blank=True, help_text=_("Tag der Bestätigung, Europa/Berlin.")
    )
    segment_confirmed_until = models.DateField(
        _("bestätigt bis"), null=True, blank=True, help_text=_("einschließlich")
    )
    segment_topics = models.ManyToManyField(
        "articles.Topic",
        verbose_name=_("Themen der Leser"),
        blank=True,
        related_name="+",
        help_text=_("Nur Leser, die mindestens eines dieser Themen gewählt haben."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("angelegt von"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(_("angelegt am"), auto_now_add=True)
    modified_at = models.DateTimeField(_("geändert am"), auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("Kampagne")
        verbose_name_plural = _("Kampagnen")
        # Confirming sends mail to a whole audience: granted on its own, beyond change.
        permissions = [("send_campaign", _("Kann eine Kampagne versenden"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(segment_confirmed_from__isnull=True)
                | Q(segment_confirmed_until__isnull=True)
                | Q(segment_confirmed_from__lte=F("segment_confirmed_until")),
                name="campaign_segment_dates_ordered",
                violation_error_message=_("„bestätigt ab“ liegt nach „bestätigt bis“."),
                violation_error_code="segment_dates",
            ),
            models.CheckConstraint(
                condition=~Q(body_markdown="") | Q(article__isnull=False),
                name="campaign_has_content",
                violation_error_message=_("Eine Kampagne braucht einen Text oder einen Artikel."),
                violation_error_code="no_content",
            ),
            # An English version is whole or absent: an English subject over the German text
            # (or an English text under no English subject) would be half a translation.
            models.CheckConstraint(
                condition=(Q(subject_en="") & Q(preheader_en="") & Q(body_markdown_en=""))
                | (~Q(subject_en="") & (Q(body_markdown="") | ~Q(body_markdown_en=""))),
                name="campaign_english_version_whole",
                violation_error_message=_(
                    "Die englische Fassung braucht einen Betreff und, wenn die Kampagne einen "
                    "Text hat, auch den englischen Text."
                ),
                violation_error_code="english_incomplete",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_english(self) -> bool:
        return bool(self.subject_en)

    def text_language(self, language: str) -> str:
        """The language a reader of `language` reads this campaign in: English where the
        English version exists, else the German original."""
        return "en" if (language or "").startswith("en") and self.has_english else "de"

    def subject_for(self, language: str) -> str:
        return self.subject_en if self.text_language(language) == "en" else self.subject

    def preheader_for(self, language: str) -> str:
        return self.preheader_en if self.text_language(language) == "en" else self.preheader

    def body_markdown_for(self, language: str) -> str:
        return self.body_markdown_en if self.text_language(language) == "en" else self.body_markdown
