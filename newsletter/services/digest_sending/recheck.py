"""Re-check of a claimed range just before sending: who may still get the digest."""

from __future__ import annotations

from django.db import connection

from newsletter.addresses import address_hmac
from newsletter.emails.digest import Recipient
from newsletter.models import (
    Batch,
    Delivery,
    DeliveryState,
    Subscription,
    SubscriptionState,
    Suppression,
)

_RECHECK_SQL = """
SELECT d.id, s.id, s.email, s.address_hmac, s.confirmed_at, s.state,
       (sup.id IS NOT NULL) AS suppressed
FROM {delivery} d
LEFT JOIN {subscription} s ON s.id = d.subscription_id
LEFT JOIN {suppression} sup ON sup.address_hmac = s.address_hmac AND s.address_hmac <> ''
WHERE d.digest_id = %s AND d.id BETWEEN %s AND %s AND d.state IS NULL
ORDER BY d.id
"""


def batch_recheck(*, batch: Batch) -> list[Recipient]:
    """One read of the range joined to subscriptions: only confirmed, unsuppressed recipients
    stay; the others are written as skipped (the rare per-row write)."""
    sql = _RECHECK_SQL.format(
        delivery=Delivery._meta.db_table,
        subscription=Subscription._meta.db_table,
        suppression=Suppression._meta.db_table,
    )
    with connection.cursor() as cursor:
        # A per-recipient attempt that lost its claim mid-batch is resumed after what it sent.
        first = max(batch.first_delivery_id, (batch.sent_through or 0) + 1)
        cursor.execute(sql, [batch.digest_id, first, batch.last_delivery_id])
        rows = cursor.fetchall()
    recipients: list[Recipient] = []
    skipped: dict[str, list[int]] = {}
    unhashed: list[Recipient] = []
    for delivery_id, sub_id, email, hmac_value, confirmed_at, state, suppressed in rows:
        if sub_id is None:
            skipped.setdefault("erased", []).append(delivery_id)
        elif state != SubscriptionState.CONFIRMED:
            skipped.setdefault(f"subscription {state}", []).append(delivery_id)
        elif suppressed:
            skipped.setdefault("suppressed", []).append(delivery_id)
        else:
            recipient = Recipient(
                delivery_id=delivery_id,
                subscription_id=sub_id,
                email=email,
                address_hmac=hmac_value or address_hmac(email),
                confirmed_at=confirmed_at,
            )
            recipients.append(recipient)
            if not hmac_value:
                unhashed.append(recipient)
    if unhashed:
        # Rows written without their keyed hash (bulk seeds) are checked by the computed one.
        hit = set(
            Suppression.objects.filter(
                address_hmac__in=[r.address_hmac for r in unhashed]
            ).values_list("address_hmac", flat=True)
        )
        if hit:
            skipped.setdefault("suppressed", []).extend(
                r.delivery_id for r in unhashed if r.address_hmac in hit
            )
            recipients = [r for r in recipients if r.address_hmac not in hit]
    for reason, ids in skipped.items():
        Delivery.objects.filter(pk__in=ids, state__isnull=True).update(
            state=DeliveryState.SKIPPED, reason=reason
        )
    return recipients
