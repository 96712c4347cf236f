"""The chain's bookkeeping beside the consent events: its head, pruned links, checkpoints."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

CHAIN_HEAD_ID = 1


class ChainHead(models.Model):
    """The one row every append locks: the last position and hash of the chain."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=CHAIN_HEAD_ID)
    seq = models.BigIntegerField(default=0)
    row_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(id=CHAIN_HEAD_ID), name="chain_head_is_single")
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.row_hash[:12]}…"


class ChainPrune(models.Model):
    """A link the retention job deleted: its position and hash, nothing personal. Append-only;
    the retention event at `retention_seq` carries a digest over all of its prune rows."""

    chain_seq = models.BigIntegerField(primary_key=True)
    row_hash = models.CharField(max_length=64)
    retention_seq = models.BigIntegerField(db_index=True)

    class Meta:
        verbose_name = _("gelöschtes Kettenglied")
        verbose_name_plural = _("gelöschte Kettenglieder")
        constraints = [
            models.CheckConstraint(
                condition=Q(retention_seq__gt=models.F("chain_seq")),
                name="chain_prune_recorded_later",
            )
        ]

    def __str__(self) -> str:
        return f"#{self.chain_seq} {self.row_hash[:12]}…"


class ChainCheckpoint(models.Model):
    """A verified chain head: position and hash as of `created_at`, the outside anchor."""

    seq = models.BigIntegerField(_("Kettenposition"))
    row_hash = models.CharField(_("Hash"), max_length=64)
    event_id = models.BigIntegerField(_("Ereignis"), null=True)
    verified_from_seq = models.BigIntegerField(_("geprüft ab Position"))
    events_verified = models.BigIntegerField(_("geprüfte Ereignisse"))
    mailed_to = models.EmailField(_("gesendet an"), blank=True)
    created_at = models.DateTimeField(_("erstellt am"), auto_now_add=True)

    class Meta:
        ordering = ["-seq", "-id"]
        get_latest_by = "seq"
        verbose_name = _("Prüfpunkt der Einwilligungskette")
        verbose_name_plural = _("Prüfpunkte der Einwilligungskette")

    def __str__(self) -> str:
        return f"#{self.seq} {self.row_hash[:12]}…"
