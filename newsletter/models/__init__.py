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
from .ledger import CHAIN_HEAD_ID, ChainCheckpoint, ChainHead, ChainPrune

__all__ = [
    "CHAIN_HEAD_ID",
    "Batch",
    "ChainCheckpoint",
    "ChainHead",
    "ChainPrune",
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
