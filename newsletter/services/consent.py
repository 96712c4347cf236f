"""Writes of the consent ledger: one service per transition, each with its evidence.

Every transition locks the subscription row, checks the state, changes it and writes its
ConsentEvent in the same transaction. Mail is enqueued after commit. Repeating a transition
returns the current state and writes nothing new.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from newsletter.addresses import address_hmac, address_validate
from newsletter.models import (
    ConsentEvent,
    ConsentEventKind,
    ConsentText,
    Frequency,
    Newsletter,
    RevocationChannel,
    Subscription,
    SubscriptionState,
    Suppression,
)
from newsletter.selectors.consent import consent_text_current

logger = logging.getLogger(__name__)

CONFIRMATION_RESEND_AFTER = timedelta(hours=24)
CONFIRMATION_MAX_SENDS = 3
LAPSED_STATES = (SubscriptionState.UNSUBSCRIBED, SubscriptionState.SUPPRESSED)

# The seed's declaration, verbatim; only the sentence around it names the newsletter.
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
        "By entering your e-mail address and clicking the “Abschicken” (submit) button you give "
        "the following declaration of consent: “I agree to be informed by e-mail about new "
        "products, exciting financial news and exclusive special offers and therefore consent "
        "to the processing of my e-mail address for the purpose of sending the newsletter. I "
        "can withdraw this consent at any time and without giving reasons with effect for the "
        "future. The lawfulness of the processing carried out until the withdrawal remains "
        "unaffected in the event of withdrawal.”"
    ),
}


def _clean_line(value: str | None, max_length: int) -> str:
    """Evidence fields hold one line: control characters would forge or break a proof print."""
    value = "".join(
        " " if ch in "\r\n\t" else ch for ch in (value or "") if ch.isprintable() or ch in "\r\n\t"
    )
    return value.strip()[:max_length]


def _clean_ip(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((value or "").strip()))
    except ValueError:
        return None


def _language(value: str | None, *, fallback: str) -> str:
    codes = {code for code, _name in settings.LANGUAGES}
    return value if value in codes else (fallback if fallback in codes else "de")


def _event(*, subscription: Subscription, kind: str, at: datetime, **fields: Any) -> ConsentEvent:
    return ConsentEvent.objects.create(
        subscription=subscription,
        newsletter_id=subscription.newsletter_id,
        address_hmac=subscription.address_hmac,
        kind=kind,
        at=at,
        **fields,
    )


def _locked(subscription_id: int) -> Subscription | None:
    return (
        Subscription.objects.select_for_update()
        .select_related("newsletter")
        .filter(id=subscription_id)
        .first()
    )


def consent_text_publish(*, newsletter: Newsletter, language: str, text: str) -> ConsentText:
    """Publish a consent text as a new immutable version; the same wording returns the current."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise ValidationError(_("Der Einwilligungstext darf nicht leer sein."), code="empty")
    language = _language(language, fallback=newsletter.language)
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


