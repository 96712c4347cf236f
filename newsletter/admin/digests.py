"""Admin for digests: progress counts (annotations, no query per row), start now, pause,
resume, cancel, preview as a subscriber, a test to oneself, and a live progress page.

Each action and page checks its own permission: view_digest reads counts and the preview with
placeholders; change_digest starts, pauses, resumes and cancels; a test mail needs
send_test_digest; a preview as a subscriber (whose address, language and consent date it
shows) needs preview_as_subscriber and view_subscription. No preview holds a working link.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
    JsonResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from newsletter.charts import figure_csv, figure_svg
from newsletter.emails.digest import digest_language, digest_preview_html
from newsletter.models import Batch, Digest, DigestState, Frequency, Newsletter, Subscription
from newsletter.selectors.digests import digest_list_with_progress, digest_progress
from newsletter.selectors.reports import mailing_of_digest, mailing_report
from newsletter.services.digests import (
    digest_cancel,
    digest_pause,
    digest_resume,
    digest_start_now,
    digest_test_send,
)

# Newest subscriptions offered for a preview as a subscriber.
SUBSCRIBERS_SHOWN = 50


class StartNowForm(forms.Form):
    newsletter = forms.ModelChoiceField(
        Newsletter.objects.filter(is_active=True), label=_("Newsletter")
    )
    frequency = forms.ChoiceField(choices=Frequency.choices, label=_("Häufigkeit"))


class BatchInline(admin.TabularInline):
    model = Batch
    extra = 0
    can_delete = False
    fields = (
        "first_delivery_id",
        "last_delivery_id",
        "size",
        "sent_count",
        "state",
        "attempts",
        "error",
    )
    readonly_fields = fields
    max_num = 0
    show_change_link = False


@admin.register(Digest)
class DigestAdmin(admin.ModelAdmin):
    list_display = (
        "__str__",
        "state",
        "recipients",
        "sent",
        "sending",
        "failed",
        "uncertain",
        "skipped",
        "progress_link",
    )
    list_filter = ("state", "frequency", "newsletter")
    date_hierarchy = "slot"
    search_fields = ("subject", "newsletter__name")
    actions = ("pause_selected", "resume_selected", "cancel_selected")
    readonly_fields = [f.name for f in Digest._meta.fields]
    inlines = [BatchInline]

    def get_queryset(self, request):
        return digest_list_with_progress(super().get_queryset(request).select_related("newsletter"))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("gesendet"), ordering="n_sent")
    def sent(self, obj):
        return obj.n_sent

    @admin.display(description=_("in Arbeit"))
    def sending(self, obj):
        return obj.n_sending

    @admin.display(description=_("abgelehnt"))
    def failed(self, obj):
        return obj.n_failed

    @admin.display(description=_("ungewiss"))
    def uncertain(self, obj):
        return obj.n_uncertain

    @admin.display(description=_("ausgelassen"))
    def skipped(self, obj):
        return obj.n_skipped

    @admin.display(description=_("Fortschritt"))
    def progress_link(self, obj):
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:newsletter_digest_progress", args=[obj.pk]),
            _("verfolgen"),
            reverse("admin:newsletter_digest_report", args=[obj.pk]),
            _("Bericht"),
        )

    def _report(self, request, done: int, total: int, verb: str) -> None:
        self.message_user(
            request,
            _("%(done)d von %(total)d Digests %(verb)s.")
            % {"done": done, "total": total, "verb": verb},
            messages.SUCCESS if done else messages.WARNING,
        )

    @admin.action(description=_("Ausgewählte pausieren"), permissions=["change"])
    def pause_selected(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        self._report(
            request, sum(digest_pause(digest_id=pk) for pk in ids), len(ids), _("pausiert")
        )

    @admin.action(description=_("Ausgewählte fortsetzen"), permissions=["change"])
    def resume_selected(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        self._report(
            request, sum(digest_resume(digest_id=pk) for pk in ids), len(ids), _("fortgesetzt")
        )

    @admin.action(description=_("Ausgewählte abbrechen"), permissions=["change"])
    def cancel_selected(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        self._report(
            request, sum(digest_cancel(digest_id=pk) for pk in ids), len(ids), _("abgebrochen")
        )

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("start/", wrap(self.start_view), name="newsletter_digest_start"),
            path("<int:pk>/progress/", wrap(self.progress_view), name="newsletter_digest_progress"),
            path(
                "<int:pk>/progress.json",
                wrap(self.progress_json),
                name="newsletter_digest_progress_json",
            ),
            path("<int:pk>/preview/", wrap(self.preview_view), name="newsletter_digest_preview"),
            path("<int:pk>/bericht/", wrap(self.report_view), name="newsletter_digest_report"),
            path(
                "<int:pk>/bericht.csv", wrap(self.report_csv), name="newsletter_digest_report_csv"
            ),
            path(
                "<int:pk>/test/", wrap(require_POST(self.test_view)), name="newsletter_digest_test"
            ),
            *super().get_urls(),
        ]

    def has_send_test_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("newsletter.send_test_digest")

    def has_preview_as_subscriber_permission(self, request: HttpRequest) -> bool:
        # The choice of subscriber lists addresses: only for those who may read them anyway.
        return request.user.has_perms(
            ["newsletter.preview_as_subscriber", "newsletter.view_subscription"]
        )

    def _digest(self, pk: int, *, allowed: bool) -> Digest:
        """The digest of a custom page, once the page's own permission check has passed."""
        if not allowed:
            raise PermissionDenied
        return get_object_or_404(Digest.objects.select_related("newsletter"), pk=pk)

    def start_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        form = StartNowForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                result = digest_start_now(
                    newsletter=form.cleaned_data["newsletter"],
                    frequency=form.cleaned_data["frequency"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                # The state changes while workers run; the progress page shows it live, so
                # the banner names none that could contradict the table below it.
                self.message_user(request, _("Digest %(id)s angelegt.") % {"id": result.digest.pk})
                return HttpResponseRedirect(
                    reverse("admin:newsletter_digest_progress", args=[result.digest.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Digest jetzt senden"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/digest/start.html", context)

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        digest = self._digest(pk, allowed=self.has_view_permission(request))
        as_subscriber = self.has_preview_as_subscriber_permission(request)
        subscriptions = []
        if as_subscriber:
            newest = Subscription.objects.filter(newsletter=digest.newsletter).order_by("-id")
            subscriptions = newest[:SUBSCRIBERS_SHOWN]
        context = {
            **self.admin_site.each_context(request),
            "digest": digest,
            "progress": digest_progress(digest=digest),
            # A skipped digest has no articles: nothing to preview or to test.
            "has_content": digest.state != DigestState.SKIPPED and bool(digest.article_ids),
            "can_preview_as_subscriber": as_subscriber,
            "can_send_test": self.has_send_test_permission(request),
            "subscriptions": subscriptions,
            "title": str(digest),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/digest/progress.html", context)

    def progress_json(self, request: HttpRequest, pk: int) -> JsonResponse:
        digest = self._digest(pk, allowed=self.has_view_permission(request))
        return JsonResponse(digest_progress(digest=digest))

    def report_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        digest = self._digest(pk, allowed=self.has_view_permission(request))
        report = mailing_report(mailing=mailing_of_digest(digest=digest))
        context = {
            **self.admin_site.each_context(request),
            "digest": digest,
            "report": report,
            "svg": mark_safe(figure_svg(report.figure, height=260)),  # noqa: S308
            "title": _("Bericht: %(digest)s") % {"digest": digest},
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/digest/report.html", context)

    def report_csv(self, request: HttpRequest, pk: int) -> HttpResponse:
        digest = self._digest(pk, allowed=self.has_view_permission(request))
        report = mailing_report(mailing=mailing_of_digest(digest=digest))
        response = HttpResponse(figure_csv(report.figure), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="bericht-digest-{digest.pk}.csv"'
        return response

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The digest as a reader of a language, or as one subscriber, with inert links."""
        digest = self._digest(pk, allowed=self.has_view_permission(request))
        if digest.state == DigestState.SKIPPED:
            return HttpResponseBadRequest(
                _("Ein übersprungener Digest hat keinen Inhalt."),
                content_type="text/plain; charset=utf-8",
            )
        raw = request.GET.get("subscription", "")
        subscription = None
        if raw:
            if not self.has_preview_as_subscriber_permission(request):
                raise PermissionDenied
            if not raw.isdigit() or len(raw) > 18:
                return HttpResponseBadRequest(
                    _("Ungültige Abonnement-Nummer."), content_type="text/plain; charset=utf-8"
                )
            subscription = get_object_or_404(
                Subscription, pk=int(raw), newsletter=digest.newsletter
            )
        language = digest_language(
            subscription.language if subscription else request.GET.get("language")
        )
        context = {
            **self.admin_site.each_context(request),
            "digest": digest,
            "subscription": subscription,
            "language_name": get_language_info(language)["name_local"],
            "preview_html": digest_preview_html(
                digest=digest,
                language=language,
                confirmed_at=subscription.confirmed_at if subscription else None,
            ),
            "title": _("Vorschau: %(digest)s") % {"digest": digest},
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/digest/preview.html", context)

    def test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        digest = self._digest(pk, allowed=self.has_send_test_permission(request))
        if digest.state == DigestState.SKIPPED:
            return HttpResponseBadRequest(
                _("Ein übersprungener Digest hat keinen Inhalt."),
                content_type="text/plain; charset=utf-8",
            )
        language = digest_language(request.POST.get("language"))
        try:
            digest_test_send(digest_id=digest.pk, email=request.user.email, language=language)
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
        else:
            self.message_user(
                request, _("Test an %(email)s gesendet.") % {"email": request.user.email}
            )
        return HttpResponseRedirect(reverse("admin:newsletter_digest_progress", args=[digest.pk]))
