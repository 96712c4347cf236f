"""anymail tracking webhooks → one service call per event.

anymail checks the webhook secret (basic auth) and the provider's signature before this
receiver runs; the service deduplicates by event id.
"""

import functools
import logging
from collections.abc import Callable

from anymail.signals import tracking
from django.core.exceptions import ImproperlyConfigured
from django.dispatch import receiver
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest

from newsletter.services.digest_events import provider_event_record, tracking_event_from_anymail

logger = logging.getLogger(__name__)


@receiver(tracking, dispatch_uid="newsletter.digest_tracking")
def digest_tracking_received(sender, event, esp_name, **kwargs) -> None:
    provider_event_record(event=tracking_event_from_anymail(esp=str(esp_name).lower(), event=event))


def webhook_view_guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """An anymail webhook view that answers what it cannot process with a 4xx, never a 500:
    a provider this installation is not configured for is 404, a body that does not parse 400.
    (Authentication and signatures are anymail's, and already answer 4xx.)"""

    @functools.wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except ImproperlyConfigured as exc:
            raise Http404("no webhook for this provider here") from exc
        except (ValueError, KeyError, TypeError, AttributeError):
            # With the traceback: a bug in our own receiver ends here too and must show.
            logger.warning("unparseable webhook body at %s", request.path, exc_info=True)
            return HttpResponseBadRequest("unparseable webhook body")

    return guarded
