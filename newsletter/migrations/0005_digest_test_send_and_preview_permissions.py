"""Two permissions of their own for digests (a test mail to oneself, a preview as a subscriber),
given to the newsletter managers; view_digest alone no longer reaches either."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

NEWSLETTER_MANAGERS = "Newsletter-Verwaltung"
CODENAMES = ["send_test_digest", "preview_as_subscriber"]


def grant_to_managers(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    app_config = apps.get_app_config("newsletter")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = Permission.objects.filter(
        content_type__app_label="newsletter", codename__in=CODENAMES
    )
    for group in Group.objects.filter(name=NEWSLETTER_MANAGERS):
        group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("newsletter", "0004_digest_verbose_names"),
        # The group is created there.
        ("articles", "0004_editor_groups"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="digest",
            options={
                "ordering": ["-slot"],
                "permissions": [
                    ("send_test_digest", "Kann einen Test-Digest an sich selbst senden"),
                    ("preview_as_subscriber", "Kann einen Digest als Abonnent ansehen"),
                ],
                "verbose_name": "Digest",
                "verbose_name_plural": "Digests",
            },
        ),
        migrations.RunPython(grant_to_managers, migrations.RunPython.noop),
    ]
