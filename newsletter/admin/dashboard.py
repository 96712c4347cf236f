"""The newsletter section's first page in the admin: the dashboard, and its CSV downloads.

Registered with the project's admin site (config.admin_site) for /admin/newsletter/; only
those who may read subscriptions see figures, everyone else the plain list of models.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.safestring import mark_safe

from newsletter.charts import figure_csv, figure_svg
from newsletter.models import Newsletter
from newsletter.selectors.reports import (
    DASHBOARD_DAYS,
    DASHBOARD_MAX_AGE,
    Dashboard,
    dashboard_cached,
)

PERMISSION = "newsletter.view_subscription"


def _newsletter(request: HttpRequest) -> Newsletter | None:
    raw = request.GET.get("newsletter", "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise Http404("no such newsletter")
    newsletter = Newsletter.objects.filter(pk=int(raw)).first()
    if newsletter is None:
        raise Http404("no such newsletter")
    return newsletter


def figures_with_charts(dashboard: Dashboard, *, key: str) -> list[dict]:
    """Each figure with its drawing; drawn once per built dashboard (pygal takes longer than
    the page's queries) and kept as long as the figures are."""
    cache_key = f"newsletter:dashboard-svg:{key}:{dashboard.built_at.timestamp()}"
    drawings = cache.get(cache_key)
    if drawings is None:
        drawings = [figure_svg(f) for f in dashboard.figures]
        cache.set(cache_key, drawings, DASHBOARD_MAX_AGE)
    return [
        {"figure": f, "svg": mark_safe(svg)}  # noqa: S308 - pygal's own SVG, scripts removed
        for f, svg in zip(dashboard.figures, drawings, strict=True)
    ]


def dashboard_context(request: HttpRequest) -> dict:
    if not request.user.has_perm(PERMISSION):
        return {}
    newsletter = _newsletter(request)
    dashboard = dashboard_cached(newsletter=newsletter)
    return {
        "dashboard": dashboard,
        "dashboard_days": DASHBOARD_DAYS,
        "dashboard_charts": figures_with_charts(
            dashboard, key=str(newsletter.pk if newsletter else "all")
        ),
        "dashboard_newsletter": newsletter,
        "dashboard_newsletters": Newsletter.objects.order_by("name", "id"),
        "dashboard_query": f"?newsletter={newsletter.pk}" if newsletter else "",
    }


def dashboard_csv(request: HttpRequest, key: str) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    figure = dashboard_cached(newsletter=_newsletter(request)).figure(key)
    if figure is None:
        raise Http404("no such figure")
    response = HttpResponse(figure_csv(figure), content_type="text/csv; charset=utf-8")
    stamp = timezone.localtime().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="{key}-{stamp}.csv"'
    return response


def dashboard_urls() -> list:
    return [
        path(
            "statistik/<slug:key>.csv",
            admin.site.admin_view(dashboard_csv),
            name="newsletter_dashboard_csv",
        )
    ]


admin.site.app_dashboard_register(
    app_label="newsletter", context=dashboard_context, urls=dashboard_urls
)
