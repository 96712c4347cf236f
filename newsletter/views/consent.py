"""Pages of the consent flows: signup, confirm, unsubscribe, preference centre.

Views parse input, call one service and present the result. Tokens are the authority on the
pages reached from mail; GET never changes state.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from newsletter import tokens
from newsletter.addresses import address_hmac
from newsletter.forms import (
    PreferencesForm,
    PreferencesLinkForm,
    SignupForm,
    form_started_token,
)
from newsletter.languages import LANGUAGE_PARAM
from newsletter.models import RevocationChannel, Subscription
from newsletter.ratelimit import ratelimit_hit, ratelimit_limit
from newsletter.selectors.consent import (
    consent_event_list_for_address,
    newsletter_list_active,
    preferences_link_is_live,
    subscription_list_for_address,
    topic_ids_chosen_by_address,
)
from newsletter.services.consent import (
    PreferenceChoice,
    data_link_request,
    preferences_apply,
    preferences_link_request,
    signup_request_record,
    subscriber_erase,
    subscriber_export,
    subscription_confirm,
    subscription_revoke,
    subscription_revoke_all,
)
from newsletter.signup_box import signup_box_context
from newsletter.views.reader_language import speaks_reader_language

# HEAD is answered like GET (the body is dropped on the way out): monitors and link checkers
# send it, and a 405 would tell them the page is broken.
READ_METHODS = ("GET", "HEAD")
# Preference-centre buttons that only mail a link; the link does the rest.
DATA_ACTIONS = {"export": tokens.DATA_EXPORT, "erase": tokens.DATA_ERASE}
# Sent by the signup box's script: answer a refused try with the box, not the whole page.
BOX_HEADER = "X-Signup-Box"


def _client_ip(request: HttpRequest) -> str:
    # The deployment's one rule for the client address (settings.CLIENT_IP_CALLABLE: the
    # right-most X-Forwarded-For entry behind our own proxy), so rate limits count readers,
    # not the proxy.
    return import_string(settings.CLIENT_IP_CALLABLE)(request)


def _user_agent(request: HttpRequest) -> str:
    return request.META.get("HTTP_USER_AGENT", "")


def _rate_limited(request: HttpRequest, *, scope: str, key: str, kind: str) -> HttpResponse | None:
    retry_after = ratelimit_hit(scope=f"{scope}:{kind}", key=key, limit=ratelimit_limit(kind))
    if retry_after is None:
        return None
    response = render(
        request,
        "newsletter/ratelimited.html",
        {"retry_minutes": max(1, (retry_after + 59) // 60)},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


def _refresh_started(form) -> None:
    """A re-shown form whose start time was expired or forged gets a new one. A try that
    was only too fast keeps its start: the clock runs on from when the form was first shown,
    so pressing again after the minimum time succeeds. The errors of the first try stay."""
    if form.has_error("started", code="too_fast"):
        return
    data = form.data.copy()
    data["started"] = form_started_token()
    form.data = data


@require_http_methods(["GET", "HEAD", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """The signup page; the box on article pages posts here too."""
    if request.method in READ_METHODS:
        return render(request, "newsletter/signup.html", signup_box_context(request))
    limited = _rate_limited(request, scope="signup", key=_client_ip(request), kind="ip")
    if limited:
        return limited
    form = SignupForm(request.POST)
    if form.is_valid():
        done = HttpResponseRedirect(reverse("newsletter:signup_done"), status=303)
        if form.is_bot:
            return done
        email = form.cleaned_data["email"]
        limited = _rate_limited(request, scope="signup", key=address_hmac(email), kind="address")
        if limited:
            return limited
        try:
            signup_request_record(
                address=email,
                newsletter=form.cleaned_data["newsletter"],
                ip=_client_ip(request),
                user_agent=_user_agent(request),
                url=form.cleaned_data["page"],
                form="signup_box" if form.cleaned_data["page"] else "signup_page",
                language=translation.get_language() or "de",
                consent_text=form.cleaned_data["consent_text_obj"],
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            # The same answer for every address, whatever its state: no enumeration.
            return done
    _refresh_started(form)
    newsletter = form.cleaned_data.get("newsletter")
    context = signup_box_context(request, slug=newsletter.slug if newsletter else "", form=form)
    # The box on a page (static/newsletter/signup.js) asks for the box alone and shows it in
    # place, so the reader stays where they were with their address filled in.
    template = "newsletter/_signup_box.html" if request.headers.get(BOX_HEADER) else None
    return render(request, template or "newsletter/signup.html", context, status=400)


def signup_done(request: HttpRequest) -> HttpResponse:
    return render(request, "newsletter/signup_done.html")


def _link_gone(request: HttpRequest) -> HttpResponse:
    """An authentic link whose subscription no longer exists (erased, or expired unconfirmed):
    it must not open whatever the address holds today."""
    return render(
        request,
        "newsletter/token_invalid.html",
        {
            "expired": True,
            "purpose": "preferences",
            "reason": _(
                "Zu diesem Link ist nichts mehr gespeichert. Bitte fordern Sie einen neuen an."
            ),
        },
        status=410,
    )


def _token_problem(request: HttpRequest, exc: Exception, *, purpose: str) -> HttpResponse:
    expired = isinstance(exc, tokens.TokenExpired)
    return render(
        request,
        "newsletter/token_invalid.html",
        {"expired": expired, "purpose": purpose},
        status=410 if expired else 400,
    )


@require_http_methods(["GET", "HEAD", "POST"])
@speaks_reader_language(lambda token: tokens.read_confirm_token(token)[0])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a page that confirms by POST, so link-following scanners confirm nobody."""
    try:
        subscription_id, confirm_round = tokens.read_confirm_token(token)
    except tokens.TokenInvalid as exc:
        return _token_problem(request, exc, purpose="confirm")
    if request.method in READ_METHODS:
        return render(request, "newsletter/confirm.html", {"token": token})
    try:
        subscription = subscription_confirm(
            subscription_id=subscription_id,
            confirm_round=confirm_round,
            ip=_client_ip(request),
            user_agent=_user_agent(request),
        )
    except ValidationError as exc:
        return render(
            request,
            "newsletter/token_invalid.html",
            {"expired": True, "purpose": "confirm", "reason": exc.messages[0]},
            status=410,
        )
    return render(
        request,
        "newsletter/confirmed.html",
        {
            "subscription": subscription,
            "preferences_token": tokens.make_preferences_token(
                subscription.id, subscription.address_hmac
            ),
        },
    )


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
@speaks_reader_language(tokens.read_unsubscribe_token)
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """One button, no login; POST revokes. RFC 8058 one-click POSTs arrive here without cookie
    or CSRF token, so the view is csrf-exempt and the signed token is the only authority."""
    try:
        subscription_id = tokens.read_unsubscribe_token(token)
    except tokens.TokenInvalid as exc:
        return _token_problem(request, exc, purpose="unsubscribe")
    subscription = (
        Subscription.objects.select_related("newsletter").filter(id=subscription_id).first()
    )
    if request.method in READ_METHODS:
        return render(
            request, "newsletter/unsubscribe.html", {"token": token, "subscription": subscription}
        )
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    subscription = subscription_revoke(
        subscription_id=subscription_id,
        channel=RevocationChannel.ONE_CLICK if one_click else RevocationChannel.LINK,
        ip=_client_ip(request),
        user_agent=_user_agent(request),
    )
    return render(
        request,
        "newsletter/unsubscribed.html",
        {
            "subscription": subscription,
            "preferences_token": tokens.make_preferences_token(
                subscription.id, subscription.address_hmac
            )
            if subscription
            else "",
        },
    )