def subscription_request(
    *,
    address: str,
    newsletter: Newsletter,
    ip: str | None,
    user_agent: str,
    url: str,
    form: str,
    language: str,
    consent_text: ConsentText | None = None,
) -> Subscription:
    """Record a signup with the text shown; a new or lapsed address becomes pending and is sent
    a confirmation after commit. Pending addresses get it again within the resend limits."""
    from newsletter.tasks.consent import subscription_confirmation_send_task

    email = address_validate(address)
    key = address_hmac(email)
    language = _language(language, fallback=newsletter.language)
    if consent_text is None or consent_text.newsletter_id != newsletter.id:
        consent_text = consent_text_current(newsletter=newsletter, language=language)
    if consent_text is None:
        raise ValidationError(
            _("Für diesen Newsletter ist keine Einwilligungserklärung hinterlegt."),
            code="no_consent_text",
        )
    frequency = Frequency.DAILY if newsletter.offers_daily else Frequency.WEEKLY
    now = timezone.now()
    with transaction.atomic():
        subscription, created = (
            Subscription.objects.select_for_update()
            .select_related("newsletter")
            .get_or_create(
                newsletter=newsletter,
                address_hmac=key,
                defaults={
                    "email": email,
                    "language": language,
                    "frequency": frequency,
                    "state": SubscriptionState.PENDING,
                    "requested_at": now,
                },
            )
        )
        if not created and subscription.state == SubscriptionState.CONFIRMED:
            return subscription
        if not created and subscription.state == SubscriptionState.PENDING:
            subscription_confirmation_send_task.delay_on_commit(subscription.id)
            return subscription
        if not created:
            # A lapsed subscription starts a new opt-in round; older confirm links go stale.
            subscription.email = email
            subscription.language = language
            subscription.state = SubscriptionState.PENDING
            subscription.requested_at = now
            subscription.confirm_round += 1
            subscription.confirmation_sends = 0
            subscription.last_confirmation_sent_at = None
            subscription.save()
        _event(
            subscription=subscription,
            kind=ConsentEventKind.REQUESTED,
            at=now,
            ip=_clean_ip(ip),
            user_agent=_clean_line(user_agent, 500),
            url=_clean_line(url, 500),
            form=_clean_line(form, 80),
            consent_text=consent_text,
            text_sha256=consent_text.sha256,
            note=f"language={language}",
        )
        subscription_confirmation_send_task.delay_on_commit(subscription.id)
    return subscription


def subscription_confirmation_send(*, subscription_id: int) -> bool:
    """Mail the confirm link to a pending subscription, at most once per 24 h and three times
    in all per round; records the message id. False when nothing was sent."""
    from newsletter.emails.consent import confirmation_message_build, message_id_of

    now = timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription_id)
        if subscription is None or subscription.state != SubscriptionState.PENDING:
            return False
        if subscription.confirmation_sends >= CONFIRMATION_MAX_SENDS:
            return False
        last = subscription.last_confirmation_sent_at
        if last is not None and now - last < CONFIRMATION_RESEND_AFTER:
            return False
        message = confirmation_message_build(subscription=subscription)
        # Sent under the row lock: a second run of the task waits and then finds it sent.
        message.send()
        subscription.confirmation_sends += 1
        subscription.last_confirmation_sent_at = now
        subscription.save(update_fields=["confirmation_sends", "last_confirmation_sent_at"])
        _event(
            subscription=subscription,
            kind=ConsentEventKind.CONFIRMATION_SENT,
            at=now,
            message_id=message_id_of(message)[:255],
        )
    return True


def subscription_confirm(
    *, subscription_id: int, confirm_round: int, ip: str | None, user_agent: str
) -> Subscription:
    """Complete the double opt-in of the link's round; lifts a suppression of the address.
    Confirming again returns the confirmed subscription and writes nothing."""
    from newsletter.tasks.consent import subscription_welcome_send_task

    now = timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription_id)
        if subscription is None:
            raise ValidationError(
                _("Diese Anmeldung gibt es nicht mehr. Bitte melden Sie sich erneut an."),
                code="unknown",
            )
        if subscription.state == SubscriptionState.CONFIRMED:
            return subscription
        if (
            subscription.state != SubscriptionState.PENDING
            or subscription.confirm_round != confirm_round
        ):
            raise ValidationError(
                _("Dieser Bestätigungslink gilt nicht mehr. Bitte melden Sie sich erneut an."),
                code="stale",
            )
        subscription.state = SubscriptionState.CONFIRMED
        subscription.confirmed_at = now
        subscription.unsubscribed_at = None
        subscription.soft_bounces = 0
        subscription.save()
        lifted, _detail = Suppression.objects.filter(
            address_hmac=subscription.address_hmac
        ).delete()
        _event(
            subscription=subscription,
            kind=ConsentEventKind.CONFIRMED,
            at=now,
            ip=_clean_ip(ip),
            user_agent=_clean_line(user_agent, 500),
            note="suppression lifted" if lifted else "",
        )
        if subscription.newsletter.welcome_mail:
            subscription_welcome_send_task.delay_on_commit(subscription.id)
    return subscription


