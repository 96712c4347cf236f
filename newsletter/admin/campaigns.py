"""Admin for campaigns: write (Markdown, a quoted article, a segment), then the shared send
workflow (admin/workflow.py): preview as any reader, test to several addresses, a checklist
with the segment's count, confirm. After confirming, the campaign's mailing is a Digest row
and its progress, pause, resume and cancel are the digest admin's pages.

Permissions: view_campaign reads and previews; add/change_campaign write drafts; a test needs
send_test_digest; the checklist and confirmation need send_campaign; a preview as a
subscriber needs preview_as_subscriber and view_subscription. A confirmed campaign is frozen.
"""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from articles.selectors import article_list_live
from newsletter.admin.workflow import preview_response, test_send_handle, workflow_context
from newsletter.drafts import campaign_draft
from newsletter.models import Campaign, Digest
from newsletter.services.mailings import campaign_send


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "newsletter",
            "name",
            "subject",
            "preheader",
            "body_markdown",
            "subject_en",
            "preheader_en",
            "body_markdown_en",
            "article",
            "segment_language",
            "segment_confirmed_from",
            "segment_confirmed_until",
            "segment_topics",
        ]
        widgets = {
            "body_markdown": forms.Textarea(attrs={"rows": 18, "class": "vLargeTextField"}),
            "body_markdown_en": forms.Textarea(attrs={"rows": 18, "class": "vLargeTextField"}),
            # A handful of topics: checkboxes show every choice at once, no widget script.
            "segment_topics": forms.CheckboxSelectMultiple,
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A mail cannot be recalled: only what readers can already open on the site is offered
        # (a plain choice: managers may not browse the editors' article admin).
        if "article" in self.fields:  # absent where the page is read-only
            self.fields["article"].queryset = article_list_live()


class ConfirmForm(forms.Form):
    send_at = forms.DateTimeField(
        label=_("Versandzeitpunkt"),
        required=False,
        help_text=_("Leer: sofort. Europa/Berlin, z. B. 24.12.2026 09:00."),
        input_formats=["%d.%m.%Y %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    form = CampaignForm
    list_display = ("name", "newsletter", "subject", "mailing_state", "send_link")
    list_filter = ("newsletter",)
    search_fields = ("name", "subject", "subject_en")
    fieldsets = (
        (None, {"fields": ("newsletter", "name", "subject", "preheader")}),
        (
            _("Inhalt"),
            {
                "fields": ("body_markdown", "article"),
                "description": _(
                    "Markdown wie bei Artikeln; HTML wird bereinigt. Ein zitierter Artikel "
                    "erscheint mit Vorspann, Link und seinem Hinweis."
                ),
            },
        ),
        (
            _("Englische Fassung"),
            {
                "fields": ("subject_en", "preheader_en", "body_markdown_en"),
                "description": _(
                    "Für Leser, die ihre Mails auf Englisch erhalten. Ohne englische Fassung "
                    "erhalten sie den deutschen Text, als deutsch ausgezeichnet; ein zitierter "
                    "Artikel erscheint in seiner englischen Übersetzung, wo es eine gibt."
                ),
            },
        ),
        (
            _("Empfänger"),
            {
                "fields": (
                    "segment_language",
                    "segment_confirmed_from",
                    "segment_confirmed_until",
                    "segment_topics",
                ),
                "description": _(
                    "Bestätigte Abonnenten des Newsletters; leere Felder schränken nicht ein."
                ),
            },
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("newsletter", "mailing")

    def has_change_permission(self, request, obj=None):
        # What went out stays as it was: a confirmed campaign is read-only.
        if obj is not None and Digest.objects.filter(campaign=obj).exists():
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description=_("Versand"))
    def mailing_state(self, obj):
        mailing = getattr(obj, "mailing", None)
        return mailing.get_state_display() if mailing else _("Entwurf")

    @admin.display(description=_("Aktion"))
    def send_link(self, obj):
        mailing = getattr(obj, "mailing", None)
        if mailing is not None:
            url = reverse("admin:newsletter_digest_progress", args=[mailing.pk])
            return format_html('<a href="{}">{}</a>', url, _("Fortschritt"))
        url = reverse("admin:newsletter_campaign_send", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Prüfen und senden"))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("<int:pk>/send/", wrap(self.send_view), name="newsletter_campaign_send"),
            path("<int:pk>/preview/", wrap(self.preview_view), name="newsletter_campaign_preview"),
            path(
                "<int:pk>/test/",
                wrap(require_POST(self.test_view)),
                name="newsletter_campaign_test",
            ),
            *super().get_urls(),
        ]

    def _campaign(self, pk: int, *, allowed: bool) -> Campaign:
        if not allowed:
            raise PermissionDenied
        return get_object_or_404(Campaign.objects.select_related("newsletter", "article"), pk=pk)

    def _page(self, request, campaign, *, test_form=None, confirm_form=None) -> HttpResponse:
        draft = campaign_draft(campaign=campaign, slot=timezone.now())
        context = workflow_context(self, request, draft=draft, test_form=test_form)
        context.update(
            campaign=campaign,
            title=_("Kampagne senden: %(name)s") % {"name": campaign.name},
            confirm_form=confirm_form or ConfirmForm(),
            preview_url=reverse("admin:newsletter_campaign_preview", args=[campaign.pk]),
            test_url=reverse("admin:newsletter_campaign_test", args=[campaign.pk]),
            confirm_url=reverse("admin:newsletter_campaign_send", args=[campaign.pk]),
            change_url=reverse("admin:newsletter_campaign_change", args=[campaign.pk]),
        )
        return TemplateResponse(request, "admin/newsletter/campaign/send.html", context)

    def _mailing_redirect(self, mailing: Digest) -> HttpResponse:
        return HttpResponseRedirect(reverse("admin:newsletter_digest_progress", args=[mailing.pk]))

    def send_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The checklist (GET) and the confirmation (POST): subject, sender, recipient count
        and send time are shown before anything is created for sending."""
        campaign = self._campaign(pk, allowed=request.user.has_perm("newsletter.send_campaign"))
        mailing = Digest.objects.filter(campaign=campaign).first()
        if mailing is not None:
            return self._mailing_redirect(mailing)
        if request.method != "POST":
            return self._page(request, campaign)
        form = ConfirmForm(request.POST)
        if form.is_valid():
            send_at: datetime | None = form.cleaned_data["send_at"]
            try:
                mailing = campaign_send(campaign_id=campaign.pk, send_at=send_at)
            except ValidationError as exc:
                form.add_error("send_at", exc)
            else:
                self.message_user(
                    request,
                    _("Kampagne „%(name)s“: %(state)s.")
                    % {"name": campaign.name, "state": mailing.get_state_display()},
                    messages.SUCCESS,
                )
                return self._mailing_redirect(mailing)
        return self._page(request, campaign, confirm_form=form)

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = self._campaign(pk, allowed=self.has_view_permission(request))
        mailing = Digest.objects.select_related("newsletter", "campaign").filter(campaign=campaign)
        draft = mailing.first() or campaign_draft(campaign=campaign, slot=timezone.now())
        back = reverse("admin:newsletter_campaign_send", args=[campaign.pk])
        return preview_response(self, request, draft=draft, back_url=back)

    def test_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        campaign = self._campaign(pk, allowed=self.has_view_permission(request))
        draft = campaign_draft(campaign=campaign, slot=timezone.now())
        bound = test_send_handle(self, request, draft=draft)
        if bound is not None and request.user.has_perm("newsletter.send_campaign"):
            return self._page(request, campaign, test_form=bound)
        return HttpResponseRedirect(reverse("admin:newsletter_campaign_send", args=[campaign.pk]))
