"""The default disclaimer for opinion articles, in the publisher's words (and in English)."""

from django.db import migrations

NAME = "Meinungshinweis"
TEXT_DE = (
    "Hinweis: Bei diesem Artikel handelt es sich um eine Meinungsäußerung unserer Redaktion. "
    "Wir betreiben keine Anlageberatung. Jeder Anleger muss selbst ausreichend recherchieren "
    "und ist für seine Anlageentscheidungen selbst verantwortlich."
)
TEXT_EN = (
    "Note: This article is an expression of opinion by our editorial team. We do not provide "
    "investment advice. Every investor must do sufficient research of their own and is solely "
    "responsible for their investment decisions."
)


def create_default(apps, schema_editor):
    Disclaimer = apps.get_model("articles", "Disclaimer")
    DisclaimerVersion = apps.get_model("articles", "DisclaimerVersion")
    if Disclaimer.objects.filter(default_for_kind="opinion").exists():
        return
    disclaimer, _ = Disclaimer.objects.get_or_create(
        name=NAME, defaults={"default_for_kind": "opinion"}
    )
    DisclaimerVersion.objects.get_or_create(
        disclaimer=disclaimer, version=1, defaults={"text_de": TEXT_DE, "text_en": TEXT_EN}
    )


class Migration(migrations.Migration):
    dependencies = [("articles", "0002_constraint_error_codes")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
