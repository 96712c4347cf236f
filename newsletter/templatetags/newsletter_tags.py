from django import template

from newsletter.models import Newsletter

register = template.Library()


@register.inclusion_tag("newsletter/_signup_box.html", takes_context=True)
def newsletter_signup_box(context, slug: str = ""):
    """The signup box under an article: the newsletter's current consent text and the form."""
    from newsletter.views.consent import signup_box_context

    newsletter = Newsletter.objects.filter(slug=slug, is_active=True).first() if slug else None
    return signup_box_context(
        context.get("request"), newsletter=newsletter, started=context.get("signup_started", "")
    )
