"""The public digest archive: past digests without any personal part."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation

from articles.pagination import page_get, page_number_get
from newsletter.emails.digest import article_items, digest_language, digest_subjects_localize
from newsletter.selectors.digests import digest_articles, digest_list_archive

ARCHIVE_PAGE_SIZE = 100


def archive_list(request: HttpRequest) -> HttpResponse:
    page = page_get(
        digest_list_archive(), number=page_number_get(request), per_page=ARCHIVE_PAGE_SIZE
    )
    digests = digest_subjects_localize(list(page.object_list), language=translation.get_language())
    return render(
        request,
        "newsletter/digest_archive_list.html",
        {"digests": digests, "page_obj": page},
    )


def archive_detail(request: HttpRequest, pk: int) -> HttpResponse:
    digest = digest_list_archive().filter(pk=pk).first()
    if digest is None:
        raise Http404
    language = digest_language(translation.get_language())
    digest_subjects_localize([digest], language=language)
    articles = digest_articles(digest=digest)
    items = article_items(articles, language)
    # The subject counted every article that went out; those withdrawn or purged since are
    # named as gone, so "7 neue Artikel" never lists 6 without a word.
    gone = len(digest.article_ids) - len(articles)
    return render(
        request,
        "newsletter/digest_archive_detail.html",
        {"digest": digest, "items": items, "gone": gone},
    )
