from django.contrib.sitemaps import Sitemap
from django.db.models import Prefetch
from django.urls import reverse
from django.utils.translation import get_language

from .models import Article, ArticleTranslation, Topic
from .selectors import article_list_live, topic_list_navigation


class ArticleSitemap(Sitemap):
    changefreq = "weekly"
    priority = 0.8
    i18n = True
    alternates = True
    x_default = True

    def items(self):
        return (
            article_list_live()
            .only("slug", "published_at", "corrected_at")
            .prefetch_related(
                Prefetch(
                    "translations",
                    queryset=ArticleTranslation.objects.only("article_id", "language", "slug"),
                )
            )
        )

    def location(self, item: Article) -> str:
        """Each language's URL under the slug of its text (the original's where untranslated);
        Django calls this with the language of the entry or alternate active."""
        language = get_language()
        slug = next((t.slug for t in item.translations.all() if t.language == language), item.slug)
        return reverse("articles:detail", kwargs={"slug": slug})

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
