"""Request logging, probes, and the Content-Security-Policy."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_guid.api import clear_guid

from config import health

request_logger = logging.getLogger("config.request")

# Ids from a proxy or client are echoed into headers and logs: accept only plain tokens.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
_PROBES = {"/healthz": health.healthz, "/readyz": health.readyz}

Handler = Callable[[HttpRequest], HttpResponse]


class RequestLogMiddleware:
    """One log line per request (method, path, status, duration), under the request's id.

    django-guid's middleware, right after this one, takes the caller's X-Request-ID as the
    request's id, or makes one, and echoes it; this one drops a caller's id that is not a plain
    token first, so that django-guid makes a fresh one instead.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not _REQUEST_ID.match(request.META.get("HTTP_X_REQUEST_ID", "")):
            request.META.pop("HTTP_X_REQUEST_ID", None)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            if settings.LOG_REQUESTS and request.path_info not in _PROBES:
                request_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            return response
        finally:
            # django-guid leaves the id set; lines logged between requests carry none.
            clear_guid()


class HealthCheckMiddleware:
    """Answers /healthz and /readyz before host validation and the HTTPS redirect.

    Container and orchestrator probes call by IP address over plain HTTP; they must not be
    turned away as a disallowed host or redirected to https. The answers carry no host-derived
    data and are never cached, so skipping those checks exposes nothing.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = _PROBES.get(request.path_info)
        if probe is not None:
            return async_to_sync(probe)(request)
        return self.get_response(request)


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's middleware with settings.CSP_ADMIN replacing directives on admin pages.

    The Django admin's change list writes one inline <style> block, so only the admin may use
    inline styles; scripts stay 'self'-only everywhere. A view that set its own policy keeps it
    (django-csp leaves an existing header alone).
    """

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        # Django's own debug error pages are inline-styled; keep them readable in DEBUG.
        if settings.DEBUG and response.status_code >= 400:
            return response
        return super().process_response(request, response)

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponse, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        match = getattr(request, "resolver_match", None)
        if not report_only and match is not None and "admin" in match.app_names:
            parts.replace = {**settings.CSP_ADMIN, **(parts.replace or {})}
        return parts
