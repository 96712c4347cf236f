"""anymail tracking webhooks → one service call per event.

anymail checks the webhook secret (basic auth) and the provider's signature before this
receiver runs; the service deduplicates by event id.
"""

from anymail.signals import tracking
from django.dispatch import receiver

from newsletter.services.digest_events import provider_event_record, tracking_event_from_anymail


@receiver(tracking, dispatch_uid="newsletter.digest_tracking")
def digest_tracking_received(sender, event, esp_name, **kwargs) -> None:
    provider_event_record(event=tracking_event_from_anymail(esp=str(esp_name).lower(), event=event))
