import django.db.models.deletion
from django.db import migrations, models

# Every event already linked to a delivery names that delivery's mailing. A correlated
# subquery, not UPDATE … FROM, so that the local run's SQLite takes it too.
BACKFILL = """
UPDATE newsletter_providerevent SET digest_id = (
    SELECT d.digest_id FROM newsletter_delivery d
    WHERE d.id = newsletter_providerevent.delivery_id)
WHERE delivery_id IS NOT NULL AND digest_id IS NULL
"""


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0017_digest_audience_snapshot")]

    operations = [
        migrations.AddField(
            model_name="providerevent",
            name="digest",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="provider_events",
                to="newsletter.digest",
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RemoveIndex(model_name="providerevent", name="provider_event_type_dlv_idx"),
        migrations.AddIndex(
            model_name="providerevent",
            index=models.Index(fields=["digest", "event_type"], name="provider_event_digest_idx"),
        ),
    ]
