"""Which library pictures each article's text shows, recorded for the texts already stored
(their HTML gets the pictures' srcsets at the next save)."""

import re

import django.db.models.deletion
from django.db import migrations, models

# As articles.models.IMAGE_STEM at the time of writing.
IMAGE_STEM = re.compile(r"images/\d{4}/\d{2}/[0-9a-f]{16}")


def record_body_images(apps, schema_editor):
    Article = apps.get_model("articles", "Article")
    ArticleImage = apps.get_model("articles", "ArticleImage")
    Image = apps.get_model("articles", "Image")
    images = {name.rsplit(".", 1)[0]: pk for pk, name in Image.objects.values_list("pk", "file")}
    if not images:
        return
    uses = []
    for article in Article.objects.prefetch_related("translations"):
        texts = [article.body_markdown] + [t.body_markdown for t in article.translations.all()]
        stems = {match.group(0) for text in texts for match in IMAGE_STEM.finditer(text)}
        uses += [
            ArticleImage(article=article, image_id=images[stem])
            for stem in sorted(stems)
            if stem in images
        ]
    ArticleImage.objects.bulk_create(uses, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0007_article_events_and_revisions"),
    ]

    operations = [
        migrations.CreateModel(
            name="ArticleImage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "article",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="body_images",
                        to="articles.article",
                        verbose_name="Artikel",
                    ),
                ),
                (
                    "image",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="body_uses",
                        to="articles.image",
                        verbose_name="Bild",
                    ),
                ),
            ],
            options={
                "verbose_name": "Bild im Text",
                "verbose_name_plural": "Bilder im Text",
                "constraints": [
                    models.UniqueConstraint(fields=("article", "image"), name="article_image_once")
                ],
            },
        ),
        migrations.RunPython(record_body_images, migrations.RunPython.noop),
    ]