def _preferences_context(key: str, token: str, form: PreferencesForm | None = None) -> dict:
    subscriptions = list(subscription_list_for_address(address_hmac=key))
    if form is None:
        form = PreferencesForm(
            newsletters=newsletter_list_active(),
            subscriptions=subscriptions,
            initial={"language": subscriptions[0].language if subscriptions else "de"},
            chosen_topics=topic_ids_chosen_by_address(address_hmac=key),
        )
    return {
        "token": token,
        "subscriptions": subscriptions,
        "events": list(consent_event_list_for_address(address_hmac=key)),
        "form": form,
        "email": subscriptions[0].email if subscriptions else "",
    }


@require_http_methods(["GET", "HEAD", "POST"])
@speaks_reader_language(lambda token: tokens.read_preferences_token(token)[0])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    """The reader's preference centre: switches, language, leave all, export, erase."""
    try:
        subscription_id, key = tokens.read_preferences_token(token)
    except tokens.TokenInvalid as exc:
        return _token_problem(request, exc, purpose="preferences")
    if not preferences_link_is_live(subscription_id=subscription_id, address_hmac=key):
        return _link_gone(request)
    if request.method in READ_METHODS:
        return render(request, "newsletter/preferences.html", _preferences_context(key, token))
    action = request.POST.get("action", "")
    here = reverse("newsletter_preferences", kwargs={"token": token})
    saved = f"{here}?gespeichert=1&{LANGUAGE_PARAM}={translation.get_language()}"
    if action in DATA_ACTIONS:
        # A preference link travels in every newsletter (forwarded, read by link scanners):
        # it may change settings, but the data itself goes out or away only after a fresh
        # link mailed to the address is used.
        limited = _rate_limited(request, scope="data", key=key, kind="address")
        if limited:
            return limited
        data_link_request(subscription_id=subscription_id, purpose=DATA_ACTIONS[action])
        return render(
            request,
            "newsletter/preferences_data_sent.html",
            {
                "token": token,
                "erase": action == "erase",
                "max_age_minutes": max(1, settings.NEWSLETTER_DATA_LINK_MAX_AGE // 60),
            },
        )
    if action == "unsubscribe_all":
        subscription_revoke_all(
            address_hmac=key,
            channel=RevocationChannel.PREFERENCES,
            ip=_client_ip(request),
            user_agent=_user_agent(request),
        )
        return HttpResponseRedirect(saved, status=303)
    if action != "save":
        return render(
            request, "newsletter/preferences.html", _preferences_context(key, token), status=400
        )
    return _preferences_save(request, key=key, token=token, saved=saved)


def _data_link(
    request: HttpRequest, token: str, *, purpose: str
) -> tuple[str | None, HttpResponse | None]:
    """The address key of a live export/erasure link, or the page that says why not."""
    try:
        subscription_id, key = tokens.read_data_token(purpose, token)
    except tokens.TokenInvalid as exc:
        return None, _token_problem(request, exc, purpose="data")
    if not preferences_link_is_live(subscription_id=subscription_id, address_hmac=key):
        return None, _link_gone(request)
    return key, None


@require_http_methods(["GET", "HEAD", "POST"])
@speaks_reader_language(lambda token: tokens.read_data_token(tokens.DATA_EXPORT, token)[0])
def data_export(request: HttpRequest, token: str) -> HttpResponse:
    """The mailed export link: GET shows a button (scanners fetch links), POST downloads."""
    key, problem = _data_link(request, token, purpose=tokens.DATA_EXPORT)
    if problem:
        return problem
    if request.method in READ_METHODS:
        return render(request, "newsletter/data_export.html", {"token": token})
    data = subscriber_export(address_hmac=key)
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False, indent=2),
        content_type="application/json; charset=utf-8",
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="newsletter-daten-{stamp}.json"'
    return response


