"""Page numbers from the query string: one spelling per page, and only pages that exist.

Every public list page reads `page` through here, so a page value a reader makes up answers
404 instead of a server error, and each page has one spelling (and so one cache key).
"""

import re
from collections.abc import Sequence
from typing import Any

from django.core.paginator import EmptyPage, Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

# "2", never "02", "+2", " 2", "²" or "٢" (which str.isdigit() accepts and int() may refuse);
# six ASCII digits also bound what int() is asked to read.
_PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,5}")


def page_number_get(request: HttpRequest) -> int:
    """The page asked for (1 without `page`); 404 for anything but a plain positive number."""
    raw = request.GET.get("page")
    if raw is None:
        return 1
    if not _PAGE_NUMBER.fullmatch(raw):
        raise Http404("page must be a positive whole number")
    return int(raw)


def page_query(number: int) -> str:
    """The one query string of page `number` (none for the first): the URL its cache key uses."""
    return f"page={number}" if number > 1 else ""


def page_get(object_list: QuerySet[Any] | Sequence[Any], *, number: int, per_page: int) -> Page:
    """Page `number` of the list; 404 past its end (an empty list still has a first page)."""
    try:
        return Paginator(object_list, per_page).page(number)
    except EmptyPage as exc:
        raise Http404("no such page") from exc
