from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = _("Newsletter")

    def ready(self) -> None:
        # Connects the anymail tracking receiver (provider webhooks for digests) and registers
        # the deployment checks of its authentication.
        from newsletter import checks, webhooks  # noqa: F401
