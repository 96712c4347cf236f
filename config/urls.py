from django.conf import settings
from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.contrib.sitemaps.views import sitemap
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from articles.sitemaps import SITEMAPS as ARTICLE_SITEMAPS
from config import health, media
from newsletter.sitemaps import SITEMAPS as NEWSLETTER_SITEMAPS

admin.site.site_header = _("Meinung & Märkte – Redaktion")
admin.site.site_title = _("Meinung & Märkte")
admin.site.index_title = _("Artikel, Newsletter und Versand")

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("newsletter.urls_unprefixed")),
]
if settings.MEDIA_SERVE:
    urlpatterns.append(
        path(f"{settings.MEDIA_URL.strip('/')}/<path:path>", media.media_serve, name="media")
    )

urlpatterns += i18n_patterns(
    path(settings.ADMIN_URL, admin.site.urls),
    path("newsletter/", include("newsletter.urls")),
    # One sitemap for both apps' pages, each in every language.
    path(
        "sitemap.xml",
        sitemap,
        {"sitemaps": {**ARTICLE_SITEMAPS, **NEWSLETTER_SITEMAPS}},
        name="sitemap",
    ),
    path("", include("articles.urls")),
    prefix_default_language=False,
)
