"""`manage.py send_digest <slug> [--now] [--frequency weekly]` through the scheduler's path."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from newsletter.models import Newsletter
from newsletter.schedule import newsletter_due_slots
from newsletter.services.digests import digest_create, digest_start_now


class Command(BaseCommand):
    help = (
        "Start a newsletter's digest: without --now its latest due slot (as the beat would), "
        "with --now a slot for the current minute. A slot that has its digest is not repeated."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--now", action="store_true", help="a slot for the current minute")
        parser.add_argument("--frequency", choices=["daily", "weekly"], default=None)

    def handle(self, *args, slug: str, now: bool, frequency: str | None, **options):
        newsletter = Newsletter.objects.filter(slug=slug).first()
        if newsletter is None:
            raise CommandError(f"no newsletter with slug {slug!r}")
        if now:
            try:
                results = [digest_start_now(newsletter=newsletter, frequency=frequency)]
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        else:
            results = [
                digest_create(newsletter=newsletter, frequency=slot.frequency, slot=slot.at)
                for slot in newsletter_due_slots(newsletter, timezone.now())
                if frequency in (None, slot.frequency)
            ]
            if not results:
                raise CommandError("no slot is due yet (use --now to send at once)")
        for result in results:
            digest = result.digest
            verb = "created" if result.created else "already there"
            self.stdout.write(
                f"digest {digest.pk} ({digest.frequency}, "
                f"{timezone.localtime(digest.slot):%d.%m.%Y %H:%M}): {verb}, "
                f"state {digest.state}, {len(digest.article_ids)} articles"
            )
