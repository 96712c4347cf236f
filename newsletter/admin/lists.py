"""Change lists that stay fast on tables of millions of rows, and search by address.

Django's change list counts the filtered rows (`COUNT(*)`) for its paginator on every page;
on ten million subscriptions that alone takes seconds. Above a threshold the paginator takes
PostgreSQL's planner estimate instead (EXPLAIN, no table scan); small results are counted.
Facets, DISTINCT-based filters and LIKE '%…%' searches are left out for the same reason.
"""

from __future__ import annotations

import json
from datetime import datetime

from django.conf import settings
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from newsletter.addresses import address_hmac

EXACT_BELOW = 10_000


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        connection = connections[queryset.db]
        if connection.vendor != "postgresql":
            return super().count
        sql, params = queryset.order_by().values("pk").query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        if isinstance(plan, str):
            plan = json.loads(plan)
        estimate = int(plan[0]["Plan"]["Plan Rows"])
        if estimate < EXACT_BELOW:
            return super().count
        return estimate


class LanguageFilter(admin.SimpleListFilter):
    """The configured languages (Django's default filter would SELECT DISTINCT over the table)."""

    title = _("Sprache")
    parameter_name = "language"

    def lookups(self, request, model_admin):
        return [(code, _(name)) for code, name in settings.LANGUAGES]

    def queryset(self, request, queryset):
        return queryset.filter(language=self.value()) if self.value() else queryset


class AddressSearchMixin:
    """Search by address through its keyed hash, the only identity the suppression list and
    erased evidence keep (and an indexed lookup at any table size). A term without "@" is
    matched against the start of the stored address where the model has one."""

    address_hmac_field = "address_hmac"
    address_prefix_field: str | None = None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            return queryset.filter(**{self.address_hmac_field: address_hmac(term)}), False
        if self.address_prefix_field:
            return queryset.filter(**{f"{self.address_prefix_field}__startswith": term}), False
        return queryset.filter(**{self.address_hmac_field: term.lower()}), False


class EvidenceMediaMixin:
    class Media:
        css = {"all": ["newsletter/admin_forms.css"]}


class LargeListMixin(EvidenceMediaMixin):
    """Change lists of tables that grow to millions of rows: no full COUNT(*), no facets."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    paginator = EstimatedCountPaginator


class WideListMixin:
    """Change lists whose columns need the whole window: the admin's navigation sidebar is
    left out of their list page (the breadcrumbs and the start page still lead everywhere).
    With it, the table got about 630 of 1,280 px beside the filters, and the subscription,
    consent-event and suppression lists scrolled sideways inside their box."""

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(
            request, {**(extra_context or {}), "is_nav_sidebar_enabled": False}
        )


def short_time(value: datetime | None) -> str:
    """A time as the short local form ("30.11.2026 14:23" in German), Europe/Berlin."""
    if value is None:
        return "–"
    return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
