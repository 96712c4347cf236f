"""Per-day counts for the dashboard, kept by the roll-up (services/stats.py).

Counting 90 days of a ten-million ledger on every dashboard build takes seconds; the roll-up
counts each Berlin day once (and today and yesterday again on every tick, for what is still
arriving), so the dashboard reads a few hundred small rows instead. Old days stay counted
after the retention job deletes their events.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _

from .consent import Newsletter


class DailyCount(models.Model):
    day = models.DateField(_("Tag"))
    newsletter = models.ForeignKey(
        Newsletter, verbose_name=_("Newsletter"), on_delete=models.CASCADE, related_name="+"
    )
    # "consent:<kind>", "revoked:<channel>", "provider:<type>", and "confirmed" (the list's
    # size when the day was last rolled up).
    metric = models.CharField(_("Kennzahl"), max_length=60)
    n = models.BigIntegerField(_("Anzahl"))
    counted_at = models.DateTimeField(_("gezählt am"))

    class Meta:
        verbose_name = _("Tageszahl")
        verbose_name_plural = _("Tageszahlen")
        constraints = [
            models.UniqueConstraint(
                fields=["newsletter", "day", "metric"], name="daily_count_unique"
            ),
            models.CheckConstraint(condition=models.Q(n__gte=0), name="daily_count_not_negative"),
        ]
        indexes = [models.Index(fields=["day"], name="daily_count_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.metric}: {self.n}"
