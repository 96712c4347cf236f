"""Pages of the consent flows: signup, confirm, unsubscribe, preference centre."""

from django.http import Http404, HttpRequest, HttpResponse


def confirm(request: HttpRequest, token: str) -> HttpResponse:
    raise Http404


def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    raise Http404


def preferences(request: HttpRequest, token: str) -> HttpResponse:
    raise Http404
