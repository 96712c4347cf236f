"""The naive baseline the digest is measured against: one Celery task per recipient that loads
its rows through the ORM, renders the full templates with the personal values, and makes one
provider API call over a fresh connection. Only the benchmark uses it (workers load it with
`--include bench.naive`); it is what a straightforward first version of a digest looks like.
"""

from __future__ import annotations

from anymail.message import AnymailMessage
from celery import shared_task
from django.core.mail import get_connection
from django.template.loader import render_to_string
from django.utils import translation

from articles.models import Article
from newsletter.emails.digest import (
    BERLIN,
    Recipient,
    article_items,
    common_headers,
    newsletter_sender,
    personal_headers,
    personal_values,
)
from newsletter.models import Digest, Subscription, SubscriptionState


@shared_task(ignore_result=True)
def naive_send_task(digest_id: int, subscription_id: int, tag: str) -> None:
    digest = Digest.objects.select_related("newsletter").get(pk=digest_id)
    subscription = Subscription.objects.get(pk=subscription_id)
    if subscription.state != SubscriptionState.CONFIRMED:
        return
    articles = list(
        Article.objects.filter(pk__in=digest.article_ids).select_related("disclaimer_version")
    )
    language = "en" if subscription.language.startswith("en") else "de"
    recipient = Recipient(
        delivery_id=0,
        subscription_id=subscription.pk,
        email=subscription.email,
        address_hmac=subscription.address_hmac,
        confirmed_at=subscription.confirmed_at,
    )
    values = personal_values(recipient)
    context = {
        "newsletter": digest.newsletter,
        "digest": digest,
        "items": article_items(articles, language),
        "personal": True,
        **values,
        "slot_date": digest.slot.astimezone(BERLIN).strftime("%d.%m.%Y"),
    }
    with translation.override(language):
        text = render_to_string("newsletter/email/digest_body.txt", context)
        html = render_to_string("newsletter/email/digest_body.html", context)
    message = AnymailMessage(
        subject=digest.subject,
        body=text,
        from_email=newsletter_sender(digest.newsletter),
        to=[subscription.email],
        headers={
            **common_headers(digest),
            **personal_headers(digest=digest, recipient=recipient, values=values),
        },
    )
    message.attach_alternative(html, "text/html")
    message.metadata = {"digest_id": tag}
    message.track_opens = False
    get_connection(fail_silently=False).send_messages([message])
