"""Public pages put together from cached pieces by filling named slots.

A page is its own parts (title, head, main: see views._render_parts) inside a layout that is
the same for every page in a language: header, navigation, the site's box under the page
(templates/site/page_box.html, which another app fills), footer. The layout is
rendered once per content generation with slots where a page or a reader differs, and a page
is made by filling them; a page that is not in the cache costs its own parts only.

Slots are filled in one pass over the text, so text inserted into one slot is never read
for another: an article that happens to contain a slot's name stays as written.
"""

import re
from collections.abc import Mapping

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import translate_url
from django.utils.html import escape
from django.utils.module_loading import import_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from .caching import cached_fragment

_SLOT = re.compile(r"__slot_([a-z0-9_]+)__")


def slot(name: str) -> SafeString:
    return mark_safe(f"__slot_{name}__")  # noqa: S308 - a fixed placeholder, no user text


Pieces = list[str]  # literal text and slot names, alternating, starting with text


def fill(pieces: Pieces, values: Mapping[str, str]) -> Pieces:
    """The pieces with the slots in `values` filled in; the other slots stay slots."""
    filled = [pieces[0]]
    for index in range(1, len(pieces), 2):
        name, text = pieces[index], pieces[index + 1]
        if name in values:
            filled[-1] += values[name] + text
        else:
            filled.extend((name, text))
    return filled


def join(pieces: Pieces, values: Mapping[str, str]) -> str:
    """The finished page: every slot filled."""
    return "".join(fill(pieces, values))


def reader_values() -> dict[str, str]:
    """Fresh per-reader values for the box's slots, from the callables the site names."""
    return {
        f"reader_{name}": import_string(path)()
        for name, path in settings.SITE_PAGE_BOX_READER_VALUES.items()
    }


def layout(*, with_box: bool) -> Pieces:
    """page.html around empty slots, for the current language; cached per generation."""

    def build() -> Pieces:
        html = render_to_string(
            "articles/page.html",
            {
                "page_title": slot("title"),
                "page_head": slot("head"),
                "page_main": slot("main"),
                "language_urls": {code: slot(f"url_{code}") for code, _ in settings.LANGUAGES},
                "with_box": with_box,
                "box_page": slot("path"),
                "box_reader": {
                    name: slot(f"reader_{name}") for name in settings.SITE_PAGE_BOX_READER_VALUES
                },
                "csrf_token": slot("csrf"),
            },
        )
        return _SLOT.split(html)

    return cached_fragment("layout", get_language(), with_box, build=build)


def language_urls(path: str) -> dict[str, str]:
    """The page at `path` in every language of the site."""
    return {code: translate_url(path, code) for code, _name in settings.LANGUAGES}


def alternate_urls(parts: Mapping, path: str) -> dict[str, str]:
    """The page in every language: the `alternates` its parts name (an article's slug differs
    per language) with the reader's query, else the path translated."""
    alternates = parts.get("alternates")
    if not alternates:
        return language_urls(path)
    # The reader's query (tracking parameters and the like) goes along, as for any page.
    query = path.partition("?")[2]
    return {code: f"{url}?{query}" if query else url for code, url in alternates.items()}


def page(parts: Mapping, *, path: str, with_box: bool) -> Pieces:
    """A page's parts in the layout; the reader's slots stay open. Parts may name the page's
    `alternates` (an article's slug differs per language); else the path is translated."""
    values = {
        "title": parts["title"],
        "head": parts["head"],
        "main": parts["main"],
        "path": escape(path),
        **{f"url_{code}": escape(url) for code, url in alternate_urls(parts, path).items()},
    }
    return fill(layout(with_box=with_box), values)
