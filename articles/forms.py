"""The article form the admin edits with, also read by the previews of unsaved changes."""

from django import forms
from django.contrib.admin.widgets import AdminSplitDateTime
from django.core.exceptions import ValidationError
from django.urls import reverse_lazy
from django.utils.translation import gettext_lazy as _

from .image_admin import UPLOAD_URL_NAME
from .models import Article, ArticleStatus
from .services import article_apply_publishing_defaults, article_status_check


class ArticleForm(forms.ModelForm):
    # Declared here rather than left to the admin, so the previews outside the admin read the
    # same two inputs (date, time) the admin's form posts.
    published_at = forms.SplitDateTimeField(
        label=Article._meta.get_field("published_at").verbose_name,
        help_text=Article._meta.get_field("published_at").help_text,
        required=False,
        widget=AdminSplitDateTime,
    )

    class Meta:
        model = Article
        fields = [
            "title",
            "slug",
            "kind",
            "lead",
            "body_markdown",
            "authors",
            "topics",
            "status",
            "published_at",
            "disclaimer_version",
            "meta_description",
            "feature_image",
        ]
        widgets = {
            # The editor (static/articles/editor.js) hooks onto this marker; the images'
            # upload script looks for data-image-upload-url on the same textarea.
            # static/articles/image_upload.js makes the same textarea a drop and paste target
            # with an upload button; it inserts the Markdown at the cursor.
            "body_markdown": forms.Textarea(
                attrs={
                    "rows": 24,
                    "class": "markdown-editor",
                    "data-markdown-editor": "1",
                    "data-image-upload-url": reverse_lazy(f"admin:{UPLOAD_URL_NAME}"),
                    "data-image-upload-label": _("Bild hochladen"),
                    "data-image-upload-alt-label": _("Alternativtext des Bildes (Pflicht)"),
                    "data-image-upload-busy": _("Bild wird hochgeladen …"),
                    "data-image-upload-done": _("Bild eingefügt."),
                    "data-image-upload-failed": _("Hochladen fehlgeschlagen:"),
                    "data-image-upload-hint": _(
                        "Bilder hier hineinziehen, einfügen oder über die Schaltfläche wählen."
                    ),
                }
            ),
            "lead": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        status = self.fields.get("status")
        if status is None:
            return
        # Withdrawing needs a reason (its own page); the select offers it only to show it.
        if self.instance.status != ArticleStatus.WITHDRAWN:
            status.choices = [c for c in status.choices if c[0] != ArticleStatus.WITHDRAWN]
        # A scheduled article whose minute has come is published, whatever the row says yet.
        if self.instance.pk and self.instance.is_live() and not self.is_bound:
            self.initial["status"] = ArticleStatus.PUBLISHED

    def clean(self):
        """Fill in what publishing implies (live time, default disclaimer) or say what's missing.

        Runs before the model's constraints are checked, so an opinion going live without a
        disclaimer is a form error in plain words, never a database error.
        """
        cleaned = super().clean()
        if self.instance.pk and cleaned.get("status"):
            try:
                article_status_check(before=self.instance, status=cleaned["status"])
            except ValidationError as error:
                self.add_error("status", error)
                return cleaned
        probe = Article(
            kind=cleaned.get("kind") or "",
            status=cleaned.get("status") or ArticleStatus.DRAFT,
            published_at=cleaned.get("published_at"),
            disclaimer_version=cleaned.get("disclaimer_version"),
        )
        try:
            article_apply_publishing_defaults(article=probe)
        except ValidationError as error:
            self.add_error("disclaimer_version", error)
            return cleaned
        if cleaned.get("status"):
            cleaned["status"] = probe.status
        cleaned["published_at"] = probe.published_at
        cleaned["disclaimer_version"] = probe.disclaimer_version
        return cleaned


class ReasonForm(forms.Form):
    """Why an article is withdrawn or purged: required, kept in the article's log."""

    reason = forms.CharField(
        label=_("Begründung"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        error_messages={"required": _("Bitte geben Sie eine Begründung an.")},
    )
    confirm = forms.BooleanField(
        label=_("Ja, ich bin sicher."),
        error_messages={"required": _("Bitte bestätigen Sie.")},
    )
