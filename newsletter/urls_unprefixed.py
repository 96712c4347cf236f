"""URLs that must not carry a language prefix: links in mail and provider webhooks."""

from django.urls import include, path

from newsletter.views import consent

urlpatterns = [
    path("n/bestaetigen/<str:token>/", consent.confirm, name="newsletter_confirm"),
    path("n/abmelden/<str:token>/", consent.unsubscribe, name="newsletter_unsubscribe"),
    path("n/einstellungen/<str:token>/", consent.preferences, name="newsletter_preferences"),
    # Provider tracking webhooks (anymail checks ANYMAIL_WEBHOOK_SECRET and the signature).
    path("anymail/", include("anymail.urls")),
]
