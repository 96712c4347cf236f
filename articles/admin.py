"""The editors' admin: every save and action goes through articles.services."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from reversion.admin import VersionAdmin

from .forms import ArticleForm, ReasonForm
from .image_admin import ImageAdmin
from .models import (
    Article,
    ArticleEvent,
    ArticleStatus,
    ArticleTranslation,
    Author,
    Disclaimer,
    DisclaimerVersion,
    Topic,
)
from .revisions import (
    version_diff,
    version_get,
    version_list_for_article,
    version_pending_for_article,
    version_previous,
)
from .selectors import disclaimer_latest_version
from .services import (
    article_autosave,
    article_delete,
    article_publish,
    article_purge,
    article_restore,
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


# What editor.js shows, in the editor's language (it reads them from the textarea).
EDITOR_LABELS = {
    "bold": _("Fett (Strg+B)"),
    "italic": _("Kursiv (Strg+I)"),
    "heading": _("Zwischenüberschrift (Strg+Alt+2)"),
    "link": _("Link (Strg+K)"),
    "quote": _("Zitat (Strg+Alt+Q)"),
    "list": _("Liste (Strg+Alt+L)"),
    "numbered": _("Nummerierte Liste (Strg+Alt+O)"),
    "code": _("Code (Strg+Alt+C)"),
    "link_text": _("Linktext"),
    "toolbar": _("Formatierung"),
    "preview": _("Vorschau"),
    "page_preview": _("Vorschau im Seitenlayout"),
    "page_preview_title": _(
        "Ungespeicherte Fassung im Seitenlayout öffnen (nichts wird veröffentlicht)"
    ),
    "words": _("%(words)s Wörter"),
    "minutes": _("ca. %(minutes)s Min. Lesezeit"),
    "no_minutes": _("keine Lesezeit"),
    "preview_unavailable": _("Vorschau nicht verfügbar"),
    "missing": _("Noch nicht gesichert: Titel und Text fehlen"),
    "not_saved": _("Nicht gesichert: %(errors)s"),
    "offline": _("Nicht gesichert: keine Verbindung"),
    "draft_saved": _("Entwurf gesichert %(at)s"),
    "changes_saved": _("Änderungen gesichert (nicht veröffentlicht) %(at)s"),
}


@admin.register(Article)
class ArticleAdmin(VersionAdmin):
    """Articles, their revisions (django-reversion) and their life after going live.

    An article that readers have seen is never deleted by editors: "delete" leads to
    "withdraw" (with a reason); a superuser can purge one for legal reasons, with a reason."""

    form = ArticleForm
    inlines = [ArticleTranslationInline]
    list_display = [
        "title",
        "live_status",
        "kind",
        "author_names",
        "live_since",
        "preview_link",
    ]
    list_display_links = ["title"]
    list_filter = ["status", "kind", "topics", "authors"]
    search_fields = ["title", "slug", "lead", "body_markdown"]
    date_hierarchy = "published_at"
    prepopulated_fields = {"slug": ["title"]}
    autocomplete_fields = ["authors", "topics", "disclaimer_version", "feature_image"]
    readonly_fields = ["preview_link", "corrected_at", "withdrawn_at", "created_at", "modified_at"]
    list_select_related = ["disclaimer_version"]
    actions = ["publish_now", "withdraw"]
    save_on_top = True
    history_latest_first = True
    object_history_template = "admin/articles/article/object_history.html"
    change_form_template = "admin/articles/article/change_form.html"

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
            {
                "fields": ["corrected_at", "withdrawn_at", "created_at", "modified_at"],
                "classes": ["collapse"],
            },
        ),
    ]

    class Media:
        css = {
            "all": ["articles/editor.css", "articles/image_upload.css", "articles/admin_lists.css"]
        }
        js = ["articles/editor.js", "articles/image_upload.js"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Article]:
        # Two queries for the whole page instead of two per row.
        return super().get_queryset(request).prefetch_related("topics", "authors")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if "body_markdown" not in form.base_fields:  # read only: no editor
            return form
        widget = form.base_fields["body_markdown"].widget
        autosave = (
            reverse("admin:articles_article_autosave", args=[obj.pk])
            if obj
            else reverse("admin:articles_article_autosave_new")
        )
        widget.attrs.update(
            {
                "data-preview-url": reverse("articles:preview_unsaved"),
                "data-site-css": static("css/site.css"),
                "data-editor-labels": json.dumps(
                    {key: str(text) for key, text in EDITOR_LABELS.items()}
                ),
                "data-autosave-url": autosave,
                "data-article-id": str(obj.pk) if obj else "",
            }
        )
        return form

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("autosave/", wrap(self.autosave_view), name="articles_article_autosave_new"),
            path(
                "<path:object_id>/autosave/",
                wrap(self.autosave_view),
                name="articles_article_autosave",
            ),
            path(
                "<path:object_id>/withdraw/",
                wrap(self.withdraw_view),
                name="articles_article_withdraw",
            ),
            path("<path:object_id>/purge/", wrap(self.purge_view), name="articles_article_purge"),
            *super().get_urls(),
        ]

    # --- List -----------------------------------------------------------------------------

    @admin.display(description=_("Status"), ordering="status")
    def live_status(self, obj: Article) -> str:
        # A scheduled article whose minute has come is live before the beat flips its row.
        if obj.status == ArticleStatus.SCHEDULED and obj.is_live():
            return ArticleStatus.PUBLISHED.label
        return obj.get_status_display()

    @admin.display(description=_("Online ab"), ordering="published_at")
    def live_since(self, obj: Article) -> str:
        if obj.published_at is None:
            return "–"
        when = date_format(timezone.localtime(obj.published_at), "SHORT_DATETIME_FORMAT")
        if obj.corrected_at:
            corrected = date_format(timezone.localtime(obj.corrected_at), "SHORT_DATETIME_FORMAT")
            return format_html("{}<br><small>{} {}</small>", when, _("aktualisiert"), corrected)
        return when

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

    # --- Change form, saving, autosave -----------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        article = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if article is not None:
            pending = version_pending_for_article(article=article)
            if pending is not None and request.method == "GET":
                extra["pending_version"] = pending
            extra["can_withdraw"] = (
                self.has_change_permission(request, article)
                and article.status != ArticleStatus.WITHDRAWN
                and article.status != ArticleStatus.DRAFT
            )
            extra["can_purge"] = request.user.is_superuser
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def save_model(self, request, obj, form, change):
        # Relations are saved by save_related, inside the same revision (VersionAdmin).
        article_save(article=obj, actor=request.user)

    def autosave_view(self, request: HttpRequest, object_id: str | None = None) -> HttpResponse:
        """Keep what the editor typed: a draft is saved as a draft, a live article gets a
        revision only (see services.article_autosave). Answers JSON for editor.js."""
        article = None
        if object_id is not None:
            article = self.get_object(request, unquote(object_id))
            if article is None:
                raise Http404
            if not self.has_change_permission(request, article):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        form = self.get_form(request, article, change=article is not None)(
            request.POST, instance=article
        )
        if not form.is_valid():
            return JsonResponse({"saved": False, "errors": form.errors}, status=400)
        try:
            written = article_autosave(
                article=form.instance,
                actor=request.user,
                authors=form.cleaned_data.get("authors"),
                topics=form.cleaned_data.get("topics"),
            )
        except ValidationError as error:
            return JsonResponse({"saved": False, "errors": {"__all__": error.messages}}, status=400)
        pk = form.instance.pk
        return JsonResponse(
            {
                "saved": True,
                "article_written": written,
                "at": date_format(timezone.localtime(), "H:i:s"),
                "article_id": pk,
                "change_url": reverse("admin:articles_article_change", args=[pk]),
                "autosave_url": reverse("admin:articles_article_autosave", args=[pk]),
            }
        )

    # --- Deleting becomes withdrawing -------------------------------------------------------

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.has_gone_live():
            return False
        return super().has_delete_permission(request, obj)

    def delete_view(self, request, object_id, extra_context=None):
        article = self.get_object(request, unquote(object_id))
        if (
            article is not None
            and article.has_gone_live()
            and self.has_change_permission(request, article)
        ):
            self.message_user(
                request,
                _("Dieser Artikel war schon online: er wird zurückgezogen, nicht gelöscht."),
                messages.WARNING,
            )
            return redirect("admin:articles_article_withdraw", article.pk)
        return super().delete_view(request, object_id, extra_context)

    def get_deleted_objects(self, objs, request):
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # has_delete_permission refuses these, which Django reports as a missing right;
        # say instead why they stay and what to do.
        perms_needed.discard(str(Article._meta.verbose_name))
        for article in objs:
            if isinstance(article, Article) and article.has_gone_live():
                protected.append(
                    _("%(title)s (war schon online: zurückziehen statt löschen)")
                    % {"title": article.title}
                )
        return deleted, counts, perms_needed, protected

    def delete_model(self, request, obj):
        article_delete(article=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for article in queryset:
            article_delete(article=article, actor=request.user)

    def withdraw_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        article = self.get_object(request, unquote(object_id))
        if article is None:
            raise Http404
        if not self.has_change_permission(request, article):
            raise PermissionDenied
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            article_withdraw(
                article=article, reason=form.cleaned_data["reason"], actor=request.user
            )
            self.message_user(
                request,
                _("„%(title)s“ ist zurückgezogen.") % {"title": article.title},
                messages.SUCCESS,
            )
            return redirect("admin:articles_article_change", article.pk)
        return self._reason_page(
            request, "withdraw", [article], form, title=_("Artikel zurückziehen")
        )

    def purge_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.is_superuser:
            raise PermissionDenied
        article = self.get_object(request, unquote(object_id))
        if article is None:
            raise Http404
        form = ReasonForm(request.POST if request.method == "POST" else None)
        if form.is_bound and form.is_valid():
            article_purge(article=article, actor=request.user, reason=form.cleaned_data["reason"])
            self.message_user(
                request,
                _("Der Artikel ist endgültig entfernt; der Grund ist protokolliert."),
                messages.SUCCESS,
            )
            return redirect("admin:articles_article_changelist")
        return self._reason_page(
            request, "purge", [article], form, title=_("Artikel endgültig entfernen")
        )

    def _reason_page(self, request, what, articles, form, *, title, action=""):
        return TemplateResponse(
            request,
            "admin/articles/article/reason.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "opts": self.model._meta,
                "what": what,
                "articles": articles,
                "form": form,
                "action": action,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            },
        )

    # --- Revisions: list, diff and restore ---------------------------------------------------

    def history_view(self, request, object_id, extra_context=None):
        article = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if article is not None and self.has_view_or_change_permission(request, article):
            extra["versions"] = version_list_for_article(article=article)
            extra["events"] = list(article.events.select_related("acting_user"))
        return super().history_view(request, object_id, extra_context=extra)

    def revision_view(self, request, object_id, version_id, extra_context=None):
        """One revision: what it changed, side by side, and restoring it (a new revision)."""
        article = self.get_object(request, unquote(object_id))
        if article is None:
            raise Http404
        if not self.has_view_or_change_permission(request, article):
            raise PermissionDenied
        version = version_get(article=article, version_id=int(version_id))
        if version is None:
            raise Http404
        label = date_format(
            timezone.localtime(version.revision.date_created), "SHORT_DATETIME_FORMAT"
        )
        if request.method == "POST":
            if not self.has_change_permission(request, article):
                raise PermissionDenied
            try:
                article_restore(
                    article=article, fields=version.field_dict, label=label, actor=request.user
                )
            except ValidationError as error:
                # e.g. the old slug is taken by another article by now
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return redirect(request.path)
            self.message_user(
                request,
                _("Die Fassung vom %(label)s ist wiederhergestellt.") % {"label": label},
                messages.SUCCESS,
            )
            return redirect("admin:articles_article_change", article.pk)
        previous = version_previous(version=version)
        latest = version_list_for_article(article=article)[0]
        return TemplateResponse(
            request,
            "admin/articles/article/revision.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Fassung vom %(label)s") % {"label": label},
                "opts": self.model._meta,
                "original": article,
                "version": version,
                "previous": previous,
                "changes": version_diff(
                    old=previous.field_dict if previous else {}, new=version.field_dict
                ),
                "against_current": version_diff(old=latest.field_dict, new=version.field_dict)
                if latest.pk != version.pk
                else [],
                "can_restore": self.has_change_permission(request, article)
                and latest.pk != version.pk,
            },
        )

    # --- Actions --------------------------------------------------------------------------

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
                article_publish(article=article, actor=request.user)
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

    @admin.action(description=_("Zurückziehen …"), permissions=["change"])
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Article]):
        """Asks for the reason first (the intermediate page), then withdraws each article."""
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return self._reason_page(
                request,
                "withdraw",
                list(queryset),
                form,
                title=_("Artikel zurückziehen"),
                action="withdraw",
            )
        count = 0
        for article in queryset:
            article_withdraw(
                article=article, reason=form.cleaned_data["reason"], actor=request.user
            )
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d Artikel zurückgezogen.", "%(count)d Artikel zurückgezogen.", count)
            % {"count": count},
            messages.SUCCESS,
        )
        return None


@admin.register(ArticleEvent)
class ArticleEventAdmin(admin.ModelAdmin):
    """The log of withdrawals, purges, corrections and restores: read only."""

    list_display = ["at", "kind", "article_ref", "article", "acting_user", "reason"]
    list_filter = ["kind"]
    search_fields = ["reason", "article__title"]
    list_select_related = ["article", "acting_user"]
    readonly_fields = ["article", "article_ref", "kind", "at", "acting_user", "reason", "data"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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
