"""The public digest archive: past digests without any personal part."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation

from newsletter.emails.digest import article_items, digest_language
from newsletter.selectors.digests import digest_articles, digest_list_archive


def archive_list(request: HttpRequest) -> HttpResponse:
    digests = digest_list_archive()[:100]
    return render(request, "newsletter/digest_archive_list.html", {"digests": digests})


def archive_detail(request: HttpRequest, pk: int) -> HttpResponse:
    digest = digest_list_archive().filter(pk=pk).first()
    if digest is None:
        raise Http404
    language = digest_language(translation.get_language())
    items = article_items(digest_articles(digest=digest), language)
    return render(
        request, "newsletter/digest_archive_detail.html", {"digest": digest, "items": items}
    )
