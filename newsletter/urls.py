from django.urls import path

from newsletter.views import consent

app_name = "newsletter"
urlpatterns: list = [
    path("anmelden/", consent.signup, name="signup"),
    path("anmelden/danke/", consent.signup_done, name="signup_done"),
    path("einstellungen/", consent.preferences_request, name="preferences_request"),
    path(
        "einstellungen/gesendet/",
        consent.preferences_request_done,
        name="preferences_request_done",
    ),
]
