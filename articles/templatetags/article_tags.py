"""Template helpers for the public site: byline times, language links, topic navigation."""

from datetime import datetime

from django import template
from django.conf import settings
from django.utils import dateformat, timezone
from django.utils.html import format_html
from django.utils.translation import get_language, get_language_info, gettext, pgettext

from ..caching import cached_fragment
from ..layout import language_urls
from ..pictures import picture_file, picture_html
from ..selectors import topic_list_navigation

register = template.Library()


@register.filter
def byline_time(value: datetime | None) -> str:
    """'25.07.2025 06:11 Uhr' in German, in the site's time zone."""
    if not value:
        return ""
    # Translators: a PHP-style date format (Django's `date` filter); backslash escapes letters.
    fmt = pgettext("byline date format", "d.m.Y H:i \\U\\h\\r")
    return dateformat.format(timezone.localtime(value), fmt)


@register.simple_tag(takes_context=True)
def language_links(context) -> list[dict[str, object]]:
    """The current page in every language, as plain links (cache-safe, no form needed). A
    layout rendered for many pages passes `language_urls` (slots) instead of a request."""
    request = context.get("request")
    # A view whose pages choose their language otherwise than by the path prefix says so.
    urls = context.get("language_urls") or getattr(request, "language_urls", None)
    if urls is None:
        urls = language_urls(request.get_full_path() if request else "/")
    current = get_language() or settings.LANGUAGE_CODE
    return [
        {
            "code": code,
            "name": get_language_info(code)["name_local"],
            "url": urls[code],
            "current": code == current,
            # The unprefixed German page: what search engines show readers of other languages.
            "default": code == settings.LANGUAGE_CODE,
        }
        for code, _name in settings.LANGUAGES
    ]


@register.simple_tag
def navigation_topics() -> list[dict[str, str]]:
    """Topics with live articles, cached per content generation."""

    language = get_language() or settings.LANGUAGE_CODE

    def build():
        return [
            {
                "name": topic.name_for(language),
                "language": topic.name_language(language),
                "slug": topic.slug,
            }
            for topic in topic_list_navigation()
        ]

    return cached_fragment("nav", language, build=build)


@register.filter
def localized_name(topic) -> str:
    """A topic's name in the active language (German where it has no translation)."""
    return topic.name_for(get_language() or settings.LANGUAGE_CODE)


@register.filter
def localized_name_marked(topic) -> str:
    """The name as HTML marked with its language, for a sentence around it ("Topic: …")."""
    language = get_language() or settings.LANGUAGE_CODE
    return format_html(
        '<span lang="{}">{}</span>', topic.name_language(language), topic.name_for(language)
    )


@register.filter
def name_language(topic) -> str:
    """The language of `localized_name`'s answer, for a lang attribute."""
    return topic.name_language(get_language() or settings.LANGUAGE_CODE)


@register.filter
def description_language(obj) -> str:
    """The language of `localized_description`'s answer, for a lang attribute."""
    return obj.description_language(get_language() or settings.LANGUAGE_CODE)


@register.filter
def localized_description(obj) -> str:
    """A topic's (or newsletter's) description in the active language."""
    return obj.description_for(get_language() or settings.LANGUAGE_CODE)


@register.filter
def disclaimer_text(version, language: str) -> str:
    """The disclaimer wording in the page's language (German when no translation exists)."""
    return version.text_for(language or settings.LANGUAGE_CODE) if version else ""


@register.simple_tag
def site_url() -> str:
    """The site's origin: search engines take hreflang alternates only as absolute URLs."""
    return settings.SITE_URL


@register.simple_tag
def site_name() -> str:
    """The publication's name, escaped like any other text (it contains an ampersand)."""
    return gettext("Meinung & Märkte")


@register.simple_tag
def picture(image, eager: bool = False, css_class: str = "") -> str:
    """A library picture as `<picture>` with WebP and JPEG srcsets and its dimensions."""
    return picture_html(image, eager=eager, css_class=css_class) if image else ""


@register.simple_tag
def picture_file_for(image, min_width: int = 1200):
    """The JPEG rendition (absolute URL, size, alt) for cards and feeds, or None."""
    return picture_file(image, min_width=min_width) if image else None
