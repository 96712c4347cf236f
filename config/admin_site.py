"""Django's admin site, except that "view on site" needs the right to see the object, and that
an app may put a dashboard on its section's first page.

Django answers /admin/r/<type>/<id>/ to any staff member with the object's public address,
which for a draft article is its unpublished slug; here only those who may see the object
in the admin are sent there.

An app registers its dashboard (`app_dashboard_register`): a function giving extra context for
`/admin/<app>/` (rendered by the app's `admin/<app>/app_index.html`) and the dashboard's own
URLs below that path. The site knows nothing of any app's figures.
"""

from collections.abc import Callable

from django.contrib import admin
from django.contrib.contenttypes import views as contenttype_views
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, include, path


class AdminSite(admin.AdminSite):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._dashboards: dict[str, tuple[Callable[[HttpRequest], dict], Callable[[], list]]] = {}

    def app_dashboard_register(
        self,
        *,
        app_label: str,
        context: Callable[[HttpRequest], dict],
        urls: Callable[[], list],
    ) -> None:
        self._dashboards[app_label] = (context, urls)

    def app_index(self, request: HttpRequest, app_label: str, extra_context=None) -> HttpResponse:
        dashboard = self._dashboards.get(app_label)
        if dashboard is not None:
            extra_context = {**(extra_context or {}), **dashboard[0](request)}
        return super().app_index(request, app_label, extra_context)

    def get_urls(self) -> list:
        dashboard_urls = [
            path(f"{app_label}/", include(urls()))
            for app_label, (_ctx, urls) in self._dashboards.items()
        ]
        guarded = path(
            "r/<path:content_type_id>/<path:object_id>/",
            self.admin_view(self.view_on_site),
            name="view_on_site",
        )
        return dashboard_urls + [
            guarded if isinstance(url, URLPattern) and url.name == "view_on_site" else url
            for url in super().get_urls()
        ]

    def view_on_site(
        self, request: HttpRequest, content_type_id: str, object_id: str
    ) -> HttpResponse:
        try:
            model = ContentType.objects.get_for_id(int(content_type_id)).model_class()
        except (ValueError, ContentType.DoesNotExist):
            raise Http404("no such content type") from None
        model_admin = self._registry.get(model)
        if model_admin is None or not model_admin.has_view_or_change_permission(request):
            raise PermissionDenied
        return contenttype_views.shortcut(request, content_type_id, object_id)
