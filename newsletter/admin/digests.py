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
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from newsletter.admin.workflow import (
    SUBSCRIBERS_SHOWN,
    TestSendForm,
    can_preview_as_subscriber,
    can_send_test,
    preview_response,
    test_send_handle,
    workflow_context,
)
from newsletter.charts import figure_csv, figure_svg
from newsletter.drafts import digest_draft
from newsletter.models import Batch, Digest, DigestState, Frequency, Newsletter, Subscription
from newsletter.selectors.digests import digest_list_with_progress, digest_progress
from newsletter.selectors.reports import mailing_of_digest, mailing_report
from newsletter.services.digests import (
    CANCELLABLE,
    digest_cancel,
    digest_pause,
    digest_resume,
    digest_start_now,
)


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
        "kind",
        "state",
        "recipients",
        "delivery_summary",
        "progress_link",
    )
    list_filter = ("kind", "state", "frequency", "newsletter")
    date_hierarchy = "slot"
    search_fields = ("subject", "subject_en", "newsletter__name")
    actions = ("pause_selected", "resume_selected", "cancel_selected")
    readonly_fields = [f.name for f in Digest._meta.fields]
    inlines = [BatchInline]

    def get_queryset(self, request):
        return digest_list_with_progress(super().get_queryset(request).select_related("newsletter"))

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Versand"), ordering="n_sent")
    def delivery_summary(self, obj):
        # One column, not five: with the admin's sidebar open, a column per outcome pushed the
        # links off the right edge at 1,280 px. Outcomes that did not happen are left out.
        others = [
            (obj.n_sending, _("in Arbeit")),
            (obj.n_failed, _("abgelehnt")),
            (obj.n_uncertain, _("ungewiss")),
            (obj.n_skipped, _("ausgelassen")),
        ]
        return format_html(
            "{} {}{}",
            obj.n_sent,
            _("gesendet"),
            format_html_join("", "<br>{} {}", [o for o in others if o[0]]),
        )

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
            path(
                "start/preview/",
                wrap(self.start_preview_view),
                name="newsletter_digest_start_preview",
            ),
            path(
                "start/test/",
                wrap(require_POST(self.start_test_view)),
                name="newsletter_digest_start_test",
            ),
            path("<int:pk>/progress/", wrap(self.progress_view), name="newsletter_digest_progress"),
            path(
                "<int:pk>/progress.json",
                wrap(self.progress_json),
                name="newsletter_digest_progress_json",
            ),
            path(
                "<int:pk>/control/",
                wrap(require_POST(self.control_view)),
                name="newsletter_digest_control",
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

    def changelist_view(self, request, extra_context=None):
        # The start page is reachable from the list (object-tools button).
        extra_context = {**(extra_context or {}), "can_start": self.has_change_permission(request)}
        return super().changelist_view(request, extra_context)

    def _digest(self, pk: int, *, allowed: bool) -> Digest:
        """The digest of a custom page, once the page's own permission check has passed."""
        if not allowed:
            raise PermissionDenied
        return get_object_or_404(Digest.objects.select_related("newsletter", "campaign"), pk=pk)

    def _draft(self, data) -> tuple[StartNowForm, Digest | None]:
        form = StartNowForm(data or None)
        if not data or not form.is_valid():
            return form, None
        now = timezone.now().replace(second=0, microsecond=0)
        return form, digest_draft(
            newsletter=form.cleaned_data["newsletter"],
            frequency=form.cleaned_data["frequency"],
            slot=now,
        )

    def start_view(self, request: HttpRequest) -> HttpResponse:
        """Choose a newsletter and frequency, then preview, test and check the digest that
        would go out now; only the confirmation (POST) creates it."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = StartNowForm(request.POST)
            if form.is_valid():
                try:
                    result = digest_start_now(
                        newsletter=form.cleaned_data["newsletter"],
                        frequency=form.cleaned_data["frequency"],
                    )
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    # The state changes while workers run; the progress page shows it live,
                    # so the banner names none that could contradict the table below it.
                    self.message_user(
                        request, _("Digest %(id)s angelegt.") % {"id": result.digest.pk}
                    )
                    return HttpResponseRedirect(
                        reverse("admin:newsletter_digest_progress", args=[result.digest.pk])
                    )
            return self._start_page(request, form, None)
        form, draft = self._draft(request.GET)
        return self._start_page(request, form, draft)

    def _start_page(self, request, form, draft, test_form=None) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Digest jetzt senden"),
            "opts": self.model._meta,
        }
        if draft is not None:
            context.update(workflow_context(self, request, draft=draft, test_form=test_form))
            context.update(
                preview_url=reverse("admin:newsletter_digest_start_preview"),
                test_url=reverse("admin:newsletter_digest_start_test"),
                confirm_url=reverse("admin:newsletter_digest_start"),
            )
        return TemplateResponse(request, "admin/newsletter/digest/start.html", context)

    def start_preview_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        _form, draft = self._draft(request.GET)
        if draft is None:
            return HttpResponseBadRequest(
                _("Newsletter und Häufigkeit fehlen oder sind ungültig."),
                content_type="text/plain; charset=utf-8",
            )
        back = reverse("admin:newsletter_digest_start") + "?" + request.GET.urlencode()
        return preview_response(self, request, draft=draft, back_url=back)

    def start_test_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_change_permission(request):
            raise PermissionDenied
        form, draft = self._draft(request.POST)
        if draft is None:
            return HttpResponseBadRequest(
                _("Newsletter und Häufigkeit fehlen oder sind ungültig."),
                content_type="text/plain; charset=utf-8",
            )
        bound = test_send_handle(self, request, draft=draft)
        if bound is not None:
            return self._start_page(request, form, draft, test_form=bound)
        query = f"?newsletter={draft.newsletter_id}&frequency={draft.frequency}"
        return HttpResponseRedirect(reverse("admin:newsletter_digest_start") + query)

    def progress_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        digest = self._digest(pk, allowed=self.has_view_permission(request))
        as_subscriber = can_preview_as_subscriber(request)
        subscriptions = []
        if as_subscriber:
            newest = Subscription.objects.filter(newsletter=digest.newsletter).order_by("-id")
            subscriptions = newest[:SUBSCRIBERS_SHOWN]
        context = {
            **self.admin_site.each_context(request),
            "digest": digest,
            "progress": digest_progress(digest=digest),
            "can_control": self.has_change_permission(request),
            "cancellable": CANCELLABLE,
            # A skipped digest has nothing to show or test.
            "has_content": digest.state != DigestState.SKIPPED,
            "can_preview_as_subscriber": as_subscriber,
            "can_send_test": can_send_test(request),
            "subscriptions": subscriptions,
            "test_form": TestSendForm(initial={"addresses": request.user.email}),
            "title": str(digest),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/newsletter/digest/progress.html", context)

    def progress_json(self, request: HttpRequest, pk: int) -> JsonResponse:
        digest = self._digest(pk, allowed=self.has_view_permission(request))
        return JsonResponse(digest_progress(digest=digest))

    def control_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Pause, resume or cancel one mailing from its progress page."""
        digest = self._digest(pk, allowed=self.has_change_permission(request))
        controls = {"pause": digest_pause, "resume": digest_resume, "cancel": digest_cancel}
        control = controls.get(request.POST.get("control", ""))
        if control is None:
            return HttpResponseBadRequest(
                _("Unbekannte Steuerung."), content_type="text/plain; charset=utf-8"
            )
        if control(digest_id=digest.pk):
            self.message_user(request, _("Erledigt."))
        else:
            self.message_user(
                request,
                _("Nicht möglich im Zustand „%(state)s“.") % {"state": digest.get_state_display()},
                messages.WARNING,
            )
        return HttpResponseRedirect(reverse("admin:newsletter_digest_progress", args=[digest.pk]))

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
        back = reverse("admin:newsletter_digest_progress", args=[digest.pk])
        return preview_response(self, request, draft=digest, back_url=back)

    def test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        digest = self._digest(pk, allowed=can_send_test(request))
        if digest.state == DigestState.SKIPPED:
            return HttpResponseBadRequest(
                _("Ein übersprungener Digest hat keinen Inhalt."),
                content_type="text/plain; charset=utf-8",
            )
        data = request.POST.copy()
        if not data.get("addresses"):
            data["addresses"] = request.user.email or ""
        request.POST = data
        test_send_handle(self, request, draft=digest)
        return HttpResponseRedirect(reverse("admin:newsletter_digest_progress", args=[digest.pk]))
