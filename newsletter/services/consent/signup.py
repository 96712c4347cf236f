"""Double opt-in: the signup request, the confirm mail, the confirmation and the welcome mail."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from newsletter.addresses import address_hmac, address_validate
from newsletter.emails.consent import (
    confirmation_message_build,
    message_id_of,
    welcome_message_build,
)
from newsletter.enqueue import (
    CONFIRMATION_SEND,
    SIGNUP_REQUEST_APPLY,
    WELCOME_SEND,
    task_enqueue_on_commit,
)
from newsletter.models import (
    ConsentEventKind,
    ConsentText,
    Frequency,
    Newsletter,
    SignupRequest,
    Subscription,
    SubscriptionState,
    Suppression,
)
from newsletter.selectors.consent import address_refuses_mail, consent_text_current
from newsletter.services.consent.events import (
    clean_ip,
    clean_line,
    event_record,
    language_or_default,
    subscription_locked,
)

logger = logging.getLogger(__name__)


CONFIRMATION_RESEND_AFTER = timedelta(hours=24)


CONFIRMATION_MAX_SENDS = 3


def _consent_text_shown(
    *, newsletter: Newsletter, language: str, consent_text: ConsentText | None
) -> ConsentText:
    if consent_text is None or consent_text.newsletter_id != newsletter.id:
        consent_text = consent_text_current(newsletter=newsletter, language=language)
    if consent_text is None:
        raise ValidationError(
            _("Für diesen Newsletter ist keine Einwilligungserklärung hinterlegt."),
            code="no_consent_text",
        )
    return consent_text


def signup_request_record(
    *,
    address: str,
    newsletter: Newsletter,
    ip: str | None,
    user_agent: str,
    url: str,
    form: str,
    language: str,
    consent_text: ConsentText | None = None,
) -> SignupRequest:
    """Keep a signup as the form sent it and apply it in a task after commit: the page does
    the same work for every address whatever it holds, so neither its answer nor its timing
    tells a new address from a subscribed, lapsed or suppressed one."""
    email = address_validate(address)
    language = language_or_default(language, fallback=newsletter.language)
    consent_text = _consent_text_shown(
        newsletter=newsletter, language=language, consent_text=consent_text
    )
    request = SignupRequest.objects.create(
        newsletter=newsletter,
        consent_text=consent_text,
        email=email,
        address_hmac=address_hmac(email),
        ip=clean_ip(ip),
        user_agent=clean_line(user_agent, 500),
        url=clean_line(url, 500),
        form=clean_line(form, 80),
        language=language,
        created_at=timezone.now(),
    )
    task_enqueue_on_commit(SIGNUP_REQUEST_APPLY, request.id)
    return request


def signup_request_apply(*, signup_request_id: int) -> Subscription | None:
    """Apply a recorded signup once (subscription_request, with the time it was sent) and
    forget it; a second run finds nothing."""
    with transaction.atomic():
        request = (
            SignupRequest.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("newsletter", "consent_text")
            .filter(id=signup_request_id)
            .first()
        )
        if request is None:
            return None
        try:
            subscription = subscription_request(
                address=request.email,
                newsletter=request.newsletter,
                ip=request.ip,
                user_agent=request.user_agent,
                url=request.url,
                form=request.form,
                language=request.language,
                consent_text=request.consent_text,
                requested_at=request.created_at,
            )
        except ValidationError as exc:
            # The newsletter lost its text since: nothing to consent to, nothing to keep.
            logger.warning("signup request %s not applied: %s", request.id, exc.messages)
            subscription = None
        request.delete()
    return subscription


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
    requested_at: datetime | None = None,
) -> Subscription | None:
    """Record a signup with the text shown; a new or lapsed address becomes pending and is sent
    a confirmation after commit. Pending addresses get it again within the resend limits. An
    address that bounced or complained gets nothing (None, or its subscription unchanged)."""
    email = address_validate(address)
    key = address_hmac(email)
    language = language_or_default(language, fallback=newsletter.language)
    consent_text = _consent_text_shown(
        newsletter=newsletter, language=language, consent_text=consent_text
    )
    if address_refuses_mail(address_hmac=key):
        # A confirmation request to it would bounce again or land as spam once more; whoever
        # asked sees the same answer as everyone (the page never tells).
        logger.info("signup for newsletter %s of a suppressed address ignored", newsletter.id)
        return Subscription.objects.filter(newsletter=newsletter, address_hmac=key).first()
    frequency = Frequency.DAILY if newsletter.offers_daily else Frequency.WEEKLY
    now = requested_at or timezone.now()
    with transaction.atomic():
        subscription, created = (
            Subscription.objects.select_for_update(of=("self",))
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
            task_enqueue_on_commit(CONFIRMATION_SEND, subscription.id)
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
        event_record(
            subscription=subscription,
            kind=ConsentEventKind.REQUESTED,
            at=now,
            ip=clean_ip(ip),
            user_agent=clean_line(user_agent, 500),
            url=clean_line(url, 500),
            form=clean_line(form, 80),
            consent_text=consent_text,
            text_sha256=consent_text.sha256,
            data={"language": language},
        )
        task_enqueue_on_commit(CONFIRMATION_SEND, subscription.id)
    return subscription


def subscription_confirmation_send(*, subscription_id: int) -> bool:
    """Mail the confirm link to a pending subscription, at most once per 24 h and three times
    in all per round; records the message id. False when nothing was sent."""
    now = timezone.now()
    with transaction.atomic():
        subscription = subscription_locked(subscription_id)
        if subscription is None or subscription.state != SubscriptionState.PENDING:
            return False
        if address_refuses_mail(address_hmac=subscription.address_hmac):
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
        event_record(
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
    now = timezone.now()
    with transaction.atomic():
        subscription = subscription_locked(subscription_id)
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
        event_record(
            subscription=subscription,
            kind=ConsentEventKind.CONFIRMED,
            at=now,
            ip=clean_ip(ip),
            user_agent=clean_line(user_agent, 500),
            note="suppression lifted" if lifted else "",
        )
        if subscription.newsletter.welcome_mail:
            task_enqueue_on_commit(WELCOME_SEND, subscription.id)
    return subscription


def subscription_welcome_send(*, subscription_id: int) -> bool:
    """Send the optional welcome mail once after confirmation; False when not due."""
    with transaction.atomic():
        subscription = subscription_locked(subscription_id)
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
