"""Consent texts: immutable, versioned declarations shown at signup."""

from __future__ import annotations

import hashlib

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from articles.caching import content_generation_bump
from newsletter.models import (
    ConsentText,
    Newsletter,
)
from newsletter.services.consent.events import (
    language_or_default,
)

# The seed's declaration, verbatim; only the sentence around it names the newsletter. Each
# text names the button as the signup box labels it in that language.
DEFAULT_CONSENT_TEXTS = {
    "de": (
        "Melden Sie sich hier für den kostenfreien Newsletter „{name}“ an.\n\n"
        "Durch Eingabe Ihrer E-Mail-Adresse und Anklicken des Buttons „Abschicken“ geben Sie "
        "die folgende Einwilligungserklärung ab: „Ich bin damit einverstanden, per E-Mail über "
        "Produktneuheiten, spannende Finanznachrichten und exklusive Sonderangebote informiert "
        "zu werden und willige daher in die Verarbeitung meiner E-Mail-Adresse zum Zwecke der "
        "Zusendung des Newsletters ein. Diese Einwilligung kann ich jederzeit und ohne Angabe "
        "von Gründen mit Wirkung für die Zukunft widerrufen. Die Rechtmäßigkeit der bis zum "
        "Widerruf erfolgten Verarbeitung bleibt im Falle des Widerrufs unberührt.“"
    ),
    "en": (
        "Sign up here for the free newsletter “{name}”.\n\n"
        "By entering your e-mail address and clicking the “Submit” button you give "
        "the following declaration of consent: “I agree to be informed by e-mail about new "
        "products, exciting financial news and exclusive special offers and therefore consent "
        "to the processing of my e-mail address for the purpose of sending the newsletter. I "
        "can withdraw this consent at any time and without giving reasons with effect for the "
        "future. The lawfulness of the processing carried out until the withdrawal remains "
        "unaffected in the event of withdrawal.”"
    ),
}


def consent_text_publish(*, newsletter: Newsletter, language: str, text: str) -> ConsentText:
    """Publish a consent text as a new immutable version; the same wording returns the current."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ValidationError(_("Der Einwilligungstext darf nicht leer sein."), code="empty")
    language = language_or_default(language, fallback=newsletter.language)
    with transaction.atomic():
        # The newsletter row serialises version numbers between two editors saving at once.
        Newsletter.objects.select_for_update().filter(id=newsletter.id).first()
        current = (
            ConsentText.objects.filter(newsletter=newsletter, language=language)
            .order_by("-version")
            .first()
        )
        if current is not None and current.text == text:
            return current
        # Public pages embed the signup box with its text: they must show the new version.
        transaction.on_commit(content_generation_bump)
        return ConsentText.objects.create(
            newsletter=newsletter,
            language=language,
            version=(current.version + 1) if current else 1,
            text=text,
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )


def consent_text_default_publish(*, newsletter: Newsletter) -> list[ConsentText]:
    """Give a newsletter the default German and English texts where it has none yet."""
    published = []
    for language, template in DEFAULT_CONSENT_TEXTS.items():
        if not ConsentText.objects.filter(newsletter=newsletter, language=language).exists():
            published.append(
                consent_text_publish(
                    newsletter=newsletter,
                    language=language,
                    text=template.format(name=newsletter.name),
                )
            )
    return published


def newsletter_texts_save(*, newsletter: Newsletter, texts: dict[str, str]) -> None:
    """After an editor saved a newsletter: publish the texts they wrote (blank ones are left
    as they are), give it the default texts where it has none, and let the public pages show
    the new name, description or texts."""
    for language, text in texts.items():
        if text.strip():
            consent_text_publish(newsletter=newsletter, language=language, text=text)
    consent_text_default_publish(newsletter=newsletter)
    transaction.on_commit(content_generation_bump)
