"""The hash chain over the consent ledger: chain fields, its head, prune records, checkpoints.

Events that exist already are chained in id order (the order they were written in), with the
same hashing as every later append, so the verifier walks one chain from position 1.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models

from newsletter import chain

CHAIN_FIELDS = ["chain_seq", "prev_hash", "personal_digest", "row_hash"]


def chain_existing(apps, schema_editor):
    event_model = apps.get_model("newsletter", "ConsentEvent")
    head_model = apps.get_model("newsletter", "ChainHead")
    key = chain.personal_key()
    seq, prev = 0, chain.GENESIS_HASH
    batch = []
    for event in event_model.objects.order_by("id").iterator(chunk_size=2000):
        seq += 1
        event.chain_seq = seq
        event.prev_hash = prev
        event.personal_digest = chain.personal_digest(
            key=key, ip=event.ip, user_agent=event.user_agent, url=event.url, note=event.note
        )
        event.row_hash = chain.row_hash(
            prev_hash=prev,
            canonical=chain.canonical_text(
                chain_seq=seq,
                kind=event.kind,
                at=event.at,
                newsletter_id=event.newsletter_id,
                address_hmac=event.address_hmac,
                channel=event.channel,
                form=event.form,
                consent_text_id=event.consent_text_id,
                text_sha256=event.text_sha256,
                message_id=event.message_id,
                prune_digest="",
                # Fields of later migrations: absent here (so None), present when the tests run
                # this function on today's rows.
                actor_id=getattr(event, "actor_id", None),
                data=getattr(event, "data", None),
            ),
            personal_digest=event.personal_digest,
        )
        batch.append(event)
        prev = event.row_hash
        if len(batch) == 2000:
            event_model.objects.bulk_update(batch, CHAIN_FIELDS)
            batch = []
    event_model.objects.bulk_update(batch, CHAIN_FIELDS)
    head_model.objects.create(id=1, seq=seq, row_hash=prev)


def managers_see_checkpoints(apps, schema_editor):
    # Newsletter managers got the app's permissions when their group was made; this model is
    # newer. Permissions are normally created after all migrations ran: make them now.
    app_config = apps.get_app_config("newsletter")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    group = apps.get_model("auth", "Group").objects.filter(name="Newsletter-Verwaltung").first()
    if group is not None:
        group.permissions.add(
            *apps.get_model("auth", "Permission").objects.filter(
                content_type__app_label="newsletter", codename="view_chaincheckpoint"
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("newsletter", "0008_batch_fencing"),
        ("articles", "0004_editor_groups"),
    ]

    operations = [
        migrations.CreateModel(
            name="ChainHead",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("seq", models.BigIntegerField(default=0)),
                ("row_hash", models.CharField(max_length=64)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)), name="chain_head_is_single"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ChainPrune",
            fields=[
                ("chain_seq", models.BigIntegerField(primary_key=True, serialize=False)),
                ("row_hash", models.CharField(max_length=64)),
                ("retention_seq", models.BigIntegerField(db_index=True)),
            ],
            options={
                "verbose_name": "gelöschtes Kettenglied",
                "verbose_name_plural": "gelöschte Kettenglieder",
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("retention_seq__gt", models.F("chain_seq"))),
                        name="chain_prune_recorded_later",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ChainCheckpoint",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("seq", models.BigIntegerField(verbose_name="Kettenposition")),
                ("row_hash", models.CharField(max_length=64, verbose_name="Hash")),
                ("event_id", models.BigIntegerField(null=True, verbose_name="Ereignis")),
                ("verified_from_seq", models.BigIntegerField(verbose_name="geprüft ab Position")),
                ("events_verified", models.BigIntegerField(verbose_name="geprüfte Ereignisse")),
                (
                    "mailed_to",
                    models.EmailField(blank=True, max_length=254, verbose_name="gesendet an"),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="erstellt am")),
            ],
            options={
                "verbose_name": "Prüfpunkt der Einwilligungskette",
                "verbose_name_plural": "Prüfpunkte der Einwilligungskette",
                "ordering": ["-seq", "-id"],
                "get_latest_by": "seq",
            },
        ),
        migrations.AddField(
            model_name="consentevent",
            name="chain_seq",
            field=models.BigIntegerField(null=True, editable=False, verbose_name="Kettenposition"),
        ),
        migrations.AddField(
            model_name="consentevent",
            name="prev_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="consentevent",
            name="row_hash",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="consentevent",
            name="personal_digest",
            field=models.CharField(default="", editable=False, max_length=64),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="consentevent",
            name="prune_digest",
            field=models.CharField(blank=True, editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name="consentevent",
            name="redacted",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("requested", "angefragt"),
                    ("confirmation_sent", "Bestätigungsmail versandt"),
                    ("confirmed", "bestätigt"),
                    ("revoked", "widerrufen"),
                    ("suppressed", "gesperrt"),
                    ("erased", "gelöscht"),
                    ("exported", "exportiert"),
                    ("preferences_changed", "Einstellungen geändert"),
                    ("retention", "Aufbewahrungsfrist abgelaufen, Nachweise gelöscht"),
                ],
                max_length=32,
            ),
        ),
        migrations.RunPython(chain_existing, migrations.RunPython.noop),
        migrations.RunPython(managers_see_checkpoints, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="consentevent",
            index=models.Index(
                condition=models.Q(("kind", "erased")),
                fields=["address_hmac", "chain_seq"],
                name="consent_event_erased_idx",
            ),
        ),
        migrations.AlterField(
            model_name="consentevent",
            name="chain_seq",
            field=models.BigIntegerField(
                editable=False, unique=True, verbose_name="Kettenposition"
            ),
        ),
    ]