@require_http_methods(["GET", "HEAD", "POST"])
@speaks_reader_language(lambda token: tokens.read_data_token(tokens.DATA_ERASE, token)[0])
def data_erase(request: HttpRequest, token: str) -> HttpResponse:
    """The mailed erasure link: GET asks once more, POST erases everything of the address."""
    key, problem = _data_link(request, token, purpose=tokens.DATA_ERASE)
    if problem:
        return problem
    if request.method in READ_METHODS:
        return render(request, "newsletter/preferences_erase.html", {"token": token})
    subscriber_erase(address_hmac=key, channel=RevocationChannel.PREFERENCES)
    return render(request, "newsletter/preferences_erased.html")


def _preferences_save(request: HttpRequest, *, key: str, token: str, saved: str) -> HttpResponse:
    subscriptions = list(subscription_list_for_address(address_hmac=key))
    form = PreferencesForm(
        request.POST, newsletters=newsletter_list_active(), subscriptions=subscriptions
    )
    if not subscriptions or not form.is_valid():
        context = _preferences_context(key, token, form if subscriptions else None)
        return render(request, "newsletter/preferences.html", context, status=400)
    choices = [
        PreferenceChoice(
            newsletter=row["newsletter"],
            wanted=form.cleaned_data[row["field"].name],
            frequency=form.cleaned_data.get(row["frequency"].name) if row["frequency"] else None,
            consent_text=row["consent_text"],
        )
        for row in form.rows
    ]
    try:
        preferences_apply(
            address_hmac=key,
            language=form.cleaned_data["language"],
            choices=choices,
            ip=_client_ip(request),
            user_agent=_user_agent(request),
            # The page without its token: the token is a credential, not evidence.
            url=settings.SITE_URL + reverse("newsletter:preferences_request"),
            topic_ids=[topic.pk for topic in form.cleaned_data["topics"]],
        )
    except ValidationError as exc:
        form.add_error(None, exc)
        return render(
            request,
            "newsletter/preferences.html",
            _preferences_context(key, token, form),
            status=400,
        )
    return HttpResponseRedirect(saved, status=303)


@require_http_methods(["GET", "HEAD", "POST"])
def preferences_request(request: HttpRequest) -> HttpResponse:
    """Ask for the preference-centre link by address; every address gets the same answer."""
    if request.method in READ_METHODS:
        form = PreferencesLinkForm(initial={"started": form_started_token()})
        return render(request, "newsletter/preferences_request.html", {"form": form})
    limited = _rate_limited(request, scope="link", key=_client_ip(request), kind="ip")
    if limited:
        return limited
    form = PreferencesLinkForm(request.POST)
    if form.is_valid():
        done = HttpResponseRedirect(reverse("newsletter:preferences_request_done"), status=303)
        if form.is_bot:
            return done
        key = address_hmac(form.cleaned_data["email"])
        limited = _rate_limited(request, scope="link", key=key, kind="address")
        if limited:
            return limited
        preferences_link_request(address_hmac=key)
        return done
    _refresh_started(form)
    return render(request, "newsletter/preferences_request.html", {"form": form}, status=400)


def preferences_request_done(request: HttpRequest) -> HttpResponse:
    return render(request, "newsletter/preferences_request_done.html")
