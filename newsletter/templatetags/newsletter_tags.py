from django import template

register = template.Library()


@register.inclusion_tag("newsletter/_signup_box.html", takes_context=True)
def newsletter_signup_box(context):
    """The signup box under an article (filled in by the consent flow)."""
    return {"request": context.get("request")}
