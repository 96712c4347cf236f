from .consent import (
    ConsentEvent,
    ConsentEventKind,
    ConsentText,
    Frequency,
    Newsletter,
    RevocationChannel,
    Subscription,
    SubscriptionState,
    Suppression,
)
from .delivery import (
    Batch,
    BatchState,
    Delivery,
    DeliveryState,
    Digest,
    DigestState,
    ProviderEvent,
)

__all__ = [
    "Batch",
    "BatchState",
    "ConsentEvent",
    "ConsentEventKind",
    "ConsentText",
    "Delivery",
    "DeliveryState",
    "Digest",
    "DigestState",
    "Frequency",
    "Newsletter",
    "ProviderEvent",
    "RevocationChannel",
    "Subscription",
    "SubscriptionState",
    "Suppression",
]
