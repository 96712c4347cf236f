"""Public pages, built from cached fragments (see caching.py and layout.py).

A page's own parts (title, head, main) are rendered without the request, so they never carry
a CSRF token or anything per reader; for anonymous readers they are filled into the shared
layout, and the reader's tokens into the result, on every response.
"""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.core.paginator import EmptyPage, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from newsletter.forms import form_started_token

from . import layout
from .caching import cached_fragment
from .models import Article
from .selectors import (
    ArticlePage,
    article_list_for_page,
    article_list_for_topic,
    article_list_related,
    article_page_get_for_preview,
    article_page_get_live,
    topic_get,
)

PAGE_SIZE = 10
MISSING = {"missing": True}


def _page_number(request: HttpRequest) -> int:
    raw = request.GET.get("page", "1")
    if not raw.isdigit() or not 0 < len(raw) < 6 or int(raw) < 1:
        raise Http404("no such page")
    return int(raw)


def _page_slice(queryset, number: int) -> dict[str, Any] | None:
    paginator = Paginator(queryset, PAGE_SIZE)
    try:
        page = paginator.page(number)
    except EmptyPage:
        return None
    return {"page_obj": page, "articles": list(page.object_list)}


def _render_parts(template: str, context: dict[str, Any]) -> dict[str, str]:
    """Render the head and main parts of a page for the cache (no request, no CSRF)."""
    context = {**context, "site_url": settings.SITE_URL}
    return {
        "head": render_to_string(f"articles/{template}_head.html", context),
        "main": render_to_string(f"articles/{template}_main.html", context),
        "title": render_to_string(f"articles/{template}_title.html", context).strip(),
    }


def _page_context(parts: dict[str, str], **extra: Any) -> dict[str, Any]:
    _found(parts)
    return {
        "page_title": mark_safe(parts["title"]),  # noqa: S308 - escaped when rendered
        "page_head": mark_safe(parts["head"]),  # noqa: S308 - our own rendered template
        "page_main": mark_safe(parts["main"]),  # noqa: S308 - our own rendered template
        **extra,
    }


def _found(parts: dict[str, str]) -> None:
    if parts.get("missing"):
        raise Http404("not found")


def _show(
    request: HttpRequest,
    parts: Callable[[], dict[str, str]],
    *,
    with_signup: bool = False,
    preview: Article | None = None,
) -> HttpResponse:
    """The page for this reader. For anonymous readers the whole page comes from the cache,
    with the only per-reader parts (the CSRF token and the signup form's fill-time token)
    filled in; signed-in users (editors) get it rendered afresh."""
    if request.user.is_authenticated:
        context = _page_context(parts(), with_signup=with_signup, preview=preview)
        return render(request, "articles/page.html", context)

    path = request.get_full_path()

    def build() -> layout.Pieces:
        page_parts = parts()
        _found(page_parts)
        return layout.page(page_parts, path=path, with_signup=with_signup)

    if set(request.GET) <= {"page"}:
        pieces = cached_fragment("page", get_language(), path, build=build)
    else:  # tracking parameters and the like: cheap from the cached parts, not stored again
        pieces = build()
    # Only the signup box has a form: other pages set no CSRF cookie and sign no token.
    reader = {"csrf": get_token(request), "started": form_started_token()} if with_signup else {}
    return HttpResponse(layout.join(pieces, reader))


@require_safe
def article_list(request: HttpRequest) -> HttpResponse:
    number = _page_number(request)

    def build():
        context = _page_slice(article_list_for_page(), number)
        if context is None:
            return MISSING
        return _render_parts("article_list", context)

    return _show(request, lambda: cached_fragment("list", get_language(), number, build=build))


@require_safe
def topic_detail(request: HttpRequest, slug: str) -> HttpResponse:
    number = _page_number(request)

    def build():
        topic = topic_get(slug=slug)
        context = _page_slice(article_list_for_topic(topic=topic), number) if topic else None
        if context is None:
            return MISSING
        return _render_parts("topic", {**context, "topic": topic})

    return _show(
        request, lambda: cached_fragment("topic", get_language(), slug, number, build=build)
    )


def _article_parts(page: ArticlePage) -> dict[str, str]:
    related = article_list_related(
        article_id=page.article.pk, topic_ids=[topic.pk for topic in page.topics]
    )
    context = {
        "article": page.article,
        "topics": page.topics,
        "authors": page.authors,
        "related": related,
    }
    return _render_parts("article", context)


@require_safe
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    def build():
        page = article_page_get_live(slug=slug)
        return _article_parts(page) if page else MISSING

    return _show(
        request,
        lambda: cached_fragment("article", get_language(), slug, build=build),
        with_signup=True,
    )


@never_cache
@staff_member_required
@permission_required("articles.view_article", raise_exception=True)
def article_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Exactly the public page, for any status, never cached.

    Drafts are unpublished words: being staff is not enough, the reader needs the right to
    see articles in the admin (anonymous readers go to the login, other staff get a 403).
    """
    page = article_page_get_for_preview(pk=pk)
    if page is None:
        raise Http404("not found")
    parts = _article_parts(page)
    return _show(request, lambda: parts, with_signup=True, preview=page.article)


@require_safe
def robots_txt(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "robots.txt",
        {"site_url": settings.SITE_URL},
        content_type="text/plain; charset=utf-8",
    )


def static_page(request: HttpRequest, *, template: str) -> HttpResponse:
    return render(request, f"articles/{template}.html")
