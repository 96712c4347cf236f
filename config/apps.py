"""The admin app with the project's own site (config.admin_site) in place of Django's."""

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class SiteAdminConfig(AdminConfig):
    default_site = "config.admin_site.AdminSite"


class SiteConfig(AppConfig):
    """The site itself as an app, for what belongs above both apps (the `seed_demo` command)."""

    name = "config"
    label = "site"
    verbose_name = "Site"
