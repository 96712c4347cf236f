"""`manage.py consent_verify [--from-checkpoint] [--anchor SEQ:HASH]`: walk the consent chain."""

import re
import time

from django.core.management.base import BaseCommand, CommandError

from newsletter.services.ledger import (
    chain_head_anchor_check,
    chain_verify,
    chain_verify_from_checkpoint,
)

ANCHOR = re.compile(r"^(\d+):([0-9a-f]{64})$")


class Command(BaseCommand):
    help = (
        "Verify the hash chain of the consent ledger and name the first broken link (position, "
        "event id, what differs); exits 1 on any break."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--from-checkpoint",
            action="store_true",
            help="verify only what was appended after the last checkpoint",
        )
        parser.add_argument(
            "--anchor",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="a chain head kept outside (the archive mail); its link must still match",
        )

    def handle(self, *args, from_checkpoint: bool, anchor: list[str], **options):
        anchors = []
        for value in anchor:
            match = ANCHOR.match(value.strip().lower())
            if match is None:
                raise CommandError(f"--anchor must be SEQ:HASH (64 hex digits), not {value!r}")
            anchors.append((int(match[1]), match[2]))
        started = time.perf_counter()
        report = chain_verify_from_checkpoint() if from_checkpoint else chain_verify()
        seconds = time.perf_counter() - started
        breaks = list(report.breaks)
        for seq, row_hash in anchors:
            anchor_break = chain_head_anchor_check(seq=seq, row_hash=row_hash)
            if anchor_break is not None:
                breaks.append(anchor_break)
        if breaks:
            for item in breaks:
                self.stderr.write(str(item))
            raise CommandError(
                f"consent chain NOT intact ({report.events} events verified after position "
                f"{report.from_seq} before the break)",
                returncode=1,
            )
        self.stdout.write(
            f"consent chain intact: positions {report.from_seq + 1}–{report.last_seq}, "
            f"{report.events} events, {report.pruned} pruned links, head {report.last_hash}, "
            f"{seconds:.2f} s"
        )
