import io

import factory
from django.utils import timezone
from PIL import Image as PILImage

from articles.imaging import image_prepare
from articles.models import (
    Article,
    ArticleKind,
    ArticleStatus,
    ArticleTranslation,
    Author,
    Disclaimer,
    DisclaimerVersion,
    Image,
    Topic,
)
from articles.services import article_translation_save, image_store

# The seed page's "Hinweis", verbatim: the default opinion disclaimer made by a migration.
SEED_NOTE = (
    "Hinweis: Bei diesem Artikel handelt es sich um eine Meinungsäußerung unserer Redaktion. "
    "Wir betreiben keine Anlageberatung. Jeder Anleger muss selbst ausreichend recherchieren "
    "und ist für seine Anlageentscheidungen selbst verantwortlich."
)


class TopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Topic
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Thema {n}")
    slug = factory.Sequence(lambda n: f"thema-{n}")


class AuthorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Author

    name = factory.Sequence(lambda n: f"Autorin {n}")
    slug = factory.Sequence(lambda n: f"autorin-{n}")


class DisclaimerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Disclaimer

    name = factory.Sequence(lambda n: f"Hinweis {n}")


class DisclaimerVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DisclaimerVersion

    disclaimer = factory.SubFactory(DisclaimerFactory)
    version = 1
    text_de = (
        "Hinweis: Bei diesem Artikel handelt es sich um eine Meinungsäußerung unserer Redaktion. "
        "Wir betreiben keine Anlageberatung."
    )
    text_en = "Note: this article is the opinion of our editors. We give no investment advice."


class ArticleFactory(factory.django.DjangoModelFactory):
    """A published opinion article with a disclaimer, live an hour ago."""

    class Meta:
        model = Article
        skip_postgeneration_save = True

    title = factory.Sequence(lambda n: f"Meinung Nummer {n}")
    slug = factory.Sequence(lambda n: f"meinung-{n}")
    kind = ArticleKind.OPINION
    lead = "Ein kurzer Vorspann."
    body_markdown = "## Überschrift\n\nText mit *Betonung*."
    body_html = "<h2>Überschrift</h2>\n<p>Text mit <em>Betonung</em>.</p>"
    status = ArticleStatus.PUBLISHED
    published_at = factory.LazyFunction(lambda: timezone.now() - timezone.timedelta(hours=1))
    disclaimer_version = factory.SubFactory(DisclaimerVersionFactory)

    @factory.post_generation
    def topics(self, create, extracted, **kwargs):
        if create and extracted:
            self.topics.set(extracted)


class DraftArticleFactory(ArticleFactory):
    """A draft opinion without disclaimer or live time, as an editor starts one."""

    status = ArticleStatus.DRAFT
    published_at = None
    disclaimer_version = None


def picture_bytes(
    *, width: int = 1200, height: int = 675, fmt: str = "PNG", colour=(30, 90, 160), **save
) -> bytes:
    """A real picture made by Pillow, in any format it writes."""
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buffer, fmt, **save)
    return buffer.getvalue()


def image_create(
    *, alt_text: str = "Ein blaues Rechteck", caption: str = "", credit: str = "", **picture
) -> Image:
    """A library picture through the same path as an upload (checks, renditions, storage)."""
    return image_store(
        prepared=image_prepare(data=picture_bytes(**picture)),
        alt_text=alt_text,
        caption=caption,
        credit=credit,
    )


def english_translation_save(
    article: Article, *, title: str, slug: str, body_markdown: str = "Text", **fields
) -> ArticleTranslation:
    """The article's English translation, saved as the admin saves it (body rendered,
    pictures recorded as used)."""
    return article_translation_save(
        translation=ArticleTranslation(
            article=article,
            language="en",
            title=title,
            slug=slug,
            body_markdown=body_markdown,
            **fields,
        )
    )
