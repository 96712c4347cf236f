"""The admin app with the project's own site (config.admin_site) in place of Django's."""

from django.contrib.admin.apps import AdminConfig


class SiteAdminConfig(AdminConfig):
    default_site = "config.admin_site.AdminSite"
