from django.contrib.sitemaps import Sitemap
from django.urls import reverse

from .models import Article, Topic
from .selectors import article_list_live, topic_list_navigation


class ArticleSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.8
    i18n = True
    alternates = True
    x_default = True

    def items(self):
        return article_list_live().only("slug", "published_at", "corrected_at")

    def lastmod(self, item: Article):
        return item.display_time


class TopicSitemap(Sitemap):
    changefreq = "daily"
    priority = 0.6
    i18n = True
    alternates = True

    def items(self) -> list[Topic]:
        return topic_list_navigation()


class PageSitemap(Sitemap):
    changefreq = "daily"
    priority = 0.5
    i18n = True
    alternates = True

    def items(self) -> list[str]:
        return ["articles:list", "articles:impressum", "articles:datenschutz"]

    def location(self, item: str) -> str:
        return reverse(item)


SITEMAPS = {"articles": ArticleSitemap, "topics": TopicSitemap, "pages": PageSitemap}
