"""Migration 0017 on a mailing that was sending when it ran: the old fan-out had written every
delivery row, and only those up to the old cursor were in batches."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from newsletter.models import Batch, BatchState, Delivery, Digest, DigestState, Frequency

from .conftest import claimed_readers, claims_all, seed_subscribers

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("newsletter", "0016_subscription_topics_imports_daily_counts")]


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def test_a_mailing_sending_at_the_deploy_goes_on_to_every_reader(
    newsletter_with_articles, settings
):
    settings.NEWSLETTER_BATCH_SIZE = 10
    subs = seed_subscribers(newsletter_with_articles, 30, language_every=3)
    digest = Digest.objects.create(
        newsletter=newsletter_with_articles,
        frequency=Frequency.DAILY,
        slot=timezone.now(),
        state=DigestState.SENDING,
        period_start=newsletter_with_articles.starts_at,
        period_end=timezone.now(),
        article_ids=[1],
        fanned_out_at=timezone.now(),
    )
    # The old fan-out: every row at once, German readers first.
    rows = Delivery.objects.bulk_create(
        Delivery(digest=digest, subscription=s, language="en" if s.language == "en" else "de")
        for s in sorted(subs, key=lambda s: (s.language == "en", s.pk))
    )
    claimed = rows[:10]
    Batch.objects.create(
        digest=digest,
        first_delivery_id=claimed[0].pk,
        last_delivery_id=claimed[-1].pk,
        size=10,
        language="de",
        state=BatchState.SENT,
        sent_count=10,
        attempts=1,
    )
    leaves = [node for node in MigrationExecutor(connection).loader.graph.leaf_nodes()]
    _migrate(BEFORE)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "UPDATE newsletter_digest SET cursor = %s, last_delivery_id = %s WHERE id = %s",
                [claimed[-1].pk, rows[-1].pk, digest.pk],
            )
    finally:
        _migrate(leaves)
    claims_all(digest.pk)
    assert claimed_readers(digest) == {s.pk: 1 for s in subs}
