"""RSS and Atom feeds, site-wide and per topic. Every item carries its disclaimer."""

from django.conf import settings
from django.contrib.syndication.views import Feed
from django.http import Http404
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed, Enclosure
from django.utils.html import escape, format_html
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from .models import Article, Topic
from .pictures import picture_file, pictures_flattened
from .selectors import article_list_for_page, article_list_for_topic, articles_localize, topic_get

FEED_SIZE = 20
# Feed readers show the enclosure as the item's picture; 960 px is sharp in every reader.
FEED_IMAGE_WIDTH = 960


class _ArticleItems:
    def item_title(self, item: Article) -> str:
        return item.title

    def item_description(self, item: Article) -> str:
        parts = []
        if item.feature_image:
            picture = picture_file(item.feature_image, min_width=FEED_IMAGE_WIDTH)
            parts.append(
                format_html(
                    '<p><img src="{}" width="{}" height="{}" alt="{}"></p>',
                    picture.url,
                    picture.width,
                    picture.height,
                    picture.alt,
                )
            )
        if item.lead:
            parts.append(f"<p><strong>{escape(item.lead)}</strong></p>")
        parts.append(pictures_flattened(item.body_html, max_width=FEED_IMAGE_WIDTH))
        if item.disclaimer_version:
            text = item.disclaimer_version.text_for(get_language() or settings.LANGUAGE_CODE)
            parts.append(f"<p><em>{escape(text)}</em></p>")
        return "\n".join(parts)

    def item_enclosures(self, item: Article) -> list[Enclosure]:
        if not item.feature_image:
            return []
        picture = picture_file(item.feature_image, min_width=FEED_IMAGE_WIDTH)
        return [Enclosure(picture.url, str(picture.bytes), picture.mime_type)]

    def item_pubdate(self, item: Article):
        return item.published_at

    def item_updateddate(self, item: Article):
        return item.display_time

    def item_author_name(self, item: Article) -> str:
        return ", ".join(author.name for author in item.authors.all())

    def item_categories(self, item: Article) -> list[str]:
        return [topic.name_for(get_language()) for topic in item.topics.all()]


class LatestArticlesRss(_ArticleItems, Feed):
    title = _("Meinung & Märkte – neueste Artikel")
    description = _("Meinungen, Analysen und Nachrichten aus unserer Redaktion.")

    def link(self) -> str:
        return reverse("articles:list")

    def items(self):
        # Each language's feed carries its translations, else the originals.
        return articles_localize(article_list_for_page()[:FEED_SIZE], language=get_language())


class LatestArticlesAtom(LatestArticlesRss):
    feed_type = Atom1Feed
    subtitle = LatestArticlesRss.description


class TopicArticlesRss(_ArticleItems, Feed):
    def get_object(self, request, slug: str) -> Topic:
        topic = topic_get(slug=slug)
        if topic is None:
            raise Http404("no such topic")
        return topic

    def title(self, obj: Topic) -> str:
        return _("Meinung & Märkte – Thema %(topic)s") % {"topic": obj.name_for(get_language())}

    def description(self, obj: Topic) -> str:
        return obj.description_for(get_language()) or self.title(obj)

    def link(self, obj: Topic) -> str:
        return obj.get_absolute_url()

    def items(self, obj: Topic):
        return articles_localize(
            article_list_for_topic(topic=obj)[:FEED_SIZE], language=get_language()
        )


class TopicArticlesAtom(TopicArticlesRss):
    feed_type = Atom1Feed

    def subtitle(self, obj: Topic) -> str:
        return self.description(obj)
