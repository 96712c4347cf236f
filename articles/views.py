"""Public pages, built from cached fragments (see caching.py and layout.py).

A page's own parts (title, head, main) are rendered without the request, so they never carry
a CSRF token or anything per reader; for anonymous readers they are filled into the shared
layout, and the reader's tokens into the result, on every response.
"""

import math
import re
from collections.abc import Callable
from html import unescape
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.html import strip_tags
from django.utils.safestring import mark_safe
from django.utils.translation import get_language
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from . import layout
from .caching import cached_fragment
from .forms import ArticleForm
from .models import ORIGINAL_LANGUAGE, Article
from .pagination import page_get, page_number_get, page_query
from .selectors import (
    ArticlePage,
    article_list_for_page,
    article_list_for_topic,
    article_list_related,
    article_page_for_unsaved,
    article_page_get_for_preview,
    article_page_get_live,
    article_slugs,
    articles_localize,
    topic_get,
)
from .services import article_render_body

PAGE_SIZE = 10


def _page_slice(queryset, number: int) -> dict[str, Any]:
    page = page_get(queryset, number=number, per_page=PAGE_SIZE)
    return {
        "page_obj": page,
        "articles": articles_localize(page.object_list, language=get_language()),
    }


def _render_parts(template: str, context: dict[str, Any]) -> dict[str, str]:
    """Render the head and main parts of a page for the cache (no request, no CSRF)."""
    context = {**context, "site_url": settings.SITE_URL}
    return {
        "head": render_to_string(f"articles/{template}_head.html", context),
        "main": render_to_string(f"articles/{template}_main.html", context),
        "title": render_to_string(f"articles/{template}_title.html", context).strip(),
    }


def _page_context(parts: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "page_title": mark_safe(parts["title"]),  # noqa: S308 - escaped when rendered
        "page_head": mark_safe(parts["head"]),  # noqa: S308 - our own rendered template
        "page_main": mark_safe(parts["main"]),  # noqa: S308 - our own rendered template
        **extra,
    }


def _show(
    request: HttpRequest,
    parts: Callable[[], dict[str, str]],
    *,
    query: str = "",
    with_box: bool = False,
    preview: Article | None = None,
    unsaved: bool = False,
) -> HttpResponse:
    """The page for this reader. For anonymous readers the whole page comes from the cache,
    with the only per-reader parts (the CSRF token and what the site's box under the page
    needs per reader)
    filled in; signed-in users (editors) get it rendered afresh.

    `query` is the page's own URL query: what it reads from the request, spelled one way. Only
    a request for exactly that URL stores the whole page; anything else a reader adds
    (tracking parameters, `?page=1`, made-up values) is filled into the cached parts on the
    fly and never gets a key of its own. Parts that raise Http404 are never stored."""
    if request.user.is_authenticated:
        own = parts()
        context = _page_context(
            own,
            with_box=with_box,
            preview=preview,
            language_urls=layout.alternate_urls(own, request.get_full_path()),
            preview_unsaved=unsaved,
        )
        return render(request, "articles/page.html", context)

    path = request.get_full_path()

    def build() -> layout.Pieces:
        return layout.page(parts(), path=path, with_box=with_box)

    if request.META.get("QUERY_STRING", "") == query:
        pieces = cached_fragment("page", get_language(), path, build=build)
    else:
        pieces = build()
    # Only the box has a form: other pages set no CSRF cookie and sign no token.
    reader = {"csrf": get_token(request), **layout.reader_values()} if with_box else {}
    return HttpResponse(layout.join(pieces, reader))


@require_safe
def article_list(request: HttpRequest) -> HttpResponse:
    number = page_number_get(request)

    def build() -> dict[str, str]:
        return _render_parts("article_list", _page_slice(article_list_for_page(), number))

    return _show(
        request,
        lambda: cached_fragment("list", get_language(), number, build=build),
        query=page_query(number),
        with_box=True,
    )


