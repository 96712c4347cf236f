"""Writes of the consent ledger: one service per transition, each with its evidence.

Every transition locks the subscription row, checks the state, changes it and writes its
ConsentEvent in the same transaction. Mail is enqueued after commit. Repeating a transition
returns the current state and writes nothing new.

The modules group the services by purpose; every public name is importable from here.
"""

from newsletter.services.consent.erasure import subscriber_erase
from newsletter.services.consent.events import LAPSED_STATES
from newsletter.services.consent.evidence import subscriber_export, subscription_proof
from newsletter.services.consent.import_jobs import (
    subscription_import_queue,
    subscription_import_run,
)
from newsletter.services.consent.importing import (
    IMPORT_JOB_MAX_BYTES,
    IMPORT_JOB_MAX_ROWS,
    IMPORT_MAX_BYTES,
    IMPORT_MAX_ROWS,
    ImportReport,
    import_confirmations_send,
    subscription_import,
)
from newsletter.services.consent.preferences import (
    PreferenceChoice,
    data_link_request,
    data_link_send,
    preferences_apply,
    preferences_link_request,
    preferences_link_send,
    subscription_preferences_change,
    subscription_revoke_all,
)
from newsletter.services.consent.retention import consent_retention_run
from newsletter.services.consent.revocation import (
    subscription_revoke,
    subscription_suppress,
)
from newsletter.services.consent.signup import (
    CONFIRMATION_MAX_SENDS,
    CONFIRMATION_RESEND_AFTER,
    signup_request_apply,
    signup_request_record,
    subscription_confirm,
    subscription_confirmation_send,
    subscription_request,
    subscription_welcome_send,
)
from newsletter.services.consent.texts import (
    DEFAULT_CONSENT_TEXTS,
    consent_text_default_publish,
    consent_text_publish,
    newsletter_texts_save,
)

__all__ = [
    "CONFIRMATION_MAX_SENDS",
    "CONFIRMATION_RESEND_AFTER",
    "DEFAULT_CONSENT_TEXTS",
    "IMPORT_JOB_MAX_BYTES",
    "IMPORT_JOB_MAX_ROWS",
    "IMPORT_MAX_BYTES",
    "IMPORT_MAX_ROWS",
    "ImportReport",
    "LAPSED_STATES",
    "PreferenceChoice",
    "consent_retention_run",
    "consent_text_default_publish",
    "consent_text_publish",
    "data_link_request",
    "data_link_send",
    "import_confirmations_send",
    "newsletter_texts_save",
    "preferences_apply",
    "preferences_link_request",
    "preferences_link_send",
    "subscriber_erase",
    "signup_request_apply",
    "signup_request_record",
    "subscriber_export",
    "subscription_confirm",
    "subscription_confirmation_send",
    "subscription_import",
    "subscription_import_queue",
    "subscription_import_run",
    "subscription_preferences_change",
    "subscription_proof",
    "subscription_request",
    "subscription_revoke",
    "subscription_revoke_all",
    "subscription_suppress",
    "subscription_welcome_send",
]
