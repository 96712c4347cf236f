"""The newsletter's public pages in the sitemap: the signup page and the digest archive, each
in every language (config/urls.py puts them beside the articles' sitemaps)."""

from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from newsletter.models import Digest
from newsletter.selectors.digests import digest_list_archive


class NewsletterPageSitemap(Sitemap):
    changefreq = "daily"
    priority = 0.5
    i18n = True
    alternates = True
    x_default = True

    def items(self) -> list[str]:
        return ["newsletter:signup", "newsletter:digest_archive"]

    def location(self, item: str) -> str:
        return reverse(item)


class DigestArchiveSitemap(Sitemap):
    changefreq = "never"
    priority = 0.3
    i18n = True
    alternates = True
    x_default = True

    def items(self):
        return digest_list_archive().select_related(None).only("pk", "finished_at", "slot")

    def location(self, item: Digest) -> str:
        return reverse("newsletter:digest_archive_detail", args=[item.pk])

    def lastmod(self, item: Digest):
        return item.finished_at or item.slot


SITEMAPS = {"newsletter": NewsletterPageSitemap, "archive": DigestArchiveSitemap}
