"""Tasks of the consent flows: confirmation, welcome and link mails, retention.

Each takes ids and calls one service; the services' state checks make a repeat harmless.
"""

from datetime import datetime
from smtplib import SMTPException

from celery import shared_task

from newsletter.services import consent as services

# Transient delivery problems (connection refused, a 4xx from the relay) retry with backoff.
TRANSIENT = (OSError, SMTPException)


@shared_task(
    autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=1800, max_retries=8, acks_late=True
)
def subscription_confirmation_send_task(subscription_id: int) -> bool:
    return services.subscription_confirmation_send(subscription_id=subscription_id)


@shared_task(
    autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=1800, max_retries=8, acks_late=True
)
def import_confirmations_send_task(
    newsletter_id: int, requested_at: str, first_id: int, last_id: int
) -> int:
    return services.import_confirmations_send(
        newsletter_id=newsletter_id,
        requested_at=datetime.fromisoformat(requested_at),
        first_id=first_id,
        last_id=last_id,
    )


@shared_task(acks_late=True)
def signup_request_apply_task(signup_request_id: int) -> bool:
    return services.signup_request_apply(signup_request_id=signup_request_id) is not None


@shared_task(
    autoretry_for=TRANSIENT, retry_backoff=30, retry_backoff_max=1800, max_retries=8, acks_late=True
)
def subscription_welcome_send_task(subscription_id: int) -> bool:
    return services.subscription_welcome_send(subscription_id=subscription_id)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, max_retries=5, acks_late=True)
def preferences_link_send_task(address_hmac: str) -> bool:
    return services.preferences_link_send(address_hmac=address_hmac)


@shared_task(autoretry_for=TRANSIENT, retry_backoff=30, max_retries=5, acks_late=True)
def data_link_send_task(subscription_id: int, purpose: str) -> bool:
    return services.data_link_send(subscription_id=subscription_id, purpose=purpose)


@shared_task(acks_late=True)
def subscription_import_run_task(import_id: int) -> str | None:
    return services.subscription_import_run(import_id=import_id)


@shared_task(acks_late=True)
def consent_retention_task() -> dict[str, int]:
    return services.consent_retention_run()
