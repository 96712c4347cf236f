"""Digest delivery records (docs/design.md: the batch is the unit of sending)."""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .consent import Frequency, Newsletter, Subscription


class DigestState(models.TextChoices):
    SCHEDULED = "scheduled", _("geplant")
    SKIPPED = "skipped", _("übersprungen (keine neuen Artikel)")
    FANNING_OUT = "fanning_out", _("wird vorbereitet")
    SENDING = "sending", _("wird versandt")
    PAUSED = "paused", _("pausiert")
    CANCELLED = "cancelled", _("abgebrochen")
    DONE = "done", _("fertig")


class MailingKind(models.TextChoices):
    DIGEST = "digest", _("Digest")
    CAMPAIGN = "campaign", _("Kampagne")


class Digest(models.Model):
    """One mass mailing: a scheduled digest, or a confirmed campaign. Its kind decides only
    who gets it (the audience) and what it says (the render); sending is the same for both."""

    kind = models.CharField(
        _("Art"), max_length=10, choices=MailingKind.choices, default=MailingKind.DIGEST
    )
    campaign = models.OneToOneField(
        "newsletter.Campaign",
        verbose_name=_("Kampagne"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="mailing",
    )
    newsletter = models.ForeignKey(
        Newsletter, verbose_name=_("Newsletter"), on_delete=models.PROTECT, related_name="digests"
    )
    # Empty for a campaign: it goes to every frequency's readers.
    frequency = models.CharField(
        _("Häufigkeit"), max_length=10, choices=Frequency.choices, blank=True
    )
    slot = models.DateTimeField(_("geplanter Zeitpunkt"))
    state = models.CharField(_("Status"), max_length=20, choices=DigestState.choices)
    period_start = models.DateTimeField(_("Artikel ab"))
    period_end = models.DateTimeField(_("Artikel bis"))
    article_ids = models.JSONField(_("Artikel"), default=list)
    subject = models.CharField(_("Betreff"), max_length=300, blank=True)
    # Frozen at creation like `subject`: what readers whose mails are English get (the digest's
    # English template filled in, a campaign's English subject). Empty: they get `subject`.
    subject_en = models.CharField(_("Betreff (Englisch)"), max_length=300, blank=True)
    # The audience is fixed when sending starts (fanned_out_at): readers confirmed by then,
    # with a subscription id up to audience_last_id. Claims walk it by subscription id with
    # one keyset cursor: every reader at or below it has its delivery row in a claimed batch,
    # in the language they had when their turn came. At audience_last_id the walk is done.
    audience_last_id = models.BigIntegerField(_("letztes Abonnement"), null=True, blank=True)
    audience_cursor = models.BigIntegerField(_("Fortschrittszeiger"), default=0)
    recipients = models.PositiveIntegerField(_("Empfänger"), default=0)
    created_at = models.DateTimeField(_("angelegt am"), auto_now_add=True)
    fanned_out_at = models.DateTimeField(_("vorbereitet am"), null=True, blank=True)
    finished_at = models.DateTimeField(_("beendet am"), null=True, blank=True)

    class Meta:
        ordering = ["-slot"]
        verbose_name = _("Digest")
        verbose_name_plural = _("Digests")
        # Beyond view/change: a test mail goes out of the site, and a preview as a subscriber
        # shows that reader's language and consent date, so each is granted on its own.
        permissions = [
            ("send_test_digest", _("Kann einen Test-Digest an sich selbst senden")),
            ("preview_as_subscriber", _("Kann einen Digest als Abonnent ansehen")),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["newsletter", "frequency", "slot"],
                condition=Q(kind="digest"),
                name="digest_once_per_slot",
            ),
            # A campaign's mailing names its campaign (sent once: the one-to-one); a digest
            # names none and has a frequency.
            models.CheckConstraint(
                condition=(Q(kind="digest") & Q(campaign__isnull=True) & ~Q(frequency=""))
                | (Q(kind="campaign") & Q(campaign__isnull=False)),
                name="mailing_kind_matches_source",
            ),
        ]

    def __str__(self) -> str:
        # Europe/Berlin, as every other time in the admin.
        when = timezone.localtime(self.slot).strftime("%d.%m.%Y %H:%M")
        if self.kind == MailingKind.CAMPAIGN:
            return f"{self.newsletter} {_('Kampagne')} {when}"
        return f"{self.newsletter} {self.get_frequency_display()} {when}"

    def audience_open(self) -> bool:
        """Whether readers of the audience are still waiting for their turn."""
        return self.audience_cursor < (self.audience_last_id or 0)

    def subject_for(self, language: str) -> str:
        """The subject readers of `language` got: the English one where it exists."""
        if (language or "").startswith("en") and self.subject_en:
            return self.subject_en
        return self.subject


class BatchState(models.TextChoices):
    SENDING = "sending", _("wird gesendet")
    SENT = "sent", _("gesendet")
    RETRY = "retry", _("wird wiederholt")
    UNCERTAIN = "uncertain", _("ungewiss")
    FAILED = "failed", _("fehlgeschlagen")


