"""URLs that must not carry a language prefix: links in mail and provider webhooks."""

from anymail import urls as anymail_urls
from django.urls import URLPattern, include, path

from newsletter.views import consent
from newsletter.webhooks import tracking_webhook_esp, webhook_view_guarded

# Only anymail's tracking webhooks (we take no inbound mail), and of those only the one of
# the configured ANYMAIL_ESP answers (checked per request); each answers 4xx to what it
# cannot process.
tracking_webhooks = [
    URLPattern(
        p.pattern,
        webhook_view_guarded(p.callback, esp=tracking_webhook_esp(p.name)),
        p.default_args,
        p.name,
    )
    for p in anymail_urls.urlpatterns
    if p.name.endswith("_tracking_webhook") or p.name == "mandrill_webhook"
]

urlpatterns = [
    path("n/bestaetigen/<str:token>/", consent.confirm, name="newsletter_confirm"),
    path("n/abmelden/<str:token>/", consent.unsubscribe, name="newsletter_unsubscribe"),
    path("n/einstellungen/<str:token>/", consent.preferences, name="newsletter_preferences"),
    # The short-lived links mailed before an export or erasure (config.logging redacts them).
    path("n/daten-export/<str:token>/", consent.data_export, name="newsletter_data_export"),
    path("n/daten-loeschen/<str:token>/", consent.data_erase, name="newsletter_data_erase"),
    # Provider tracking webhooks (anymail checks ANYMAIL_WEBHOOK_SECRET and the signature).
    path("anymail/", include((tracking_webhooks, "anymail"))),
]
