from django.urls import path

from newsletter.views import consent, digests

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
    path("archiv/", digests.archive_list, name="digest_archive"),
    path("archiv/<int:pk>/", digests.archive_detail, name="digest_archive_detail"),
]
