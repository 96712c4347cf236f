"""The two staff groups: editors (articles and their texts) and newsletter managers.

Editors get nothing of the newsletter app, so they never see subscriber data.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

EDITORS = "Redaktion"
NEWSLETTER_MANAGERS = "Newsletter-Verwaltung"
EDITOR_MODELS = ["article", "topic", "author", "disclaimer", "disclaimerversion"]


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")

    editors, _ = Group.objects.get_or_create(name=EDITORS)
    editors.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="articles", content_type__model__in=EDITOR_MODELS
        )
    )
    managers, _ = Group.objects.get_or_create(name=NEWSLETTER_MANAGERS)
    managers.permissions.add(*Permission.objects.filter(content_type__app_label="newsletter"))


class Migration(migrations.Migration):
    dependencies = [
        ("articles", "0003_default_opinion_disclaimer"),
        ("newsletter", "0003_digest_batch_language_and_keyset_index"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
