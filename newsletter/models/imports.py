"""A CSV import too large for one request: the file, its progress and its report.

The file waits here for a worker (tasks pass ids, never the bytes) and is emptied once the
import has ended: the subscriptions and the ledger keep what was taken from it, and the report
keeps what was refused. The job's final state is written in the same transaction as the
import's rows, so a worker that dies in between leaves a job to run again and nothing half in.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .consent import Newsletter


class ImportState(models.TextChoices):
    QUEUED = "queued", _("wartet")
    CHECKING = "checking", _("wird geprüft")
    WRITING = "writing", _("wird übernommen")
    IMPORTED = "imported", _("importiert")
    REFUSED = "refused", _("nicht importiert")


IMPORT_OPEN_STATES = (ImportState.QUEUED, ImportState.CHECKING, ImportState.WRITING)


class SubscriptionImport(models.Model):
    newsletter = models.ForeignKey(
        Newsletter, verbose_name=_("Newsletter"), on_delete=models.PROTECT, related_name="+"
    )
    file_name = models.CharField(_("Datei"), max_length=200)
    data = models.BinaryField(editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("importiert von"),
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    # The name as the ledger's notes record it, kept if the user is deleted later.
    user_name = models.CharField(max_length=150)
    created_at = models.DateTimeField(_("hochgeladen am"), auto_now_add=True)
    started_at = models.DateTimeField(_("begonnen am"), null=True, blank=True)
    finished_at = models.DateTimeField(_("beendet am"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    state = models.CharField(
        _("Status"), max_length=10, choices=ImportState.choices, default=ImportState.QUEUED
    )
    # Lines of the file at upload: what the progress of the check is measured against.
    lines = models.PositiveIntegerField(_("Zeilen der Datei"), default=0)
    rows_checked = models.PositiveIntegerField(_("geprüfte Zeilen"), default=0)
    rows = models.PositiveIntegerField(_("Zeilen"), default=0)
    confirmed = models.PositiveIntegerField(_("bestätigt übernommen"), default=0)
    pending = models.PositiveIntegerField(_("mit Bestätigungsmail"), default=0)
    existing = models.PositiveIntegerField(_("schon eingetragen"), default=0)
    suppressed = models.PositiveIntegerField(_("auf der Sperrliste"), default=0)
    error_count = models.PositiveIntegerField(_("fehlerhafte Zeilen"), default=0)
    # [[line, message], …], the first ERRORS_SHOWN of error_count.
    errors = models.JSONField(default=list, blank=True)
    file_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("CSV-Import")
        verbose_name_plural = _("CSV-Importe")
        constraints = [
            # An ended import has given its file back: what it took is in the ledger.
            models.CheckConstraint(
                condition=Q(state__in=IMPORT_OPEN_STATES) | Q(finished_at__isnull=False),
                name="subscription_import_ended_has_time",
            ),
        ]

    def __str__(self) -> str:
        return self.file_name

    @property
    def is_open(self) -> bool:
        return self.state in IMPORT_OPEN_STATES

    @property
    def imported(self) -> bool:
        """As ImportReport.imported: one template shows both reports."""
        return self.state == ImportState.IMPORTED
