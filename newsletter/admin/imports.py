"""The subscription import pages: upload, the report of a small file at once, and the page
of a large file's job (its progress while a worker checks it, its report afterwards).

Both need the import_subscriptions permission; a job page shows only counts, line numbers
and problems, never an address of the file.
"""

from __future__ import annotations

from django import forms
from django.contrib.admin import ModelAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from newsletter.models import Newsletter, SubscriptionImport
from newsletter.services.consent import (
    IMPORT_JOB_MAX_BYTES,
    IMPORT_JOB_MAX_ROWS,
    IMPORT_MAX_ROWS,
    subscription_import,
    subscription_import_queue,
)

PERMISSION = "newsletter.import_subscriptions"
JOBS_SHOWN = 10


class ImportForm(forms.Form):
    newsletter = forms.ModelChoiceField(Newsletter.objects.all(), label=_("Newsletter"))
    file = forms.FileField(
        label=_("CSV-Datei (UTF-8)"),
        help_text=_(
            "Spalten: email, optional language; als Nachweis einer Einwilligung alle vier: "
            "consent_at, ip, source, text_version. Zeilen ohne Nachweis erhalten eine "
            "Bestätigungsmail."
        ),
    )


def _context(model_admin: ModelAdmin, request: HttpRequest, **extra) -> dict:
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "max_rows": IMPORT_MAX_ROWS,
        "job_max_rows": IMPORT_JOB_MAX_ROWS,
        **extra,
    }


def import_view(model_admin: ModelAdmin, request: HttpRequest) -> HttpResponse:
    """Upload: a file of up to IMPORT_MAX_ROWS lines is imported within the request, a larger
    one becomes a job for a worker and the manager is sent to its page."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = ImportForm(request.POST or None, request.FILES or None)
    report = None
    status = 200
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        data = upload.read(IMPORT_JOB_MAX_BYTES + 1)
        # Lines, not rows (a quoted cell may hold a line break): only the way is chosen
        # here; the rules and the report are the same on both.
        if data.count(b"\n") > IMPORT_MAX_ROWS + 1:
            job = subscription_import_queue(
                newsletter=form.cleaned_data["newsletter"],
                file_name=upload.name,
                data=data,
                user=request.user,
            )
            return HttpResponseRedirect(
                reverse("admin:newsletter_subscription_import_job", args=[job.pk])
            )
        report = subscription_import(
            newsletter=form.cleaned_data["newsletter"],
            file_name=upload.name,
            data=data,
            actor=request.user,
        )
        status = 200 if report.imported else 400
    elif request.method == "POST":
        status = 400
    jobs = SubscriptionImport.objects.select_related("newsletter").defer("data", "errors")
    context = _context(
        model_admin,
        request,
        title=_("Abonnements aus CSV importieren"),
        form=form,
        report=report,
        jobs=list(jobs[:JOBS_SHOWN]),
    )
    return TemplateResponse(
        request, "admin/newsletter/subscription/import.html", context, status=status
    )


def import_job_view(model_admin: ModelAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    """A large import: progress while it runs (the page reloads itself), then its report."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    job = get_object_or_404(
        SubscriptionImport.objects.select_related("newsletter").defer("data"), pk=pk
    )
    context = _context(
        model_admin,
        request,
        title=_("CSV-Import „%(name)s“") % {"name": job.file_name},
        job=job,
        percent=min(100, round(100 * job.rows_checked / job.lines)) if job.lines else 0,
    )
    return TemplateResponse(request, "admin/newsletter/subscription/import_job.html", context)
