"""Django's admin site, except that "view on site" needs the right to see the object.

Django answers /admin/r/<type>/<id>/ to any staff member with the object's public address,
which for a draft article is its unpublished slug; here only those who may see the object
in the admin are sent there.
"""

from django.contrib import admin
from django.contrib.contenttypes import views as contenttype_views
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path


class AdminSite(admin.AdminSite):
    def get_urls(self) -> list:
        guarded = path(
            "r/<path:content_type_id>/<path:object_id>/",
            self.admin_view(self.view_on_site),
            name="view_on_site",
        )
        return [
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
