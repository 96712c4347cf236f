"""The consent ledger: newsletters, their consent texts, subscriptions and their evidence."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Frequency(models.TextChoices):
    DAILY = "daily", _("täglich")
    WEEKLY = "weekly", _("wöchentlich")


def header_line_validate(value: str) -> None:
    """A value that goes into a mail header holds one line: CR or LF would end the header
    (and the mail could not be built at all)."""
    if "\r" in value or "\n" in value:
        raise ValidationError(
            _("Der Absendername darf keine Zeilenumbrüche enthalten."), code="line_break"
        )


class Weekday(models.TextChoices):
    MONDAY = "0", _("Montag")
    TUESDAY = "1", _("Dienstag")
    WEDNESDAY = "2", _("Mittwoch")
    THURSDAY = "3", _("Donnerstag")
    FRIDAY = "4", _("Freitag")
    SATURDAY = "5", _("Samstag")
    SUNDAY = "6", _("Sonntag")


def weekly_days_validate(value: str) -> None:
    """One to seven distinct weekday digits: anything else used to be saved and then silently
    read as Monday by the scheduler."""
    if not value or any(ch not in Weekday.values for ch in value) or len(set(value)) != len(value):
        raise ValidationError(
            _("Bitte wählen Sie mindestens einen Wochentag."), code="invalid_weekdays"
        )


class Newsletter(models.Model):
    name = models.CharField(_("Name"), max_length=120)
    slug = models.SlugField(_("Kurzname"), max_length=80, unique=True)
    description = models.TextField(_("Beschreibung"), blank=True)
    description_en = models.TextField(
        _("Beschreibung (Englisch)"),
        blank=True,
        help_text=_("Leer lassen, um auch englischen Lesern die deutsche Beschreibung zu zeigen."),
    )
    sender_name = models.CharField(
        _("Absendername"), max_length=120, validators=[header_line_validate]
    )
    sender_email = models.EmailField(_("Absenderadresse"))
    reply_to = models.EmailField(_("Antwortadresse"), blank=True)
    language = models.CharField(
        _("Sprache"), max_length=8, choices=[("de", "Deutsch"), ("en", "English")], default="de"
    )
    imprint_url = models.URLField(_("Impressum-URL"), blank=True)
    privacy_url = models.URLField(_("Datenschutz-URL"), blank=True)
    imprint_text = models.TextField(_("Impressum (Kurzfassung für Mails)"), blank=True)
    # Branding of every mail (digests, campaigns, consent mails).
    brand_logo_url = models.URLField(
        _("Logo-URL"),
        blank=True,
        help_text=_("HTTPS-Adresse eines Bildes, höchstens 200 px breit."),
    )
    brand_color = models.CharField(
        _("Akzentfarbe"),
        max_length=7,
        default="#1f4e79",
        validators=[
            RegexValidator(
                r"^#[0-9a-fA-F]{6}$",
                _("Eine Farbe wie #1f4e79 (Raute und sechs Hex-Ziffern)."),
                code="color",
            )
        ],
    )
    brand_footer = models.TextField(
        _("Fußzeile der Mails"), blank=True, max_length=1000, help_text=_("Reiner Text.")
    )
    welcome_mail = models.BooleanField(_("Willkommensmail nach Bestätigung"), default=False)
    is_active = models.BooleanField(_("aktiv"), default=True)
    # Schedule, in Europe/Berlin wall-clock time.
    starts_at = models.DateTimeField(
        _("Start"), help_text=_("Der erste Digest enthält Artikel ab diesem Zeitpunkt.")
    )
    send_time = models.TimeField(_("Versandzeit"), default="07:00")
    offers_daily = models.BooleanField(_("täglicher Digest"), default=True)
    offers_weekly = models.BooleanField(_("wöchentlicher Digest"), default=False)
    weekly_days = models.CharField(
        _("Wochentage (wöchentlich)"),
        max_length=7,
        default=Weekday.MONDAY,
        validators=[weekly_days_validate],
        help_text=_("An diesen Tagen geht der wöchentliche Digest hinaus."),
    )
    subject_template = models.CharField(
        _("Betreffvorlage"),
        max_length=200,
        default="{newsletter}: {count} neue Artikel vom {date}",
        help_text=_("Platzhalter: {newsletter}, {count}, {date}, {first_title}"),
    )
    subject_template_en = models.CharField(
        _("Betreffvorlage (Englisch)"),
        max_length=200,
        default="{newsletter}: {count} new articles, {date}",
        help_text=_("Für Leser, die ihre Mails auf Englisch erhalten; dieselben Platzhalter."),
    )
    created_at = models.DateTimeField(_("angelegt am"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("Newsletter")
        verbose_name_plural = _("Newsletter")
        constraints = [
            models.CheckConstraint(
                condition=Q(offers_daily=True) | Q(offers_weekly=True),
                name="newsletter_offers_a_frequency",
            ),
            models.CheckConstraint(
                condition=Q(brand_color__regex=r"^#[0-9a-fA-F]{6}$"),
                name="newsletter_brand_color_hex",
            ),
            models.CheckConstraint(
                condition=~Q(sender_name__contains="\r") & ~Q(sender_name__contains="\n"),
                name="newsletter_sender_name_one_line",
                violation_error_message=_("Der Absendername darf keine Zeilenumbrüche enthalten."),
                violation_error_code="line_break",
            ),
            models.CheckConstraint(
                condition=Q(weekly_days__regex=r"^[0-6]{1,7}$"),
                name="newsletter_weekly_days_digits",
                violation_error_message=_("Bitte wählen Sie mindestens einen Wochentag."),
                violation_error_code="invalid_weekdays",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def description_for(self, language: str) -> str:
        """The description in a language, the German one where no translation exists."""
        if (language or "").startswith("en") and self.description_en:
            return self.description_en
        return self.description

    def description_language(self, language: str) -> str:
        """The language `description_for` answers in (German where untranslated)."""
        return "en" if (language or "").startswith("en") and self.description_en else "de"

    def subject_template_for(self, language: str) -> str:
        if (language or "").startswith("en") and self.subject_template_en:
            return self.subject_template_en
        return self.subject_template

    @property
    def weekly_day_numbers(self) -> set[int]:
        return {int(ch) for ch in self.weekly_days}


class ConsentText(models.Model):
    """One version of a newsletter's consent declaration, exactly as shown. Immutable."""

    newsletter = models.ForeignKey(
        Newsletter,
        verbose_name=_("Newsletter"),
        on_delete=models.PROTECT,
        related_name="consent_texts",
    )
    language = models.CharField(_("Sprache"), max_length=8)
    version = models.PositiveIntegerField(_("Version"))
    text = models.TextField(_("Text"))
    sha256 = models.CharField(_("SHA-256"), max_length=64, editable=False)
    created_at = models.DateTimeField(_("erstellt am"), auto_now_add=True)

    class Meta:
        ordering = ["newsletter", "language", "-version"]
        verbose_name = _("Einwilligungstext")
        verbose_name_plural = _("Einwilligungstexte")
        constraints = [
            models.UniqueConstraint(
                fields=["newsletter", "language", "version"], name="consent_text_version_unique"
            ),
            models.CheckConstraint(condition=~Q(sha256=""), name="consent_text_has_sha256"),
        ]

    def __str__(self) -> str:
        return f"{self.newsletter} {self.language} v{self.version}"


