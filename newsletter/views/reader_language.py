"""The language of the pages reached from mail (confirm, unsubscribe, preferences, data).

Their paths carry no language prefix: links in mails already sent must keep working. So a
page speaks the language its link names (``?lang=en``, which every new mail link carries and
the page's language switch sets), else that of the subscription its token names, else German.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

from newsletter import tokens
from newsletter.languages import LANGUAGE_PARAM, language_supported
from newsletter.selectors.consent import subscription_language_get


def speaks_reader_language(
    subscription_id_of: Callable[[str], int],
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Render the token view in the reader's language and offer the other languages as
    links to the same page; `subscription_id_of` reads the id from the view's token."""

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, token: str, **kwargs) -> HttpResponse:
            language = language_supported(request.GET.get(LANGUAGE_PARAM))
            if language is None:
                try:
                    subscription_id = subscription_id_of(token)
                except tokens.TokenInvalid:
                    subscription_id = None
                if subscription_id is not None:
                    language = language_supported(
                        subscription_language_get(subscription_id=subscription_id)
                    )
            language = language or settings.LANGUAGE_CODE
            # The layout's language links: this very page, in each language.
            request.language_urls = {
                code: f"{request.path}?{LANGUAGE_PARAM}={code}"
                for code, _name in settings.LANGUAGES
            }
            with translation.override(language):
                request.LANGUAGE_CODE = language
                response = view(request, token, **kwargs)
            response.headers["Content-Language"] = language
            return response

        return wrapped

    return decorator
