"""Request ids and request logging, probes, the Content-Security-Policy and admin login limits."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from config import admin_login, health
from config.logging import log_context_bind, log_context_reset

request_logger = logging.getLogger("config.request")

# Ids from a proxy or client are echoed into headers and logs: accept only plain tokens.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,128}$")
_PROBES = {"/healthz": health.healthz, "/readyz": health.readyz}

Handler = Callable[[HttpRequest], HttpResponse]


class RequestIdMiddleware:
    """Gives each request an id (the caller's X-Request-ID when sane), logs it, echoes it back."""

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = log_context_bind(request_id=request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
            response.headers["X-Request-ID"] = request_id
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
            log_context_reset(token)


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
            return probe(request)
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


class AdminLoginThrottleMiddleware:
    """Refuses admin login posts with 429 once a client used up its failed attempts.

    Failures are counted after the login view ran: it answers 200 (form shown again) when the
    credentials were wrong and redirects when they were right.
    """

    def __init__(self, get_response: Handler) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        attempt = getattr(request, "_admin_login_attempt", None)
        if attempt is not None:
            ip, username = attempt
            if response.status_code == 200:
                admin_login.login_failure_record(ip=ip, username=username)
            elif 300 <= response.status_code < 400:
                admin_login.login_success_record(ip=ip, username=username)
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if request.method != "POST" or match is None or match.view_name != "admin:login":
            return None
        ip = admin_login.client_ip(request)
        username = request.POST.get("username", "")
        if admin_login.login_is_throttled(ip=ip, username=username):
            window = admin_login.login_throttle_settings().window_seconds
            minutes = max(1, (window + 59) // 60)
            response = render(
                request,
                "ops/login_throttled.html",
                {
                    **admin.site.each_context(request),
                    "title": _("Zu viele Anmeldeversuche"),
                    "message": _(
                        "Zu viele fehlgeschlagene Anmeldeversuche. Bitte warten Sie "
                        "%(minutes)s Minuten und versuchen Sie es dann erneut."
                    )
                    % {"minutes": minutes},
                },
                status=429,
            )
            response.headers["Retry-After"] = str(window)
            return response
        request._admin_login_attempt = (ip, username)
        return None
