"""anymail tracking webhooks → one service call per event.

Only the configured provider's tracking URL answers (every other one is 404, as is every one
without ANYMAIL_ESP); anymail checks the webhook secret (basic auth) and the provider's
signature before this receiver runs; the service deduplicates by event id and acts only on
events about its own deliveries.
"""

import functools
import logging
from collections.abc import Callable

from anymail.signals import tracking
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, RequestDataTooBig
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest

from newsletter.services.digest_events import provider_event_record, tracking_event_from_anymail

logger = logging.getLogger(__name__)


@receiver(tracking, dispatch_uid="newsletter.digest_tracking")
def digest_tracking_received(sender, event, esp_name, **kwargs) -> None:
    provider_event_record(event=tracking_event_from_anymail(esp=str(esp_name), event=event))


def tracking_webhook_esp(url_name: str) -> str:
    """The ANYMAIL_ESP an anymail webhook URL belongs to ("mailgun_tracking_webhook" →
    "mailgun"; Mandrill's combined "mandrill_webhook" → "mandrill")."""
    return url_name.removesuffix("_webhook").removesuffix("_tracking")


def webhook_view_guarded(
    view: Callable[..., HttpResponse], *, esp: str
) -> Callable[..., HttpResponse]:
    """An anymail webhook view that exists only while `esp` is the configured ANYMAIL_ESP
    (read per request, so a settings change needs no new URLconf) and answers what it cannot
    process with a 4xx, never a 500: a body that does not parse, nests too deep or exceeds
    DATA_UPLOAD_MAX_MEMORY_SIZE is 400. (Authentication and signatures are anymail's, and
    already answer 4xx.)"""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not esp or getattr(settings, "ANYMAIL_ESP", "") != esp:
            raise Http404("no webhook for this provider here")
        try:
            return view(request, *args, **kwargs)
        except ImproperlyConfigured as exc:
            raise Http404("no webhook for this provider here") from exc
        except RequestDataTooBig:
            logger.warning("oversized webhook body at %s", request.path)
            return HttpResponseBadRequest("webhook body too large")
        except RecursionError:
            logger.warning("webhook body nested too deeply at %s", request.path)
            return HttpResponseBadRequest("webhook body nested too deeply")
        except (ValueError, KeyError, TypeError, AttributeError):
            # With the traceback: a bug in our own receiver ends here too and must show.
            logger.warning("unparseable webhook body at %s", request.path, exc_info=True)
            return HttpResponseBadRequest("unparseable webhook body")

    return guarded
