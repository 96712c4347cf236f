from django import template

register = template.Library()


@register.inclusion_tag("newsletter/_signup_box.html", takes_context=True)
def newsletter_signup_box(context, slug: str = ""):
    """The signup box under an article: the newsletter's current consent text and the form."""
    from newsletter.views.consent import signup_box_context

    # A layout cached for many pages passes stand-ins for the page and the token.
    return signup_box_context(
        context.get("request"),
        slug=slug,
        page=context.get("signup_page"),
        started=context.get("signup_started", ""),
    )
