"""Admin for newsletter managers: newsletters and their consent texts, subscriptions, evidence.

Subscriptions change only through the services (each writes its evidence); the consent log and
consent texts are read-only here. Editors have no newsletter permissions and see none of it.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from newsletter.admin.imports import import_job_view, import_view
from newsletter.admin.lists import (
    AddressSearchMixin,
    EvidenceMediaMixin,
    LanguageFilter,
    LargeListMixin,
    WideListMixin,
    short_time,
)
from newsletter.models import (
    ConsentEvent,
    ConsentText,
    Newsletter,
    RevocationChannel,
    Subscription,
    Suppression,
    Weekday,
)
from newsletter.proof_pdf import proof_pdf_render
from newsletter.selectors.consent import consent_text_current, subscription_export_csv
from newsletter.services.consent import (
    newsletter_texts_save,
    subscriber_erase,
    subscription_proof,
    subscription_revoke,
)
from newsletter.services.proof_document import ProofDocument, proof_document_build

TEXT_LANGUAGES = (
    ("de", _("Einwilligungstext (Deutsch)")),
    ("en", _("Einwilligungstext (Englisch)")),
)


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ConsentTextInline(ReadOnlyMixin, admin.TabularInline):
    model = ConsentText
    extra = 0
    fields = ["language", "version", "created_at", "sha256", "text"]
    readonly_fields = fields
    ordering = ["language", "-version"]
    verbose_name_plural = _("Einwilligungstexte (jede Änderung ist eine neue Version)")


class NewsletterForm(forms.ModelForm):
    weekly_days = forms.MultipleChoiceField(
        label=_("Wochentage (wöchentlich)"),
        choices=Weekday.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("An diesen Tagen geht der wöchentliche Digest hinaus."),
    )
    consent_text_de = forms.CharField(
        label=TEXT_LANGUAGES[0][1],
        required=False,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_(
            "Leer lassen für den Standardtext. Eine Änderung wird als neue Version gespeichert."
        ),
    )
    consent_text_en = forms.CharField(
        label=TEXT_LANGUAGES[1][1], required=False, widget=forms.Textarea(attrs={"rows": 8})
    )

    class Meta:
        model = Newsletter
        fields = [
            "name",
            "slug",
            "description",
            "description_en",
            "sender_name",
            "sender_email",
            "reply_to",
            "language",
            "imprint_url",
            "privacy_url",
            "imprint_text",
            "brand_logo_url",
            "brand_color",
            "brand_footer",
            "welcome_mail",
            "is_active",
            "starts_at",
            "send_time",
            "offers_daily",
            "offers_weekly",
            "weekly_days",
            "subject_template",
            "subject_template_en",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial["weekly_days"] = list(self.instance.weekly_days or Weekday.MONDAY)
        if self.instance.pk:
            for language, _label in TEXT_LANGUAGES:
                current = consent_text_current(newsletter=self.instance, language=language)
                if current is not None and current.language == language:
                    self.fields[f"consent_text_{language}"].initial = current.text

    def clean_weekly_days(self) -> str:
        days = "".join(sorted(set(self.cleaned_data["weekly_days"])))
        if not days and self.data.get("offers_weekly"):
            raise forms.ValidationError(
                _("Bitte wählen Sie mindestens einen Wochentag."), code="invalid_weekdays"
            )
        # Without a weekly digest the days do not matter; the stored value stays valid.
        return days or self.instance.weekly_days or Weekday.MONDAY


@admin.register(Newsletter)
class NewsletterAdmin(EvidenceMediaMixin, admin.ModelAdmin):
    form = NewsletterForm
    list_display = ["name", "slug", "language", "is_active", "offers_daily", "offers_weekly"]
    list_filter = ["is_active", "language"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ConsentTextInline]

    def has_delete_permission(self, request, obj=None):
        # Evidence points at newsletters and their texts; they are deactivated, not deleted.
        return False

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        newsletter_texts_save(
            newsletter=form.instance,
            texts={
                language: form.cleaned_data.get(f"consent_text_{language}", "")
                for language, _label in TEXT_LANGUAGES
            },
        )


@admin.register(ConsentText)
class ConsentTextAdmin(EvidenceMediaMixin, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["newsletter", "language", "version", "created_at", "sha256"]
    list_filter = ["newsletter", "language"]
    search_fields = ["text", "sha256"]


class ConsentEventInline(ReadOnlyMixin, admin.TabularInline):
    model = ConsentEvent
    extra = 0
    fk_name = "subscription"
    fields = [
        "at",
        "kind",
        "channel",
        "ip",
        "user_agent",
        "url",
        "form",
        "consent_text",
        "text_sha256",
        "message_id",
        "note",
    ]
    readonly_fields = fields
    ordering = ["at", "id"]

    def get_queryset(self, request):
        # Each row shows its text's name (with its newsletter's): one join, no query per row.
        return super().get_queryset(request).select_related("consent_text__newsletter")


class RevokeForm(forms.Form):
    note = forms.CharField(
        label=_("Vermerk"),
        widget=forms.Textarea(attrs={"rows": 4}),
        max_length=2000,
        help_text=_("Zum Beispiel: „Widerruf per Brief vom 03.07.2025“ oder „telefonisch“."),
    )


@admin.register(Subscription)
class SubscriptionAdmin(AddressSearchMixin, LargeListMixin, WideListMixin, admin.ModelAdmin):
    list_display = [
        "email",
        "newsletter",
        "state",
        "language",
        "frequency",
        "created_short",
        "confirmed_short",
    ]
    list_filter = ["newsletter", "state", LanguageFilter, "created_at", "confirmed_at"]
    # Searched through AddressSearchMixin (hash or start of the address), never LIKE '%…%'.
    search_fields = ["email"]
    search_help_text = _(
        "Ganze Adresse (über ihren Schlüssel-Hash) oder den Anfang einer Adresse eingeben."
    )
    address_prefix_field = "email"
    list_select_related = ["newsletter"]
    readonly_fields = [
        "email",
        "newsletter",
        "state",
        "language",
        "frequency",
        "created_at",
        "requested_at",
        "confirmed_at",
        "unsubscribed_at",
        "confirmation_sends",
        "last_confirmation_sent_at",
        "soft_bounces",
        "last_mailed_at",
        "proof_links",
    ]
    fields = readonly_fields
    inlines = [ConsentEventInline]

    @admin.display(description=_("angefragt am"), ordering="created_at")
    def created_short(self, obj):
        return short_time(obj.created_at)

    @admin.display(description=_("bestätigt am"), ordering="confirmed_at")
    def confirmed_short(self, obj):
        return short_time(obj.confirmed_at)

    actions = ["revoke_with_note", "export_confirmed_csv", "erase_subscribers"]

    def has_add_permission(self, request):
        # Signups need the reader's own double opt-in; nobody adds addresses by hand.
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="newsletter_subscription_import"),
            path(
                "import/<int:pk>/",
                wrap(self.import_job_view),
                name="newsletter_subscription_import_job",
            ),
            path(
                "<int:pk>/nachweis.json",
                wrap(self.proof_json_view),
                name="newsletter_subscription_proof_json",
            ),
            path(
                "<int:pk>/nachweis/",
                wrap(self.proof_print_view),
                name="newsletter_subscription_proof",
            ),
            path(
                "<int:pk>/nachweis.pdf",
                wrap(self.proof_pdf_view),
                name="newsletter_subscription_proof_pdf",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("Nachweis"))
    def proof_links(self, obj: Subscription) -> str:
        if not obj.pk:
            return "–"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:newsletter_subscription_proof", args=[obj.pk]),
            _("Druckansicht"),
            reverse("admin:newsletter_subscription_proof_pdf", args=[obj.pk]),
            _("PDF"),
            reverse("admin:newsletter_subscription_proof_json", args=[obj.pk]),
            _("JSON"),
        )

    def _proof(self, request: HttpRequest, pk: int) -> dict:
        if not self.has_view_permission(request):
            raise PermissionDenied
        subscription = get_object_or_404(Subscription.objects.select_related("newsletter"), pk=pk)
        return subscription_proof(subscription=subscription)

    def proof_json_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        proof = self._proof(request, pk)
        response = JsonResponse(proof, json_dumps_params={"ensure_ascii": False, "indent": 2})
        response["Content-Disposition"] = f'attachment; filename="nachweis-{pk}.json"'
        return response

    def _proof_document(self, request: HttpRequest, pk: int) -> tuple[Subscription, ProofDocument]:
        if not self.has_view_permission(request):
            raise PermissionDenied
        subscription = get_object_or_404(Subscription.objects.select_related("newsletter"), pk=pk)
        return subscription, proof_document_build(subscription=subscription)

    def proof_print_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        subscription, document = self._proof_document(request, pk)
        return TemplateResponse(
            request,
            "newsletter/admin/proof.html",
            {
                "document": document,
                "subscription": subscription,
                "pdf_url": reverse("admin:newsletter_subscription_proof_pdf", args=[pk]),
                "json_url": reverse("admin:newsletter_subscription_proof_json", args=[pk]),
            },
        )

    def proof_pdf_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        _subscription, document = self._proof_document(request, pk)
        response = HttpResponse(proof_pdf_render(document=document), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="nachweis-{pk}.pdf"'
        return response

    @admin.action(description=_("Manuell widerrufen (mit Vermerk)"), permissions=["change"])
    def revoke_with_note(self, request: HttpRequest, queryset):
        form = RevokeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            revoked = 0
            for subscription in queryset:
                before = subscription.state
                result = subscription_revoke(
                    subscription_id=subscription.id,
                    channel=RevocationChannel.ADMIN,
                    note=form.cleaned_data["note"],
                    actor=request.user,
                )
                if result is not None and before != result.state:
                    revoked += 1
            self.message_user(
                request,
                _("%(count)d Abonnement(s) widerrufen.") % {"count": revoked},
                messages.SUCCESS,
            )
            return None
        return TemplateResponse(
            request,
            "newsletter/admin/revoke.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Manuell widerrufen"),
                "opts": self.model._meta,
                "subscriptions": queryset,
                "form": form,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description=_("CSV-Export der bestätigten Abonnements"), permissions=["view"])
    def export_confirmed_csv(self, request: HttpRequest, queryset):
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        # Streamed: "all N selected" over ten million rows never sits in memory at once.
        response = StreamingHttpResponse(
            subscription_export_csv(queryset=queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="abonnenten-{stamp}.csv"'
        return response

    def has_import_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("newsletter.import_subscriptions")

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_import": self.has_import_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request: HttpRequest) -> HttpResponse:
        return import_view(self, request)

    def import_job_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        return import_job_view(self, request, pk)

    @admin.action(description=_("Daten löschen (Art. 17 DSGVO)"), permissions=["change"])
    def erase_subscribers(self, request: HttpRequest, queryset):
        keys = {sub.address_hmac for sub in queryset if sub.address_hmac}
        erased = sum(
            subscriber_erase(
                address_hmac=key,
                channel=RevocationChannel.ADMIN,
                actor=request.user,
            )
            for key in keys
        )
        self.message_user(
            request, _("%(count)d Abonnement(s) gelöscht.") % {"count": erased}, messages.SUCCESS
        )


@admin.register(ConsentEvent)
class ConsentEventAdmin(
    AddressSearchMixin, LargeListMixin, WideListMixin, ReadOnlyMixin, admin.ModelAdmin
):
    list_display = ["at_short", "kind", "newsletter", "address", "way", "ip"]
    list_display_links = ["at_short"]
    list_filter = ["kind", "channel", "newsletter", "at"]
    search_fields = ["address_hmac"]
    search_help_text = _("Ganze Adresse (über ihren Schlüssel-Hash) oder den Hash selbst.")
    list_select_related = ["newsletter", "subscription"]

    @admin.display(description=_("Zeitpunkt"), ordering="at")
    def at_short(self, obj):
        return short_time(obj.at)

    @admin.display(description=_("E-Mail-Adresse"))
    def address(self, obj):
        # The newsletter has its own column; erased evidence keeps no subscription.
        return obj.subscription.email if obj.subscription else "–"

    @admin.display(description=_("Weg"))
    def way(self, obj):
        # A revocation names its channel, a signup the form it came through.
        return obj.get_channel_display() if obj.channel else obj.form or "–"


@admin.register(Suppression)
class SuppressionAdmin(
    AddressSearchMixin, LargeListMixin, WideListMixin, ReadOnlyMixin, admin.ModelAdmin
):
    list_display = ["address_hmac", "reason", "created_at"]
    list_filter = ["reason"]
    search_fields = ["address_hmac"]
    search_help_text = _("Ganze Adresse (über ihren Schlüssel-Hash) oder den Hash selbst.")