def subscription_revoke(
    *,
    subscription_id: int,
    channel: str,
    note: str = "",
    ip: str | None = None,
    user_agent: str = "",
) -> Subscription | None:
    """Withdraw consent with effect from commit; nothing is mailed to it afterwards.
    Revoking again (or an erased subscription) writes nothing."""
    if channel not in RevocationChannel.values:
        raise ValueError(f"unknown revocation channel {channel!r}")
    now = timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription_id)
        if subscription is None or subscription.state in LAPSED_STATES:
            return subscription
        subscription.state = SubscriptionState.UNSUBSCRIBED
        subscription.unsubscribed_at = now
        subscription.save(update_fields=["state", "unsubscribed_at"])
        _event(
            subscription=subscription,
            kind=ConsentEventKind.REVOKED,
            at=now,
            channel=channel,
            note=note.strip()[:2000],
            ip=_clean_ip(ip),
            user_agent=_clean_line(user_agent, 500),
        )
    return subscription


def subscription_suppress(
    *, subscription_id: int, reason: str, channel: str, note: str = ""
) -> Subscription | None:
    """Stop mail to an address after a bounce or complaint: every live subscription of the
    address becomes suppressed and the address's hash goes on the suppression list."""
    if channel not in RevocationChannel.values:
        raise ValueError(f"unknown channel {channel!r}")
    now = timezone.now()
    with transaction.atomic():
        subscription = _locked(subscription_id)
        if subscription is None:
            return None
        key = subscription.address_hmac or address_hmac(subscription.email)
        Suppression.objects.get_or_create(address_hmac=key, defaults={"reason": reason[:40]})
        siblings = list(
            Subscription.objects.select_for_update()
            .filter(address_hmac=key)
            .exclude(state__in=LAPSED_STATES)
            .order_by("id")
        )
        if subscription.state not in LAPSED_STATES and subscription not in siblings:
            siblings.append(subscription)
        for sibling in siblings:
            sibling.state = SubscriptionState.SUPPRESSED
            sibling.unsubscribed_at = now
            sibling.save(update_fields=["state", "unsubscribed_at"])
            _event(
                subscription=sibling,
                kind=ConsentEventKind.SUPPRESSED,
                at=now,
                channel=channel,
                note=f"{reason}: {note}".strip(": ")[:2000],
            )
        subscription.refresh_from_db()
    return subscription


def subscription_preferences_change(
    *, subscription_id: int, language: str | None = None, frequency: str | None = None
) -> Subscription | None:
    """Change language or frequency (only one the newsletter offers); records what changed."""
    with transaction.atomic():
        subscription = _locked(subscription_id)
        if subscription is None:
            return None
        newsletter = subscription.newsletter
        changes = []
        if language is not None:
            language = _language(language, fallback=subscription.language)
            if language != subscription.language:
                changes.append(f"language: {subscription.language} → {language}")
                subscription.language = language
        if frequency is not None and frequency != subscription.frequency:
            offered = {
                Frequency.DAILY: newsletter.offers_daily,
                Frequency.WEEKLY: newsletter.offers_weekly,
            }
            if not offered.get(frequency, False):
                raise ValidationError(
                    _("Diese Häufigkeit bietet der Newsletter nicht an."), code="frequency"
                )
            changes.append(f"frequency: {subscription.frequency} → {frequency}")
            subscription.frequency = frequency
        if not changes:
            return subscription
        subscription.save(update_fields=["language", "frequency"])
        _event(
            subscription=subscription,
            kind=ConsentEventKind.PREFERENCES_CHANGED,
            at=timezone.now(),
            channel=RevocationChannel.PREFERENCES,
            note="; ".join(changes),
        )
    return subscription


