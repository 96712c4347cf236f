from django import template

from newsletter.signup_box import signup_box_context

register = template.Library()


@register.inclusion_tag("newsletter/_signup_box.html", takes_context=True)
def newsletter_signup_box(context, slug: str = "", page: str = "", started: str = ""):
    """The signup box under a page: the newsletter's current consent text and the form.

    A layout cached for many pages passes stand-ins for the page and the token; rendered for
    one reader, both are left out and the box takes the request's path and a fresh token."""
    return signup_box_context(context.get("request"), slug=slug, page=page, started=started)