class Batch(models.Model):
    """One provider API call for the deliveries first_delivery_id..last_delivery_id."""

    digest = models.ForeignKey(Digest, on_delete=models.CASCADE, related_name="batches")
    first_delivery_id = models.BigIntegerField(_("erste Zustellung"))
    last_delivery_id = models.BigIntegerField(_("letzte Zustellung"))
    size = models.PositiveIntegerField(_("Größe"))
    # One language per batch: one rendered body per provider call.
    language = models.CharField(max_length=8, default="de")
    # Recipients actually handed to the provider (size minus skipped and refused rows).
    sent_count = models.PositiveIntegerField(_("übergeben"), default=0)
    state = models.CharField(_("Status"), max_length=20, choices=BatchState.choices)
    # The provider the claiming worker sends through ("mailgun", ..., "smtp"): only that
    # provider's webhooks may speak about this batch's deliveries.
    esp = models.CharField(max_length=40, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The fencing token: every claim takes the next number, and every later write for the batch
    # is a compare-and-set on it, so a worker that lost its claim (paused past its lease) can
    # neither send nor record anything for the attempt that replaced its own.
    attempts = models.PositiveSmallIntegerField(_("Versuche"), default=0)
    # Set by the final ownership check right before the provider call of this attempt: a batch
    # whose lease ended without it provably never reached the provider and is free at once.
    call_started_at = models.DateTimeField(null=True, blank=True)
    # Per-recipient paths (SMTP): the last delivery id handed over, recorded after each
    # message, so an attempt that lost its claim mid-batch is resumed after it, never resent.
    sent_through = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(_("Fehler"), blank=True)
    provider_message_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["digest", "first_delivery_id"]
        verbose_name = _("Versandpaket")
        verbose_name_plural = _("Versandpakete")
        constraints = [
            models.UniqueConstraint(
                fields=["digest", "last_delivery_id"], name="batch_range_claimed_once"
            ),
            models.CheckConstraint(
                condition=Q(first_delivery_id__lte=F("last_delivery_id")),
                name="batch_range_ordered",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "lease_until"], name="batch_state_lease_idx"),
            models.Index(fields=["digest", "state"], name="batch_digest_state_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.digest_id}:{self.first_delivery_id}-{self.last_delivery_id}"


class DeliveryState(models.TextChoices):
    SKIPPED = "skipped", _("ausgelassen")
    FAILED = "failed", _("abgelehnt")


class Delivery(models.Model):
    """One recipient of one digest. State is only written for exceptions; NULL follows its batch."""

    # No index of its own: (digest, subscription) and (digest, id) below both lead with it,
    # and a third index on the same column is one more write per row of every fan-out.
    digest = models.ForeignKey(
        Digest, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    subscription = models.ForeignKey(
        Subscription, on_delete=models.SET_NULL, null=True, related_name="deliveries"
    )
    # Copied at fan-out so that a claim can cut batches at a language change without a join.
    language = models.CharField(max_length=8, default="de")
    state = models.CharField(max_length=10, choices=DeliveryState.choices, null=True)
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        verbose_name = _("Zustellung")
        verbose_name_plural = _("Zustellungen")
        constraints = [
            models.UniqueConstraint(
                fields=["digest", "subscription"], name="delivery_once_per_subscriber"
            )
        ]
        # The keyset claim walks one digest's deliveries by id.
        indexes = [
            models.Index(fields=["digest", "id"], name="delivery_digest_id_idx"),
            # Exception rows are few: counting a digest's failed or skipped ones (progress,
            # list, report) reads them alone instead of all its deliveries.
            models.Index(
                fields=["digest", "state"],
                name="delivery_exception_idx",
                condition=Q(state__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.digest_id}/{self.id}"


class ProviderEvent(models.Model):
    """A tracking webhook event, kept once per provider event id (replays are ignored)."""

    esp = models.CharField(max_length=40)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=40)
    recipient = models.CharField(max_length=254, blank=True)
    delivery = models.ForeignKey(
        Delivery, on_delete=models.SET_NULL, null=True, blank=True, related_name="events"
    )
    # The delivery's mailing, kept on the event: a report counts a mailing's bounces and
    # complaints from the (digest, event_type) index instead of looking up the delivery of
    # each event (80,000 lookups, 0.6 s, at eight million recipients; bench/admin.py).
    digest = models.ForeignKey(
        Digest,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="provider_events",
        db_index=False,
    )
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = _("Versand-Ereignis")
        verbose_name_plural = _("Versand-Ereignisse")
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_id"], name="provider_event_once")
        ]
        indexes = [
            models.Index(fields=["delivery"], name="provider_event_delivery_idx"),
            # Bounces and complaints per day on the dashboard, and per mailing in its report.
            models.Index(fields=["event_type", "received_at"], name="provider_event_type_idx"),
            models.Index(fields=["digest", "event_type"], name="provider_event_digest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.esp}:{self.event_type}:{self.event_id}"

    def save(self, *args, **kwargs) -> None:
        # An event linked to a delivery always names the delivery's mailing.
        if self._state.adding and self.delivery_id and not self.digest_id:
            self.digest_id = self.delivery.digest_id
        super().save(*args, **kwargs)
