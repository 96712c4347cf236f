"""The reader's language as links and pages carry it."""

from __future__ import annotations

from django.utils import translation

# The query parameter that names the language of a page reached from mail (those paths carry
# no language prefix, see newsletter.views.reader_language).
LANGUAGE_PARAM = "lang"


def language_supported(code: str | None) -> str | None:
    """The site's language for a code ('en-GB' → 'en'), or None for anything else."""
    if not code:
        return None
    try:
        return translation.get_supported_language_variant(code)
    except LookupError:
        return None