class SubscriptionState(models.TextChoices):
    PENDING = "pending", _("unbestätigt")
    CONFIRMED = "confirmed", _("bestätigt")
    UNSUBSCRIBED = "unsubscribed", _("abgemeldet")
    SUPPRESSED = "suppressed", _("gesperrt")


class Subscription(models.Model):
    email = models.EmailField(_("E-Mail-Adresse"), max_length=254)
    # Keyed hash of the address: the identity used for lookups across case variants, for the
    # preference centre's token and for the suppression list.
    address_hmac = models.CharField(
        _("Adress-Hash"), max_length=64, blank=True, default="", editable=False
    )
    newsletter = models.ForeignKey(
        Newsletter,
        verbose_name=_("Newsletter"),
        on_delete=models.PROTECT,
        related_name="subscriptions",
    )
    state = models.CharField(
        _("Status"),
        max_length=20,
        choices=SubscriptionState.choices,
        default=SubscriptionState.PENDING,
    )
    language = models.CharField(_("Sprache"), max_length=8, default="de")
    frequency = models.CharField(
        _("Häufigkeit"), max_length=10, choices=Frequency.choices, default=Frequency.DAILY
    )
    created_at = models.DateTimeField(_("angefragt am"), auto_now_add=True)
    # When the current double opt-in round began; a new request after a revocation starts a
    # new round, and a confirm token only works for the round it was issued in.
    requested_at = models.DateTimeField(_("zuletzt angefragt am"), null=True, blank=True)
    confirm_round = models.PositiveIntegerField(default=1, editable=False)
    confirmed_at = models.DateTimeField(_("bestätigt am"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("abgemeldet am"), null=True, blank=True)
    confirmation_sends = models.PositiveSmallIntegerField(
        _("versandte Bestätigungsmails"), default=0
    )
    last_confirmation_sent_at = models.DateTimeField(
        _("letzte Bestätigungsmail am"), null=True, blank=True
    )
    soft_bounces = models.PositiveSmallIntegerField(_("vorübergehende Zustellfehler"), default=0)
    last_mailed_at = models.DateTimeField(_("zuletzt angeschrieben am"), null=True, blank=True)
    # Chosen by the reader in the preference centre; a campaign can be narrowed to them. The
    # link table's unique (subscription, topic) index answers the fan-out's EXISTS per reader.
    topics = models.ManyToManyField(
        "articles.Topic", verbose_name=_("gewählte Themen"), blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("Abonnement")
        verbose_name_plural = _("Abonnements")
        # Importing adds confirmed addresses on the strength of proof from elsewhere: granted
        # on its own, beside the right to change subscriptions.
        permissions = [("import_subscriptions", _("Kann Abonnements aus CSV importieren"))]
        constraints = [
            models.UniqueConstraint(
                fields=["newsletter", "email"], name="subscription_unique_per_newsletter"
            ),
            models.UniqueConstraint(
                fields=["newsletter", "address_hmac"],
                condition=~Q(address_hmac=""),
                name="subscription_unique_address_hmac",
            ),
            models.CheckConstraint(
                condition=~Q(state="confirmed", confirmed_at__isnull=True),
                name="confirmed_subscription_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["address_hmac"], name="sub_address_hmac_idx"),
            models.Index(fields=["state", "requested_at"], name="sub_state_requested_idx"),
            models.Index(fields=["newsletter", "state", "frequency", "id"], name="sub_fanout_idx"),
            # A mailing's claims walk its confirmed readers by id (a campaign, or a digest of a
            # newsletter with one frequency, names no frequency).
            models.Index(fields=["newsletter", "state", "id"], name="sub_audience_idx"),
            models.Index(fields=["email"], name="sub_email_idx"),
            # The admin's search by the start of an address (LIKE 'abc%') on PostgreSQL.
            models.Index(
                fields=["email"], name="sub_email_prefix_idx", opclasses=["varchar_pattern_ops"]
            ),
            # The admin's default order (newest first) and the dashboard's signups per day.
            models.Index(fields=["-created_at", "-id"], name="sub_created_idx"),
            models.Index(
                fields=["newsletter", "-created_at", "-id"], name="sub_newsletter_created_idx"
            ),
            models.Index(fields=["state", "-created_at", "-id"], name="sub_state_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.newsletter}"


class ConsentEventKind(models.TextChoices):
    REQUESTED = "requested", _("angefragt")
    CONFIRMATION_SENT = "confirmation_sent", _("Bestätigungsmail versandt")
    CONFIRMED = "confirmed", _("bestätigt")
    REVOKED = "revoked", _("widerrufen")
    SUPPRESSED = "suppressed", _("gesperrt")
    ERASED = "erased", _("gelöscht")
    EXPORTED = "exported", _("exportiert")
    PREFERENCES_CHANGED = "preferences_changed", _("Einstellungen geändert")
    # Written by the retention job: which chain positions it deleted (see ChainPrune).
    RETENTION = "retention", _("Aufbewahrungsfrist abgelaufen, Nachweise gelöscht")
    # Consent given elsewhere and proven by the columns of an imported file (file, user and
    # the proof's time, IP, source and text version in the event).
    IMPORTED = "imported", _("importiert")


class RevocationChannel(models.TextChoices):
    LINK = "link", _("Abmeldelink")
    ONE_CLICK = "one_click", _("One-Click-Header")
    PREFERENCES = "preferences", _("Einstellungsseite")
    ADMIN = "admin", _("Verwaltung")
    WEBHOOK = "webhook", _("Versanddienstleister")
    FORM = "form", _("Formular")


class ConsentEvent(models.Model):
    """Append-only evidence, written by services in the transaction of the change it records.

    After erasure the subscription is gone; the event keeps the keyed hash of the address
    and stays as pseudonymised evidence until the retention job removes it.
    """

    subscription = models.ForeignKey(
        Subscription,
        verbose_name=_("Abonnement"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="events",
    )
    newsletter = models.ForeignKey(
        Newsletter, verbose_name=_("Newsletter"), on_delete=models.PROTECT, related_name="+"
    )
    address_hmac = models.CharField(_("Adress-Hash"), max_length=64, db_index=True)
    kind = models.CharField(_("Art"), max_length=32, choices=ConsentEventKind.choices)
    at = models.DateTimeField(_("Zeitpunkt"), db_index=True)
    ip = models.GenericIPAddressField(_("IP-Adresse"), null=True, blank=True)
    user_agent = models.CharField(_("Browser"), max_length=500, blank=True)
    url = models.CharField(_("Seite"), max_length=500, blank=True)
    channel = models.CharField(
        _("Weg"), max_length=20, choices=RevocationChannel.choices, blank=True
    )
    form = models.CharField(_("Formular/Quelle"), max_length=80, blank=True)
    consent_text = models.ForeignKey(
        ConsentText,
        verbose_name=_("Einwilligungstext"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    text_sha256 = models.CharField(_("SHA-256 des Texts"), max_length=64, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    note = models.TextField(_("Vermerk"), blank=True)
    # The staff user who made the change (None for the reader, a provider or a job). PROTECT,
    # not SET_NULL: the chain covers the actor, so blanking it would break the evidence; a
    # user who acted on consent is deactivated instead of deleted.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("Bearbeitet von"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # What changed, as {"field": {"old": …, "new": …}} (or the facts of an import). Part of the
    # chained content, so it never holds personal data: that goes to ip, user_agent, url, note,
    # which erasure can blank.
    data = models.JSONField(
        _("Änderung"),
        default=dict,
        db_default=models.Value({}, output_field=models.JSONField()),
        blank=True,
    )
    # The hash chain (newsletter/chain.py), written by event_record under the chain lock.
    chain_seq = models.BigIntegerField(_("Kettenposition"), unique=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    row_hash = models.CharField(max_length=64, editable=False)
    personal_digest = models.CharField(max_length=64, editable=False)
    prune_digest = models.CharField(max_length=64, blank=True, editable=False)
    # Set only by erasure, together with blanking the personal fields: the verifier then no
    # longer recomputes personal_digest, but wants a later erasure event of the same address.
    redacted = models.BooleanField(default=False, editable=False)

    class Meta:
        ordering = ["at", "id"]
        verbose_name = _("Einwilligungsereignis")
        verbose_name_plural = _("Einwilligungsereignisse")
        constraints = [
            # A request without the text that was shown would prove nothing.
            models.CheckConstraint(
                condition=~Q(kind="requested")
                | (Q(consent_text__isnull=False) & ~Q(text_sha256="")),
                name="consent_request_names_its_text",
            ),
            models.CheckConstraint(
                condition=~Q(kind="revoked") | ~Q(channel=""),
                name="consent_revocation_names_its_channel",
            ),
        ]
        indexes = [
            # The chain's verifier reads the erasures up front; they are few among millions.
            models.Index(
                fields=["address_hmac", "chain_seq"],
                condition=Q(kind="erased"),
                name="consent_event_erased_idx",
            ),
            # The dashboard's per-day counts of one kind (and revocations per channel)
            # over the last 90 days read only this index.
            models.Index(fields=["kind", "at", "channel"], name="event_kind_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {timezone.localtime(self.at):%d.%m.%Y %H:%M}"


class SignupRequest(models.Model):
    """A signup as the form sent it, kept until a task has applied it to the address's
    subscription. The page writes one of these whatever the address's state, so its answer
    takes the same work (and time) for a new, pending, confirmed, lapsed or suppressed address;
    everything that depends on the state happens in the task, which deletes the row."""

    newsletter = models.ForeignKey(Newsletter, on_delete=models.CASCADE, related_name="+")
    consent_text = models.ForeignKey(
        ConsentText, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    email = models.EmailField(max_length=254)
    address_hmac = models.CharField(max_length=64, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    url = models.CharField(max_length=500, blank=True)
    form = models.CharField(max_length=80, blank=True)
    language = models.CharField(max_length=8)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = _("Anmeldeanfrage")
        verbose_name_plural = _("Anmeldeanfragen")

    def __str__(self) -> str:
        return f"{self.newsletter_id}:{timezone.localtime(self.created_at):%d.%m.%Y %H:%M}"


# The reason of a suppression written by an erasure (the others: hard_bounce, complaint,
# soft_bounce_limit). Only this one lets the address sign up again and be mailed.
SUPPRESSION_ERASURE = "erasure"


class Suppression(models.Model):
    """An address that must not be mailed, kept only as a keyed hash (survives erasure)."""

    address_hmac = models.CharField(_("Adress-Hash"), max_length=64, unique=True)
    reason = models.CharField(_("Grund"), max_length=40)
    created_at = models.DateTimeField(_("gesperrt am"), auto_now_add=True)

    class Meta:
        verbose_name = _("Sperre")
        verbose_name_plural = _("Sperrliste")

    def __str__(self) -> str:
        return f"{self.address_hmac[:12]}… ({self.reason})"
