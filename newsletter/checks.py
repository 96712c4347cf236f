"""Deployment checks (`manage.py check --deploy`): a provider's tracking webhook that anyone
could post to would let anyone suppress the list, so production refuses to pass without the
webhook secret and, where the provider signs its webhooks, without the key to verify them."""

from __future__ import annotations

import importlib.util

from anymail.utils import get_anymail_setting
from django.conf import settings
from django.core import checks

# For anymail 13: the providers whose tracking webhook verifies a signature, as
# (anymail's name of the provider, the setting anymail reads the key from, the package the
# verification needs). Postmark, Brevo, SparkPost, Mailjet and Amazon SES send no signature
# anymail could check: basic auth (ANYMAIL_WEBHOOK_SECRET) is all there is.
WEBHOOK_SIGNATURES = {
    "mailgun": ("Mailgun", "webhook_signing_key", None),
    "mailersend": ("MailerSend", "signing_secret", None),
    "mandrill": ("Mandrill", "webhook_key", None),
    "postal": ("Postal", "webhook_key", "cryptography"),
    "resend": ("Resend", "signing_secret", "svix"),
    "sendgrid": ("SendGrid", "tracking_webhook_verification_key", "cryptography"),
    "unisender_go": ("Unisender Go", "api_key", None),
}
# anymail has no tracking webhook for these: there is nothing to protect.
WITHOUT_TRACKING_WEBHOOK = {"scaleway"}


@checks.register(checks.Tags.security, deploy=True)
def webhook_authentication_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """An ESP without a webhook secret, or without the signing key its webhooks are signed
    with, is an error: its tracking URL would take bounces and complaints from anyone."""
    esp = getattr(settings, "ANYMAIL_ESP", "")
    if not esp or esp in WITHOUT_TRACKING_WEBHOOK:
        return []
    errors: list[checks.CheckMessage] = []
    if not get_anymail_setting("webhook_secret", default=None, allow_bare=True):
        errors.append(
            checks.Error(
                f"ANYMAIL_ESP is {esp!r} but ANYMAIL_WEBHOOK_SECRET is not set: anyone could "
                "post bounces and complaints to its tracking webhook and suppress the list.",
                hint="Set ANYMAIL_WEBHOOK_SECRET=user:password and put it into the webhook "
                "URL at the provider (README, 'Sending mail: ESPs').",
                id="newsletter.E001",
            )
        )
    if esp in WEBHOOK_SIGNATURES:
        esp_name, key_name, package = WEBHOOK_SIGNATURES[esp]
        setting = f"{esp_name.upper().replace(' ', '_')}_{key_name.upper()}"
        if not get_anymail_setting(key_name, esp_name=esp_name, default=None, allow_bare=True):
            errors.append(
                checks.Error(
                    f"ANYMAIL_ESP is {esp!r} but anymail's {setting} is not set: the "
                    "signatures of its tracking webhooks cannot be verified.",
                    hint="Set ANYMAIL_WEBHOOK_SIGNING_KEY to the provider's webhook signing "
                    "or verification key (README, 'Sending mail: ESPs').",
                    id="newsletter.E002",
                )
            )
        elif package and importlib.util.find_spec(package) is None:
            errors.append(
                checks.Error(
                    f"ANYMAIL_ESP is {esp!r}: verifying its webhook signatures needs the "
                    f"package {package!r}, which is not installed.",
                    hint=f"Install django-anymail[{esp}].",
                    id="newsletter.E003",
                )
            )
    return errors
