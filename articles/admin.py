"""The editors' admin: every save and action goes through articles.services."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse, reverse_lazy
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from .image_admin import UPLOAD_URL_NAME, ImageAdmin
from .models import (
    Article,
    ArticleStatus,
    ArticleTranslation,
    Author,
    Disclaimer,
    DisclaimerVersion,
    Topic,
)
from .selectors import disclaimer_latest_version
from .services import (
    article_apply_publishing_defaults,
    article_publish,
    article_save,
    article_translation_delete,
    article_translation_save,
    article_withdraw,
    author_save,
    disclaimer_save,
    topic_save,
)

__all__ = ["ArticleAdmin", "ImageAdmin"]


class ArticleTranslationInline(admin.StackedInline):
    """The English text beside the German original, edited on the article's page."""

    model = ArticleTranslation
    extra = 0
    fields = ["language", "title", "slug", "lead", "body_markdown", "meta_description"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(Topic)
class TopicAdmin(admin.ModelAdmin):
    list_display = ["name", "name_en", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request, obj, form, change):
        topic_save(topic=obj)


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}

    def save_model(self, request, obj, form, change):
        author_save(author=obj)


class ArticleAdminForm(forms.ModelForm):
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
        # static/articles/image_upload.js turns any textarea with an upload URL into a drop
        # and paste target with an upload button; it inserts the Markdown at the cursor.
        widgets = {
            "body_markdown": forms.Textarea(
                attrs={
                    "rows": 20,
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
            )
        }

    def clean(self):
        """Fill in what publishing implies (live time, default disclaimer) or say what's missing.

        Runs before the model's constraints are checked, so an opinion going live without a
        disclaimer is a form error in plain words, never a database error.
        """
        cleaned = super().clean()
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


@admin.register(Article)
class ArticleAdmin(admin.ModelAdmin):
    form = ArticleAdminForm
    inlines = [ArticleTranslationInline]
    list_display = [
        "title",
        "status",
        "kind",
        "topic_names",
        "author_names",
        "published_at",
        "corrected_at",
        "preview_link",
    ]
    list_filter = ["status", "kind", "topics", "authors"]
    search_fields = ["title", "slug", "lead", "body_markdown"]
    date_hierarchy = "published_at"
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["authors", "topics", "disclaimer_version", "feature_image"]
    readonly_fields = ["preview_link", "corrected_at", "created_at", "modified_at"]
    list_select_related = ["disclaimer_version"]
    actions = ["publish_now", "withdraw"]
    save_on_top = True

    class Media:
        js = ["articles/image_upload.js"]
        css = {"all": ["articles/image_upload.css"]}

    fieldsets = [
        (None, {"fields": ["title", "slug", "kind", "lead", "body_markdown"]}),
        (
            _("Titelbild"),
            {
                "fields": ["feature_image"],
                "description": _(
                    "Aus der Mediathek wählen oder mit „+“ neu hochladen; Alternativtext, "
                    "Bildunterschrift und Nachweis werden dort gepflegt."
                ),
            },
        ),
        (_("Zuordnung"), {"fields": ["authors", "topics"]}),
        (
            _("Veröffentlichung"),
            {
                "fields": ["status", "published_at", "disclaimer_version", "preview_link"],
                "description": _(
                    "„Geplant“ mit einem Zeitpunkt in der Zukunft: der Artikel erscheint in "
                    "dieser Minute von selbst. Meinungsartikel erhalten beim Veröffentlichen "
                    "den Standard-Hinweis, wenn keiner gewählt ist."
                ),
            },
        ),
        (_("Suchmaschinen"), {"fields": ["meta_description"], "classes": ["collapse"]}),
        (
            _("Verlauf"),
            {"fields": ["corrected_at", "created_at", "modified_at"], "classes": ["collapse"]},
        ),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Article]:
        # Two queries for the whole page instead of two per row.
        return super().get_queryset(request).prefetch_related("topics", "authors")

    @admin.display(description=_("Themen"))
    def topic_names(self, obj: Article) -> str:
        return ", ".join(topic.name for topic in obj.topics.all())

    @admin.display(description=_("Autoren"))
    def author_names(self, obj: Article) -> str:
        return ", ".join(author.name for author in obj.authors.all())

    @admin.display(description=_("Vorschau"))
    def preview_link(self, obj: Article) -> str:
        if not obj.pk:
            return "–"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">{}</a>',
            reverse("articles:preview", kwargs={"pk": obj.pk}),
            _("Vorschau öffnen"),
        )

    def save_model(self, request, obj, form, change):
        # Relations are saved by save_related; the service renders the body and invalidates.
        # Changing the words of an article that is already out is a correction readers see.
        was_published = change and form.initial.get("status") == ArticleStatus.PUBLISHED
        corrected = (
            was_published
            and obj.status == ArticleStatus.PUBLISHED
            and any(name in form.changed_data for name in ("title", "lead", "body_markdown"))
        )
        article_save(article=obj, mark_corrected=corrected)

    def save_formset(self, request, form, formset, change):
        if formset.model is not ArticleTranslation:
            return super().save_formset(request, form, formset, change)
        # Translations are stored through their service (body rendered, pages refreshed).
        for translation in formset.save(commit=False):
            article_translation_save(translation=translation)
        for translation in formset.deleted_objects:
            article_translation_delete(translation=translation)
        return None

    @admin.action(description=_("Jetzt veröffentlichen"), permissions=["change"])
    def publish_now(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        done, failed = 0, []
        for article in queryset:
            try:
                article_publish(article=article)
                done += 1
            except ValidationError as error:
                failed.append(f"{article.title}: {' '.join(error.messages)}")
        self.message_user(
            request,
            ngettext(
                "%(count)d Artikel veröffentlicht.",
                "%(count)d Artikel veröffentlicht.",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )
        if failed:
            self.message_user(
                request,
                format_html(
                    "{}<ul>{}</ul>",
                    _("Nicht veröffentlicht:"),
                    format_html_join("", "<li>{}</li>", ((item,) for item in failed)),
                ),
                messages.ERROR,
            )

    @admin.action(description=_("Zurückziehen"), permissions=["change"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Article]) -> None:
        count = 0
        for article in queryset:
            article_withdraw(article=article)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d Artikel zurückgezogen.", "%(count)d Artikel zurückgezogen.", count)
            % {"count": count},
            messages.SUCCESS,
        )


class DisclaimerVersionInline(admin.TabularInline):
    model = DisclaimerVersion
    extra = 0
    fields = ["version", "text_de", "text_en", "created_at"]
    readonly_fields = fields
    can_delete = False
    ordering = ["-version"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class DisclaimerAdminForm(forms.ModelForm):
    text_de = forms.CharField(label=_("Text (Deutsch)"), widget=forms.Textarea)
    text_en = forms.CharField(label=_("Text (Englisch)"), widget=forms.Textarea, required=False)

    class Meta:
        model = Disclaimer
        fields = ["name", "default_for_kind"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        latest = disclaimer_latest_version(disclaimer=self.instance) if self.instance.pk else None
        if latest is not None:
            self.fields["text_de"].initial = latest.text_de
            self.fields["text_en"].initial = latest.text_en


@admin.register(Disclaimer)
class DisclaimerAdmin(admin.ModelAdmin):
    form = DisclaimerAdminForm
    list_display = ["name", "default_for_kind", "version_count"]
    search_fields = ["name"]
    inlines = [DisclaimerVersionInline]
    fieldsets = [
        (None, {"fields": ["name", "default_for_kind"]}),
        (
            _("Wortlaut"),
            {
                "fields": ["text_de", "text_en"],
                "description": _(
                    "Eine Änderung des Wortlauts legt eine neue Version an. Bereits "
                    "veröffentlichte Artikel behalten die Version, mit der sie erschienen sind."
                ),
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_version_count=Count("versions"))

    @admin.display(description=_("Versionen"), ordering="_version_count")
    def version_count(self, obj: Disclaimer) -> int:
        return obj._version_count

    def save_model(self, request, obj, form, change):
        disclaimer_save(
            disclaimer=obj,
            text_de=form.cleaned_data["text_de"],
            text_en=form.cleaned_data.get("text_en") or "",
        )


@admin.register(DisclaimerVersion)
class DisclaimerVersionAdmin(admin.ModelAdmin):
    """Versions are history: readable and selectable, never edited or deleted here."""

    list_display = ["disclaimer", "version", "created_at"]
    list_filter = ["disclaimer"]
    search_fields = ["disclaimer__name", "text_de"]
    readonly_fields = ["disclaimer", "version", "text_de", "text_en", "created_at"]
    list_select_related = ["disclaimer"]

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(
            request, queryset.select_related("disclaimer"), search_term
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
