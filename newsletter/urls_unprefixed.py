"""URLs that must not carry a language prefix: links in mail and provider webhooks."""

urlpatterns: list = []
