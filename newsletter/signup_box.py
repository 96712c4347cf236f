"""The signup box: what it shows, for the signup page, its own re-rendering and the box the
site puts under article, list and topic pages (templates/site/page_box.html).

Articles know nothing of it: the site's layout has a neutral slot for a box, and
settings.SITE_PAGE_BOX_READER_VALUES names what the box needs per reader (the form's
fill-time token), so a cached page gets a fresh one on every response.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import translation

from newsletter.forms import SignupForm, form_started_token
from newsletter.selectors.consent import signup_offer


def signup_box_context(
    request: HttpRequest | None,
    *,
    slug: str = "",
    form: SignupForm | None = None,
    page: str | None = None,
    started: str = "",
) -> dict:
    """What the signup box shows: the newsletter, its current text verbatim, a fresh form.

    `page` and `started` stand in for the page's path and the fill-time token where the box
    is rendered into a layout for many pages and readers (see articles.layout)."""
    language = translation.get_language() or "de"
    newsletter, text = signup_offer(slug=slug, language=language)
    if newsletter is None:
        return {"newsletter": None}
    if form is None:
        if not page:
            page = request.get_full_path() if request is not None else ""
        form = SignupForm(
            initial={
                "newsletter": newsletter.slug,
                "consent_text": text.id if text else None,
                "page": page,
                "started": started or form_started_token(),
            }
        )
    return {
        "newsletter": newsletter,
        "description": newsletter.description_for(language),
        "description_language": newsletter.description_language(language),
        "consent_text": text,
        "form": form,
        "request": request,
    }
