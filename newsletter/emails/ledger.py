"""The chain-head mail to the evidence archive: an outside copy of each verified checkpoint."""

from __future__ import annotations

from anymail.message import AnymailMessage
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from newsletter.models import ChainCheckpoint


def chain_checkpoint_message_build(*, checkpoint: ChainCheckpoint, to: str) -> AnymailMessage:
    """Plain text only, so the archived copy is the exact head and nothing a client rewrites."""
    context = {"checkpoint": checkpoint, "site_url": settings.SITE_URL}
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string("newsletter/email/chain_checkpoint_subject.txt", context)
        body = render_to_string("newsletter/email/chain_checkpoint_body.txt", context)
    return AnymailMessage(
        subject=" ".join(subject.split()),
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        tags=["consent-chain-checkpoint"],
        metadata={"checkpoint_id": str(checkpoint.id), "kind": "chain_checkpoint"},
        track_clicks=False,
        track_opens=False,
    )