def _event_as_dict(event: ConsentEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "newsletter": event.newsletter.slug,
        "kind": event.kind,
        "at": event.at.isoformat(),
        "ip": event.ip,
        "user_agent": event.user_agent,
        "url": event.url,
        "form": event.form,
        "channel": event.channel,
        "consent_text": (
            {
                "version": event.consent_text.version,
                "language": event.consent_text.language,
                "text": event.consent_text.text,
            }
            if event.consent_text
            else None
        ),
        "text_sha256": event.text_sha256,
        "message_id": event.message_id,
        "note": event.note,
    }


def subscription_proof(*, subscription: Subscription) -> dict[str, Any]:
    """The evidence of one subscription as stored (nothing recomputed), for print and JSON."""
    events = (
        ConsentEvent.objects.filter(subscription=subscription)
        .select_related("newsletter", "consent_text")
        .order_by("at", "id")
    )
    return {
        "email": subscription.email,
        "address_hmac": subscription.address_hmac,
        "newsletter": {"slug": subscription.newsletter.slug, "name": subscription.newsletter.name},
        "state": subscription.state,
        "language": subscription.language,
        "frequency": subscription.frequency,
        "created_at": subscription.created_at.isoformat(),
        "confirmed_at": subscription.confirmed_at.isoformat()
        if subscription.confirmed_at
        else None,
        "unsubscribed_at": subscription.unsubscribed_at.isoformat()
        if subscription.unsubscribed_at
        else None,
        "events": [_event_as_dict(event) for event in events],
    }


def subscriber_export(*, address_hmac: str) -> dict[str, Any]:
    """Everything stored about an address (Art. 15/20), including its consent log; each
    exported subscription records an `exported` event."""
    now = timezone.now()
    with transaction.atomic():
        subscriptions = list(
            Subscription.objects.select_for_update()
            .select_related("newsletter")
            .filter(address_hmac=address_hmac)
            .order_by("id")
        )
        events = list(
            ConsentEvent.objects.filter(address_hmac=address_hmac)
            .select_related("newsletter", "consent_text")
            .order_by("at", "id")
        )
        data = {
            "exported_at": now.isoformat(),
            "address": subscriptions[0].email if subscriptions else None,
            "suppressed": Suppression.objects.filter(address_hmac=address_hmac).exists(),
            "subscriptions": [
                {
                    "newsletter": {"slug": sub.newsletter.slug, "name": sub.newsletter.name},
                    "email": sub.email,
                    "state": sub.state,
                    "language": sub.language,
                    "frequency": sub.frequency,
                    "created_at": sub.created_at.isoformat(),
                    "requested_at": sub.requested_at.isoformat() if sub.requested_at else None,
                    "confirmed_at": sub.confirmed_at.isoformat() if sub.confirmed_at else None,
                    "unsubscribed_at": sub.unsubscribed_at.isoformat()
                    if sub.unsubscribed_at
                    else None,
                    "confirmation_sends": sub.confirmation_sends,
                    "last_mailed_at": sub.last_mailed_at.isoformat()
                    if sub.last_mailed_at
                    else None,
                }
                for sub in subscriptions
            ],
            "consent_log": [_event_as_dict(event) for event in events],
        }
        for sub in subscriptions:
            _event(
                subscription=sub,
                kind=ConsentEventKind.EXPORTED,
                at=now,
                channel=RevocationChannel.PREFERENCES,
            )
    return data


def subscriber_erase(
    *, address_hmac: str, channel: str = RevocationChannel.PREFERENCES, note: str = ""
) -> int:
    """Erase an address at once (Art. 17): its subscriptions go, the evidence stays
    pseudonymised (hash only, no IP or user agent) and the hash goes on the suppression list."""
    now = timezone.now()
    with transaction.atomic():
        subscriptions = list(
            Subscription.objects.select_for_update()
            .filter(address_hmac=address_hmac)
            .order_by("id")
        )
        if not subscriptions:
            return 0
        ConsentEvent.objects.filter(address_hmac=address_hmac).update(ip=None, user_agent="")
        for sub in subscriptions:
            ConsentEvent.objects.create(
                subscription=None,
                newsletter_id=sub.newsletter_id,
                address_hmac=address_hmac,
                kind=ConsentEventKind.ERASED,
                at=now,
                channel=channel,
                note=note.strip()[:2000],
            )
        Subscription.objects.filter(id__in=[sub.id for sub in subscriptions]).delete()
        Suppression.objects.get_or_create(address_hmac=address_hmac, defaults={"reason": "erasure"})
    return len(subscriptions)


