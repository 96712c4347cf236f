"""The send workflow digests and campaigns share: preview → test → checklist → confirm.

Each step works on a mailing *draft* (an unsaved Digest row from newsletter/drafts.py), so a
manager sees, tests and counts a mailing before anything exists for sending. Confirming is
the one step that writes: digest_start_now or campaign_send. The pages are the ModelAdmins'
own custom views; each checks its permission before it reads anything.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

from newsletter.emails.digest import digest_language, mailing_preview_html
from newsletter.models import Digest, MailingKind, Subscription
from newsletter.selectors.mailings import mailing_audience_languages, mailing_audience_of
from newsletter.services.mailings import mailing_test_addresses_parse, mailing_test_send

# Newest subscriptions offered for a preview as a subscriber.
SUBSCRIBERS_SHOWN = 50
LANGUAGES = (("de", "Deutsch"), ("en", "English"))


class TestSendForm(forms.Form):
    addresses = forms.CharField(
        label=_("Testadressen"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text=_("Bis zu zehn Adressen, durch Komma oder Zeilenumbruch getrennt."),
    )
    language = forms.ChoiceField(
        label=_("Sprache"), choices=LANGUAGES, initial="de", required=False
    )

    def clean_language(self) -> str:
        return self.cleaned_data["language"] or "de"

    def clean_addresses(self) -> list[str]:
        return mailing_test_addresses_parse(self.cleaned_data["addresses"])


def can_preview_as_subscriber(request: HttpRequest) -> bool:
    # The choice of subscriber lists addresses: only for those who may read them anyway.
    return request.user.has_perms(
        ["newsletter.preview_as_subscriber", "newsletter.view_subscription"]
    )


def can_send_test(request: HttpRequest) -> bool:
    return request.user.has_perm("newsletter.send_test_digest")


def workflow_context(
    model_admin: ModelAdmin, request: HttpRequest, *, draft: Digest, test_form=None
) -> dict:
    """Everything the workflow page shows about a draft: what, from whom, to how many, when."""
    as_subscriber = can_preview_as_subscriber(request)
    subscriptions = []
    if as_subscriber:
        subscriptions = Subscription.objects.filter(newsletter=draft.newsletter).order_by("-id")[
            :SUBSCRIBERS_SHOWN
        ]
    newsletter = draft.newsletter
    by_language = mailing_audience_languages(mailing_audience_of(draft))
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "draft": draft,
        "is_campaign": draft.kind == MailingKind.CAMPAIGN,
        "segment_topics": [str(t) for t in draft.campaign.segment_topics.all()]
        if draft.kind == MailingKind.CAMPAIGN
        else [],
        "recipient_count": by_language["de"] + by_language["en"],
        "recipients_de": by_language["de"],
        "recipients_en": by_language["en"],
        # What English readers get in the subject line (the German one where no English exists).
        "subject_en": draft.subject_for("en"),
        "english_falls_back": draft.kind == MailingKind.CAMPAIGN and not draft.subject_en,
        "sender": f"{newsletter.sender_name} <{newsletter.sender_email}>",
        "send_at": draft.slot,
        "sends_later": draft.slot > timezone.now(),
        "nothing_to_send": draft.kind == MailingKind.DIGEST and not draft.article_ids,
        "can_preview_as_subscriber": as_subscriber,
        "subscriptions": subscriptions,
        "can_send_test": can_send_test(request),
        "test_form": test_form
        or TestSendForm(initial={"addresses": request.user.email, "language": "de"}),
    }


def preview_response(
    model_admin: ModelAdmin, request: HttpRequest, *, draft: Digest, back_url: str
) -> HttpResponse:
    """The mail as a reader of a language, or as one subscriber, at desktop and phone width,
    with inert links (nothing personal is ever shown as a working link)."""
    raw = request.GET.get("subscription", "")
    subscription = None
    if raw:
        if not can_preview_as_subscriber(request):
            raise PermissionDenied
        if not raw.isdigit() or len(raw) > 18:
            return HttpResponseBadRequest(
                _("Ungültige Abonnement-Nummer."), content_type="text/plain; charset=utf-8"
            )
        subscription = get_object_or_404(Subscription, pk=int(raw), newsletter=draft.newsletter)
    language = digest_language(
        subscription.language if subscription else request.GET.get("language")
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "draft": draft,
        "subscription": subscription,
        "language_name": get_language_info(language)["name_local"],
        "preview_html": mailing_preview_html(
            digest=draft,
            language=language,
            confirmed_at=subscription.confirmed_at if subscription else None,
        ),
        "back_url": back_url,
        "title": _("Vorschau: %(subject)s") % {"subject": draft.subject_for(language)},
    }
    return TemplateResponse(request, "admin/newsletter/mailing/preview.html", context)


def test_send_handle(model_admin: ModelAdmin, request: HttpRequest, *, draft: Digest):
    """Send the draft to the posted test addresses; returns the bound form (errors shown on
    the workflow page) or None once sent."""
    if not can_send_test(request):
        raise PermissionDenied
    form = TestSendForm(request.POST)
    if not form.is_valid():
        return form
    try:
        sent = mailing_test_send(
            digest=draft,
            addresses=form.cleaned_data["addresses"],
            language=form.cleaned_data["language"],
        )
    except (OSError, ValidationError) as exc:
        model_admin.message_user(
            request, _("Test nicht gesendet: %(error)s") % {"error": exc}, messages.ERROR
        )
        return form
    model_admin.message_user(
        request,
        _("Test an %(addresses)s gesendet (%(count)d Mails).")
        % {"addresses": ", ".join(form.cleaned_data["addresses"]), "count": sent},
    )
    return None
