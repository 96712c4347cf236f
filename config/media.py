"""Uploaded pictures from var/media, served by the app when no proxy or object store does.

Every stored name is random and never reused (articles.services.image_store), so a response
may be cached for a year by browsers and any proxy in front. Only the formats the app writes
are served; directory listings never.
"""

from django.conf import settings
from django.http import Http404, HttpRequest
from django.views.decorators.http import require_safe
from django.views.static import serve

SERVED_SUFFIXES = (".jpg", ".webp")


@require_safe
def media_serve(request: HttpRequest, path: str):
    if not path.endswith(SERVED_SUFFIXES):
        raise Http404("not a picture")
    response = serve(request, path, document_root=settings.MEDIA_ROOT, show_indexes=False)
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