def preferences_link_send(*, address_hmac: str) -> bool:
    """Mail the preference-centre link to an address we hold; False when we hold none."""
    from newsletter.emails.consent import preferences_link_message_build

    subscription = (
        Subscription.objects.select_related("newsletter")
        .filter(address_hmac=address_hmac)
        .order_by("id")
        .first()
    )
    if subscription is None:
        return False
    preferences_link_message_build(subscription=subscription).send()
    return True


def subscription_welcome_send(*, subscription_id: int) -> bool:
    """Send the optional welcome mail once after confirmation; False when not due."""
    from newsletter.emails.consent import message_id_of, welcome_message_build

    with transaction.atomic():
        subscription = _locked(subscription_id)
        if (
            subscription is None
            or subscription.state != SubscriptionState.CONFIRMED
            or not subscription.newsletter.welcome_mail
        ):
            return False
        # The welcome mail of this confirmation already went out when one was mailed since.
        if subscription.last_mailed_at and subscription.last_mailed_at >= subscription.confirmed_at:
            return False
        message = welcome_message_build(subscription=subscription)
        message.send()
        subscription.last_mailed_at = timezone.now()
        subscription.save(update_fields=["last_mailed_at"])
        logger.info("welcome mail %s to subscription %s", message_id_of(message), subscription.id)
    return True


def consent_retention_run(*, now: datetime | None = None) -> dict[str, int]:
    """Delete unconfirmed signups after the token lifetime and the evidence of revoked or
    erased subscriptions after the retention period; returns and logs the counts."""
    now = now or timezone.now()
    pending_cutoff = now - timedelta(seconds=settings.NEWSLETTER_CONFIRM_MAX_AGE)
    evidence_cutoff = now - timedelta(days=settings.NEWSLETTER_RETENTION_DAYS)
    counts = {"pending": 0, "revoked": 0, "erased_events": 0, "suppressions": 0}
    with transaction.atomic():
        # Never-confirmed signups hold no consent worth proving; a lapsed subscription that
        # was asked again keeps its older evidence until its own retention ends.
        stale_pending = Subscription.objects.filter(
            state=SubscriptionState.PENDING,
            confirmed_at__isnull=True,
            unsubscribed_at__isnull=True,
            requested_at__lt=pending_cutoff,
        )
        ConsentEvent.objects.filter(subscription__in=stale_pending).delete()
        _total, _detail = stale_pending.delete()
        counts["pending"] = _detail.get("newsletter.Subscription", 0)

        revoked = Subscription.objects.filter(
            state__in=LAPSED_STATES, unsubscribed_at__lt=evidence_cutoff
        )
        ConsentEvent.objects.filter(subscription__in=revoked).delete()
        _total, _detail = revoked.delete()
        counts["revoked"] = _detail.get("newsletter.Subscription", 0)

        erased = ConsentEvent.objects.filter(
            kind=ConsentEventKind.ERASED, subscription__isnull=True, at__lt=evidence_cutoff
        ).values_list("address_hmac", "newsletter_id", "at")
        for key, newsletter_id, erased_at in list(erased):
            deleted, _detail = ConsentEvent.objects.filter(
                subscription__isnull=True,
                address_hmac=key,
                newsletter_id=newsletter_id,
                at__lte=erased_at,
            ).delete()
            counts["erased_events"] += deleted
        # Bounce and complaint entries protect the sender and stay; erasure entries end with
        # the evidence they belong to.
        counts["suppressions"], _detail = Suppression.objects.filter(
            reason="erasure", created_at__lt=evidence_cutoff
        ).delete()
    logger.info("consent retention: %s", counts)
    return counts
