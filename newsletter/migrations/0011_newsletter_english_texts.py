"""Newsletters in English: a description and a subject template of their own.

The English signup box's button now reads "Submit": an English consent text that still is
the old default (which named the German "Abschicken" button) gets a new version naming the
button the reader sees. Earlier versions stay as they were, since evidence points at them."""

import hashlib

from django.db import migrations, models

OLD = (
    "Sign up here for the free newsletter “{name}”.\n\n"
    "By entering your e-mail address and clicking the “Abschicken” (submit) button you give "
)
NEW = "Sign up here for the free newsletter “{name}”.\n\nBy entering your e-mail address and clicking the “Submit” button you give "


def forwards(apps, schema_editor):
    ConsentText = apps.get_model("newsletter", "ConsentText")
    Newsletter = apps.get_model("newsletter", "Newsletter")
    for newsletter in Newsletter.objects.all():
        current = (
            ConsentText.objects.filter(newsletter=newsletter, language="en")
            .order_by("-version")
            .first()
        )
        old_start = OLD.format(name=newsletter.name)
        if current is None or not current.text.startswith(old_start):
            continue
        text = NEW.format(name=newsletter.name) + current.text[len(old_start) :]
        ConsentText.objects.create(
            newsletter=newsletter,
            language="en",
            version=current.version + 1,
            text=text,
            sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        )


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0010_campaigns_mailing_kind_and_branding")]

    operations = [
        migrations.AddField(
            model_name="newsletter",
            name="description_en",
            field=models.TextField(
                blank=True,
                help_text="Leer lassen, um auch englischen Lesern die deutsche Beschreibung zu zeigen.",
                verbose_name="Beschreibung (Englisch)",
            ),
        ),
        migrations.AddField(
            model_name="newsletter",
            name="subject_template_en",
            field=models.CharField(
                default="{newsletter}: {count} new articles, {date}",
                help_text="Für Leser, die ihre Mails auf Englisch erhalten; dieselben Platzhalter.",
                max_length=200,
                verbose_name="Betreffvorlage (Englisch)",
            ),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