@require_safe
def topic_detail(request: HttpRequest, slug: str) -> HttpResponse:
    number = page_number_get(request)

    def build() -> dict[str, str]:
        topic = topic_get(slug=slug)
        if topic is None:
            raise Http404("no such topic")
        context = _page_slice(article_list_for_topic(topic=topic), number)
        return _render_parts("topic", {**context, "topic": topic})

    return _show(
        request,
        lambda: cached_fragment("topic", get_language(), slug, number, build=build),
        query=page_query(number),
        with_box=True,
    )


def article_page_parts(page: ArticlePage) -> dict[str, Any]:
    """Title, head and main of an article's page: the same for readers and every preview."""
    related = article_list_related(
        article_id=page.article.pk, topic_ids=[topic.pk for topic in page.topics]
    )
    context = {
        "article": page.article,
        "topics": page.topics,
        "authors": page.authors,
        "related": articles_localize(related, language=get_language()),
    }
    # The page in the other languages is under the slug of that language's text.
    slugs = article_slugs(article=page.article)
    alternates = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            slug = slugs.get(code, slugs[ORIGINAL_LANGUAGE])
            alternates[code] = reverse("articles:detail", kwargs={"slug": slug})
    return {**_render_parts("article", context), "alternates": alternates}


@require_safe
def article_detail(request: HttpRequest, slug: str) -> HttpResponse:
    def build() -> dict[str, str]:
        page = article_page_get_live(slug=slug, language=get_language())
        if page is None:
            raise Http404("no such article")
        return article_page_parts(page)

    return _show(
        request,
        lambda: cached_fragment("article", get_language(), slug, build=build),
        with_box=True,
    )


@never_cache
@staff_member_required
@permission_required("articles.view_article", raise_exception=True)
def article_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """Exactly the public page, for any status, never cached.

    Drafts are unpublished words: being staff is not enough, the reader needs the right to
    see articles in the admin (anonymous readers go to the login, other staff get a 403).
    """
    page = article_page_get_for_preview(pk=pk, language=get_language())
    if page is None:
        raise Http404("not found")
    parts = article_page_parts(page)
    return _show(request, lambda: parts, with_box=True, preview=page.article)


# An average reading speed for German prose, words per minute.
READING_WORDS_PER_MINUTE = 200
# A word: letters or digits, with inner hyphens or apostrophes ("E-Mail", "geht's").
WORD = re.compile(r"\w+(?:[-'’]\w+)*")


@never_cache
@staff_member_required
@permission_required("articles.view_article", raise_exception=True)
@require_POST
def article_preview_unsaved(request: HttpRequest) -> HttpResponse:
    """The editor's form as readers would get it, stored nowhere.

    Posted by the editor's live pane (`?teil=main`: the page's main part as JSON, with word
    count and reading time) and by its "Vorschau" button (the whole page, in the layout).
    The body goes through the same Markdown and sanitiser, the page through the same
    templates as the public page, so what the editor sees is what readers will get."""
    existing = None
    if request.POST.get("article_id", "").isdigit():
        existing = Article.objects.filter(pk=int(request.POST["article_id"])).first()
    form = ArticleForm(request.POST, instance=existing or Article())
    form.is_valid()  # what did not validate is left as it was; a preview needs no slug
    article = form.instance
    # The page links to itself: a form without a valid slug yet still gets its preview.
    article.slug = article.slug or "vorschau"
    article_render_body(article=article)
    page = article_page_for_unsaved(
        article=article,
        topics=list(form.cleaned_data.get("topics") or []),
        authors=list(form.cleaned_data.get("authors") or []),
    )
    parts = article_page_parts(page)
    if request.GET.get("teil") == "main":
        words = len(WORD.findall(unescape(strip_tags(article.body_html))))
        return JsonResponse(
            {
                "html": parts["main"],
                "words": words,
                "minutes": max(1, math.ceil(words / READING_WORDS_PER_MINUTE)) if words else 0,
            }
        )
    return _show(request, lambda: parts, with_box=True, preview=article, unsaved=True)


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
