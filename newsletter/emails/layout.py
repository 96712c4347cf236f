"""The branded frame of every mail: the newsletter's logo, colour and footer, CSS inlined once.

Mail clients drop or ignore <style> blocks unevenly, so the stylesheet of
templates/newsletter/email/_layout.html is moved into style attributes by css-inline when a
mail is rendered (once per digest and language for mass mails, never per recipient). Media
queries (phone width, dark mode) cannot be inlined and stay in the <style> block for the
clients that read it.
"""

from __future__ import annotations

import css_inline

from newsletter.models import Newsletter

_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


def brand_context(newsletter: Newsletter) -> dict[str, str]:
    return {
        "brand_color": newsletter.brand_color or "#1f4e79",
        "brand_logo_url": newsletter.brand_logo_url,
        "brand_footer": newsletter.brand_footer,
    }


def html_inline(html: str) -> str:
    """The mail's CSS moved into style attributes (placeholders and links left as they are)."""
    return _INLINER.inline(html)
