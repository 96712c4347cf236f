"""Forms of the public consent pages; each validates in clean_* and a view calls one service."""

from __future__ import annotations

import time

from django import forms
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from articles.selectors import topic_list_all
from newsletter.addresses import address_validate
from newsletter.models import ConsentText, Newsletter
from newsletter.selectors.consent import consent_text_current

STARTED_SALT = "newsletter.signup-started"
# A form older than this has sat in a tab for a day; ask for a fresh one.
STARTED_MAX_AGE = 24 * 3600


def form_started_token() -> str:
    """A signed timestamp for the hidden field that measures how long the form was open."""
    return signing.dumps(f"{time.time():.3f}", salt=STARTED_SALT)


class AddressField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 320)
        kwargs.setdefault("label", _("E-Mail-Adresse"))
        kwargs.setdefault(
            "widget",
            forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
        )
        super().__init__(**kwargs)

    def clean(self, value):
        return address_validate(super().clean(value))


class BotCheckForm(forms.Form):
    """Honeypot plus minimum fill time; a filled honeypot is answered like a success."""

    website = forms.CharField(
        required=False, max_length=200, label=_("Bitte dieses Feld leer lassen")
    )
    started = forms.CharField(widget=forms.HiddenInput, max_length=200)

    def clean_started(self) -> float:
        try:
            started = float(
                signing.loads(
                    self.cleaned_data["started"], salt=STARTED_SALT, max_age=STARTED_MAX_AGE
                )
            )
        except (signing.BadSignature, ValueError, TypeError) as exc:
            raise ValidationError(
                _("Das Formular ist abgelaufen. Bitte senden Sie es noch einmal ab."),
                code="form_expired",
            ) from exc
        if time.time() - started < settings.NEWSLETTER_SIGNUP_MIN_SECONDS:
            raise ValidationError(
                _(
                    "Das ging sehr schnell – so schnell sind sonst nur Programme. Ihre Angaben "
                    "sind noch da: Bitte senden Sie das Formular in ein paar Sekunden noch "
                    "einmal ab."
                ),
                code="too_fast",
            )
        return started

    @property
    def is_bot(self) -> bool:
        return bool(self.cleaned_data.get("website"))


class SignupForm(BotCheckForm):
    email = AddressField()
    newsletter = forms.SlugField(widget=forms.HiddenInput, max_length=80)
    consent_text = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=1)
    page = forms.CharField(widget=forms.HiddenInput, required=False, max_length=500)

    field_order = ["email", "website", "newsletter", "consent_text", "page", "started"]

    def clean_newsletter(self) -> Newsletter:
        newsletter = Newsletter.objects.filter(
            slug=self.cleaned_data["newsletter"], is_active=True
        ).first()
        if newsletter is None:
            raise ValidationError(_("Diesen Newsletter gibt es nicht."), code="unknown_newsletter")
        return newsletter

    def clean_page(self) -> str:
        """Only a path on this site is evidence of where the form was; anything else is dropped."""
        page = self.cleaned_data.get("page") or ""
        if not page.startswith("/") or page.startswith("//") or not page.isprintable():
            return ""
        return f"{settings.SITE_URL}{page}"

    def clean(self):
        cleaned = super().clean()
        newsletter = cleaned.get("newsletter")
        text_id = cleaned.get("consent_text")
        cleaned["consent_text_obj"] = (
            ConsentText.objects.filter(id=text_id, newsletter=newsletter).first()
            if newsletter and text_id
            else None
        )
        return cleaned


class PreferencesLinkForm(BotCheckForm):
    email = AddressField()


class TopicChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        return obj.name_for(get_language() or "de")


class PreferencesForm(forms.Form):
    """The preference centre's switches, built from the reader's subscriptions."""

    language = forms.ChoiceField(label=_("Sprache der Mails"), choices=settings.LANGUAGES)
    topics = TopicChoiceField(
        label=_("Themen, die Sie besonders interessieren"),
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Manche Mailings gehen nur an Leser dieser Themen."),
    )

    def __init__(self, *args, newsletters, subscriptions, chosen_topics=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["topics"].queryset = topic_list_all()
        # The choice is the reader's, kept on each subscription: one set shown for all of them.
        self.initial.setdefault("topics", list(chosen_topics))
        self.newsletters = list(newsletters)
        by_newsletter = {sub.newsletter_id: sub for sub in subscriptions}
        self.rows = []
        for newsletter in self.newsletters:
            sub = by_newsletter.get(newsletter.id)
            name = f"nl_{newsletter.id}"
            self.fields[name] = forms.BooleanField(required=False, label=newsletter.name)
            active = sub is not None and sub.state in ("pending", "confirmed")
            self.initial.setdefault(name, active)
            freq_name = ""
            if sub is not None and newsletter.offers_daily and newsletter.offers_weekly:
                freq_name = f"freq_{newsletter.id}"
                self.fields[freq_name] = forms.ChoiceField(
                    required=False,
                    label=_("Häufigkeit"),
                    choices=[("daily", _("täglich")), ("weekly", _("wöchentlich"))],
                )
                self.initial.setdefault(freq_name, sub.frequency)
            self.rows.append(
                {
                    # Subscribing here is consent to this newsletter's own text: show it.
                    "consent_text": None
                    if active
                    else consent_text_current(
                        newsletter=newsletter, language=get_language() or "de"
                    ),
                    "newsletter": newsletter,
                    "subscription": sub,
                    "field": self[name],
                    "frequency": self[freq_name] if freq_name else None,
                }
            )
