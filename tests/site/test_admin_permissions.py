"""Every admin URL and every admin action, tried by every kind of user, against a table.

The rows come from `admin.site`: each registered model brings its standard pages and every
URL a ModelAdmin or the site adds must have a row below, so a new model, page or action
fails here until someone has decided who may use it. Pages are fetched with the test client
on the real database; actions are posted and their effect is looked up afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import reversion
from django.contrib import admin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.db import transaction
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone
from reversion.models import Version

from articles.models import Article, ArticleEvent, ArticleEventKind, ArticleStatus
from newsletter.models import (
    Campaign,
    ConsentEvent,
    ConsentText,
    Digest,
    DigestState,
    Frequency,
    Subscription,
    SubscriptionImport,
    SubscriptionState,
    Suppression,
)
from newsletter.services.consent import (
    consent_text_default_publish,
    subscriber_erase,
    subscription_confirm,
    subscription_request,
)
from newsletter.services.digests import digest_pause
from newsletter.services.ledger import chain_checkpoint_write
from tests.articles.factories import (
    ArticleFactory,
    AuthorFactory,
    DisclaimerFactory,
    DraftArticleFactory,
    TopicFactory,
    image_create,
)
from tests.newsletter.factories import NewsletterFactory

pytestmark = pytest.mark.django_db

PRINCIPALS = ("anonymous", "staff", "editor", "manager", "viewer", "digest_viewer", "superuser")
ADMIN = "/admin/"

# --- Who may do what with each registered model --------------------------------------------
# v: list, change page (read-only without change) and history; a: add page; d: delete page.
# The ModelAdmins' own limits are part of the expectation: evidence, digests and
# subscriptions are never added or deleted by hand, not even by a superuser.
MODELS: dict[str, dict[str, str]] = {
    "auth.group": {"viewer": "v", "superuser": "vad"},
    "auth.user": {"viewer": "v", "superuser": "vad"},
    "articles.topic": {"editor": "vad", "viewer": "v", "superuser": "vad"},
    "articles.author": {"editor": "vad", "viewer": "v", "superuser": "vad"},
    "articles.article": {"editor": "vad", "viewer": "v", "superuser": "vad"},
    "articles.disclaimer": {"editor": "vad", "viewer": "v", "superuser": "vad"},
    "articles.disclaimerversion": {"editor": "v", "viewer": "v", "superuser": "v"},
    "articles.image": {"editor": "vad", "viewer": "v", "superuser": "vad"},
    "articles.articleevent": {"editor": "v", "viewer": "v", "superuser": "v"},
    "newsletter.newsletter": {"manager": "va", "viewer": "v", "superuser": "va"},
    "newsletter.consenttext": {"manager": "v", "viewer": "v", "superuser": "v"},
    "newsletter.subscription": {"manager": "v", "viewer": "v", "superuser": "v"},
    "newsletter.consentevent": {"manager": "v", "viewer": "v", "superuser": "v"},
    "newsletter.chaincheckpoint": {"manager": "v", "viewer": "v", "superuser": "v"},
    "newsletter.suppression": {"manager": "v", "viewer": "v", "superuser": "v"},
    "newsletter.digest": {"manager": "v", "viewer": "v", "digest_viewer": "v", "superuser": "v"},
    "newsletter.campaign": {"manager": "vad", "viewer": "v", "superuser": "vad"},
}

# The standard pages of a model: route below the model's prefix, and the letter it needs.
STANDARD_PAGES = (
    ("", "", "v"),
    ("add/", "add/", "a"),
    ("<path:object_id>/change/", "{obj}/change/", "v"),
    ("<path:object_id>/history/", "{obj}/history/", "v"),
    ("<path:object_id>/delete/", "{obj}/delete/", "d"),
)
# Django's redirect from the old change URL: any staff member, it only points elsewhere.
OLD_CHANGE_URL = "<path:object_id>/"


@dataclass(frozen=True)
class Page:
    route: str  # as the admin's URL resolver spells it, relative to the admin root
    path: str  # filled with the world's ids
    statuses: tuple[int, ...]  # in the order of PRINCIPALS
    method: str = "get"


# Statuses:   anonymous, staff, editor, manager, viewer, digest_viewer, superuser
ALL_STAFF = (302, 200, 200, 200, 200, 200, 200)
SITE_PAGES = [
    Page("", "", ALL_STAFF),
    Page("login/", "login/", (200, 302, 302, 302, 302, 302, 302)),
    Page("logout/", "logout/", (302, 405, 405, 405, 405, 405, 405)),
    Page("password_change/", "password_change/", ALL_STAFF),
    Page("password_change/done/", "password_change/done/", ALL_STAFF),
    Page(
        "autocomplete/",
        "autocomplete/?app_label=articles&model_name=article&field_name=topics",
        (302, 403, 200, 403, 200, 403, 200),
    ),
    Page("jsi18n/", "jsi18n/", ALL_STAFF),
    # Where an article lives on the site; for a draft that is its unpublished slug.
    Page(
        "r/<path:content_type_id>/<path:object_id>/",
        "r/{article_type}/{article}/",
        (302, 403, 302, 403, 302, 403, 302),
    ),
    Page(
        "r/<path:content_type_id>/<path:object_id>/",
        "r/{article_type}/{published}/",
        (302, 403, 302, 403, 302, 403, 302),
    ),
    Page(
        "^(?P<app_label>auth|articles|newsletter)/$",
        "auth/",
        (302, 404, 404, 404, 200, 404, 200),
    ),
    Page(
        "^(?P<app_label>auth|articles|newsletter)/$",
        "articles/",
        (302, 404, 200, 404, 200, 404, 200),
    ),
    Page(
        "^(?P<app_label>auth|articles|newsletter)/$",
        "newsletter/",
        (302, 404, 404, 200, 200, 200, 200),
    ),
    Page("(?P<url>.*)$", "gibt-es-nicht/", (302, 404, 404, 404, 404, 404, 404)),
]
CUSTOM_PAGES = [
    # The article form's picture upload: adding images is the right; an empty post is a 400.
    Page(
        "articles/image/upload/",
        "articles/image/upload/",
        (302, 403, 400, 403, 403, 403, 400),
        method="post",
    ),
    # The editor's autosave answers posts only; who may post it is decided first.
    Page(
        "articles/article/autosave/",
        "articles/article/autosave/",
        (302, 403, 405, 403, 403, 403, 405),
    ),
    Page(
        "articles/article/<path:object_id>/autosave/",
        "articles/article/{article}/autosave/",
        (302, 403, 405, 403, 403, 403, 405),
    ),
    Page(
        "articles/article/<path:object_id>/withdraw/",
        "articles/article/{published}/withdraw/",
        (302, 403, 200, 403, 403, 403, 200),
    ),
    # Purging (legal reasons) is for superusers only.
    Page(
        "articles/article/<path:object_id>/purge/",
        "articles/article/{published}/purge/",
        (302, 403, 403, 403, 403, 403, 200),
    ),
    # A revision: its diff for whoever may see the article (restoring needs change).
    Page(
        "articles/article/^([^/]+)/history/(\\d+)/$",
        "articles/article/{article}/history/{article_version}/",
        (302, 403, 200, 403, 200, 403, 200),
    ),
    # django-reversion's recovery of deleted drafts: add and change rights.
    Page(
        "articles/article/^recover/$",
        "articles/article/recover/",
        (302, 403, 200, 403, 403, 403, 200),
    ),
    Page(
        "articles/article/^recover/(\\d+)/$",
        "articles/article/recover/999999/",
        (302, 403, 404, 403, 403, 403, 404),
    ),
    Page(
        "auth/user/<id>/password/",
        "auth/user/{user}/password/",
        (302, 403, 403, 403, 403, 403, 200),
    ),
    Page(
        "newsletter/subscription/<int:pk>/nachweis.json",
        "newsletter/subscription/{subscription}/nachweis.json",
        (302, 403, 403, 200, 200, 403, 200),
    ),
    Page(
        "newsletter/subscription/<int:pk>/nachweis/",
        "newsletter/subscription/{subscription}/nachweis/",
        (302, 403, 403, 200, 200, 403, 200),
    ),
    Page(
        "newsletter/subscription/<int:pk>/nachweis.pdf",
        "newsletter/subscription/{subscription}/nachweis.pdf",
        (302, 403, 403, 200, 200, 403, 200),
    ),
    Page(
        "newsletter/digest/start/",
        "newsletter/digest/start/",
        (302, 403, 403, 200, 403, 403, 200),
    ),
    Page(
        "newsletter/digest/<int:pk>/progress/",
        "newsletter/digest/{digest}/progress/",
        (302, 403, 403, 200, 200, 200, 200),
    ),
    Page(
        "newsletter/digest/<int:pk>/progress.json",
        "newsletter/digest/{digest}/progress.json",
        (302, 403, 403, 200, 200, 200, 200),
    ),
    Page(
        "newsletter/digest/<int:pk>/preview/",
        "newsletter/digest/{digest}/preview/?language=en",
        (302, 403, 403, 200, 200, 200, 200),
    ),
    Page(
        "newsletter/digest/<int:pk>/preview/",
        "newsletter/digest/{digest}/preview/?subscription={subscription}",
        (302, 403, 403, 200, 403, 403, 200),
    ),
    Page(
        "newsletter/digest/<int:pk>/bericht/",
        "newsletter/digest/{digest}/bericht/",
        (302, 403, 403, 200, 200, 200, 200),
    ),
    Page(
        "newsletter/digest/<int:pk>/bericht.csv",
        "newsletter/digest/{digest}/bericht.csv",
        (302, 403, 403, 200, 200, 200, 200),
    ),
    # The dashboard's figures need the right to read subscriptions.
    Page(
        "newsletter/statistik/<slug:key>.csv",
        "newsletter/statistik/abonnenten.csv",
        (302, 403, 403, 200, 200, 403, 200),
    ),
    Page(
        "newsletter/subscription/import/",
        "newsletter/subscription/import/",
        (302, 403, 403, 200, 403, 403, 200),
    ),
    # A large file's job page: counts and problems by line, for those who may import.
    Page(
        "newsletter/subscription/import/<int:pk>/",
        "newsletter/subscription/import/{subscription_import}/",
        (302, 403, 403, 200, 403, 403, 200),
    ),
    Page(
        "newsletter/digest/<int:pk>/test/",
        "newsletter/digest/{digest}/test/",
        (302, 403, 403, 302, 403, 403, 302),
        method="post",
    ),
    # The shared send workflow: a digest draft is previewed and tested before it exists.
    Page(
        "newsletter/digest/start/preview/",
        "newsletter/digest/start/preview/?newsletter={newsletter_newsletter}&frequency=daily",
        (302, 403, 403, 200, 403, 403, 200),
    ),
    Page(
        "newsletter/digest/start/test/",
        "newsletter/digest/start/test/",
        (302, 403, 403, 400, 403, 403, 400),
        method="post",
    ),
    Page(
        "newsletter/digest/<int:pk>/control/",
        "newsletter/digest/{digest}/control/",
        (302, 403, 403, 400, 403, 403, 400),
        method="post",
    ),
    Page(
        "newsletter/campaign/<int:pk>/send/",
        "newsletter/campaign/{campaign}/send/",
        (302, 403, 403, 200, 403, 403, 200),
    ),
    Page(
        "newsletter/campaign/<int:pk>/preview/",
        "newsletter/campaign/{campaign}/preview/?language=en",
        (302, 403, 403, 200, 200, 403, 200),
    ),
    Page(
        "newsletter/campaign/<int:pk>/preview/",
        "newsletter/campaign/{campaign}/preview/?subscription={subscription}",
        (302, 403, 403, 200, 403, 403, 200),
    ),
    Page(
        "newsletter/campaign/<int:pk>/test/",
        "newsletter/campaign/{campaign}/test/",
        (302, 403, 403, 200, 403, 403, 200),
        method="post",
    ),
]
# Not in the admin, but the editors' page of it: drafts, read in the site's own layout.
OUTSIDE_PAGES = [
    Page("-", "/vorschau/{article}/", (302, 403, 200, 403, 200, 403, 200)),
    # The editor's preview of unsaved changes takes posts only.
    Page("-", "/vorschau/ungespeichert/", (302, 403, 405, 403, 405, 403, 405)),
]


def admin_routes() -> Iterator[str]:
    """Every route the admin answers, as its resolver spells it."""

    def walk(patterns, prefix: str) -> Iterator[str]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                assert isinstance(pattern, URLPattern)
                yield prefix + str(pattern.pattern)

    yield from walk(admin.site.get_urls(), "")


def key(label: str) -> str:
    """The world's id of a model ("articles.article" → "articles_article", a format field)."""
    return label.replace(".", "_")


def model_prefix(model) -> str:
    return f"{model._meta.app_label}/{model._meta.model_name}/"


def model_pages() -> list[Page]:
    """The standard pages of every registered model, with the statuses MODELS implies."""
    pages = []
    for model in admin.site._registry:
        letters = MODELS.get(model._meta.label_lower, {})
        prefix = model_prefix(model)
        for route, path, letter in STANDARD_PAGES:
            statuses = tuple(
                302 if who == "anonymous" else 200 if letter in letters.get(who, "") else 403
                for who in PRINCIPALS
            )
            filled = prefix + path.replace("{obj}", "{" + key(model._meta.label_lower) + "}")
            pages.append(Page(prefix + route, filled, statuses))
        pages.append(
            Page(
                prefix + OLD_CHANGE_URL,
                prefix + "{" + key(model._meta.label_lower) + "}/",
                (302,) * len(PRINCIPALS),
            )
        )
    return pages


def every_page() -> list[Page]:
    return model_pages() + SITE_PAGES + CUSTOM_PAGES


# --- The world: one object of every registered model, and the users ------------------------


@pytest.fixture
def world(db) -> dict[str, object]:
    newsletter = NewsletterFactory(slug="rechte", name="Meinung am Morgen")
    consent_text_default_publish(newsletter=newsletter)
    evidence = {"ip": "203.0.113.7", "user_agent": "Browser", "url": "http://testserver/"}
    pending = subscription_request(
        address="leserin@example.org",
        newsletter=newsletter,
        form="signup_box",
        language="de",
        **evidence,
    )
    subscription = subscription_confirm(
        subscription_id=pending.id, confirm_round=pending.confirm_round, ip=None, user_agent=""
    )
    gone = subscription_request(
        address="geloescht@example.org",
        newsletter=newsletter,
        form="signup_box",
        language="de",
        **evidence,
    )
    subscriber_erase(address_hmac=gone.address_hmac)
    now = timezone.now()
    digest = Digest.objects.create(
        newsletter=newsletter,
        frequency=Frequency.DAILY,
        slot=now,
        state=DigestState.SENDING,
        period_start=now - timezone.timedelta(days=1),
        period_end=now,
        subject="Meinung am Morgen: 2 neue Artikel",
        recipients=1,
    )
    campaign = Campaign.objects.create(
        newsletter=newsletter, name="Herbstangebot", subject="Ein Angebot", body_markdown="**Neu**"
    )
    draft = DraftArticleFactory(title="Noch geheim")
    with reversion.create_revision():
        reversion.add_to_revision(draft)
    published = ArticleFactory(title="Schon draußen")
    event = ArticleEvent.objects.create(
        article=published, article_ref=published.pk, kind=ArticleEventKind.CORRECTED
    )
    disclaimer = DisclaimerFactory()
    users = principals()
    target_user = User.objects.create_user("ziel", password="x")
    ids = {
        "auth_group": Group.objects.get(name="Redaktion").pk,
        "auth_user": target_user.pk,
        "articles_topic": TopicFactory().pk,
        "articles_author": AuthorFactory().pk,
        "articles_article": draft.pk,
        "articles_disclaimer": disclaimer.pk,
        "articles_disclaimerversion": published.disclaimer_version_id,
        "articles_image": image_create().pk,
        "articles_articleevent": event.pk,
        "article_version": Version.objects.get_for_object(draft).get().pk,
        "newsletter_newsletter": newsletter.pk,
        "newsletter_consenttext": ConsentText.objects.filter(newsletter=newsletter).first().pk,
        "newsletter_subscription": subscription.pk,
        "newsletter_consentevent": ConsentEvent.objects.filter(subscription=subscription)
        .first()
        .pk,
        "newsletter_suppression": Suppression.objects.get().pk,
        "newsletter_chaincheckpoint": chain_checkpoint_write().pk,
        "newsletter_digest": digest.pk,
        "newsletter_campaign": campaign.pk,
        # Short names for the hand-written rows.
        "user": target_user.pk,
        "subscription": subscription.pk,
        "digest": digest.pk,
        "campaign": campaign.pk,
        "subscription_import": SubscriptionImport.objects.create(
            newsletter=newsletter, file_name="gross.csv", data=b"email\n", user_name="x"
        ).pk,
        "article": draft.pk,
        "published": published.pk,
        "article_type": ContentType.objects.get_for_model(Article).pk,
    }
    return {"ids": ids, "users": users, "subscription": subscription, "digest": digest}


def principals() -> dict[str, User | None]:
    def staff(name: str, **extra) -> User:
        return User.objects.create_user(
            name, email=f"{name}@example.org", password="x", is_staff=True, **extra
        )

    editor, manager = staff("redakteurin"), staff("verwaltung")
    editor.groups.add(Group.objects.get(name="Redaktion"))
    manager.groups.add(Group.objects.get(name="Newsletter-Verwaltung"))
    viewer = staff("nur-lesen")
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    digest_viewer = staff("nur-digests")
    digest_viewer.user_permissions.add(Permission.objects.get(codename="view_digest"))
    return {
        "anonymous": None,
        "staff": staff("nur-personal"),
        "editor": editor,
        "manager": manager,
        "viewer": viewer,
        "digest_viewer": digest_viewer,
        "superuser": staff("chefin", is_superuser=True),
    }


def as_principal(client, world, who: str):
    user = world["users"][who]
    client.logout()
    if user is not None:
        client.force_login(user)
    return client


class _Undo(Exception):
    pass


@contextmanager
def undone() -> Iterator[None]:
    """Run a block and roll back whatever it wrote, so the next user finds the same world."""
    try:
        with transaction.atomic():
            yield
            raise _Undo
    except _Undo:
        pass


# --- The table covers everything the admin answers ------------------------------------------


def test_every_admin_route_has_a_row_and_every_row_a_route():
    routes = set(admin_routes())
    table = {page.route for page in every_page()}
    assert routes - table == set(), "admin URLs nobody decided on: add them to the table"
    assert table - routes == set(), "rows for URLs the admin no longer has"
    assert set(MODELS) >= {m._meta.label_lower for m in admin.site._registry}


@pytest.mark.parametrize("who", PRINCIPALS)
def test_every_admin_page_answers_each_user_as_the_table_says(client, world, who):
    as_principal(client, world, who)
    column = PRINCIPALS.index(who)
    wrong = []
    for page in every_page() + OUTSIDE_PAGES:
        path = page.path.format(**world["ids"])
        url = path if path.startswith("/") else ADMIN + path
        with undone():
            response = getattr(client, page.method)(url)
        expected = page.statuses[column]
        if response.status_code != expected:
            wrong.append(f"{page.method.upper()} {url}: {response.status_code}, not {expected}")
        elif who == "anonymous" and expected == 302 and page.route != "logout/":
            assert response["Location"].startswith(ADMIN + "login/"), url
    assert wrong == []


# --- Custom pages that change something: posted by each user, effect looked up -----------------


def _test_mail_sent(ids: dict, response) -> bool:
    return any(message.subject.startswith("[Test] ") for message in mail.outbox)


def _digest_started(ids: dict, response) -> bool:
    return Digest.objects.exclude(pk=ids["digest"]).exists()


def _campaign_sent(ids: dict, response) -> bool:
    return Digest.objects.filter(campaign_id=ids["campaign"]).exists()


def _digest_paused(ids: dict, response) -> bool:
    return Digest.objects.get(pk=ids["digest"]).state == DigestState.PAUSED


@dataclass(frozen=True)
class Post:
    path: str
    data: dict[str, str]
    allowed: frozenset[str]
    happened: Callable[[dict, object], bool]


POSTS = [
    Post(
        "newsletter/digest/{digest}/test/",
        {"language": "de"},
        frozenset({"manager", "superuser"}),
        _test_mail_sent,
    ),
    Post(
        "newsletter/digest/start/",
        {"newsletter": "{newsletter_newsletter}", "frequency": "daily"},
        frozenset({"manager", "superuser"}),
        _digest_started,
    ),
    Post(
        "newsletter/digest/start/test/",
        {
            "newsletter": "{newsletter_newsletter}",
            "frequency": "daily",
            "addresses": "a@example.org, b@example.org",
        },
        frozenset({"manager", "superuser"}),
        _test_mail_sent,
    ),
    Post(
        "newsletter/digest/{digest}/control/",
        {"control": "pause"},
        frozenset({"manager", "superuser"}),
        _digest_paused,
    ),
    Post(
        "newsletter/campaign/{campaign}/test/",
        {"addresses": "a@example.org\nb@example.org", "language": "en"},
        frozenset({"manager", "superuser"}),
        _test_mail_sent,
    ),
    Post(
        "newsletter/campaign/{campaign}/send/",
        {"send_at": ""},
        frozenset({"manager", "superuser"}),
        _campaign_sent,
    ),
]


@pytest.mark.parametrize("post", POSTS, ids=lambda post: post.path)
def test_custom_admin_posts_take_effect_only_for_those_allowed(client, world, post):
    ids = world["ids"]
    url = ADMIN + post.path.format(**ids)
    data = {key: value.format(**ids) for key, value in post.data.items()}
    outcome = {}
    for who in PRINCIPALS:
        as_principal(client, world, who)
        mail.outbox.clear()
        with undone():
            response = client.post(url, data)
            outcome[who] = post.happened(ids, response)
    assert {who for who, done in outcome.items() if done} == post.allowed


# --- Actions: posted by each user, effect looked up ------------------------------------------


@dataclass(frozen=True)
class Action:
    model: str  # label_lower of the registered model
    name: str
    allowed: frozenset[str]  # who gets the effect
    happened: Callable[[dict, object], bool]
    target: str = ""  # which world id to select; the model's own by default
    data: tuple[tuple[str, str], ...] = ()
    before: Callable[[dict], object] | None = None
    reads_only: bool = False


def gone(label: str) -> Callable[[dict, object], bool]:
    def check(ids: dict, response) -> bool:
        model = next(m for m in admin.site._registry if m._meta.label_lower == label)
        return not model.objects.filter(pk=ids[key(label)]).exists()

    return check


def digest_in(state: str) -> Callable[[dict, object], bool]:
    return lambda ids, response: Digest.objects.get(pk=ids["digest"]).state == state


def article_in(key: str, status: str) -> Callable[[dict, object], bool]:
    return lambda ids, response: Article.objects.get(pk=ids[key]).status == status


def subscription_no_longer_confirmed(ids: dict, response) -> bool:
    sub = Subscription.objects.filter(pk=ids["subscription"]).first()
    return sub is None or sub.state != SubscriptionState.CONFIRMED


def subscription_erased(ids: dict, response) -> bool:
    return not Subscription.objects.filter(email="leserin@example.org").exists()


def csv_with_the_subscriber(ids: dict, response) -> bool:
    if not response.get("Content-Type", "").startswith("text/csv"):
        return False
    # The export streams its rows.
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return b"leserin@example.org" in body


EDITING = frozenset({"editor", "superuser"})
MANAGING = frozenset({"manager", "superuser"})
SUPERUSER = frozenset({"superuser"})
NOBODY: frozenset[str] = frozenset()
CONFIRM_DELETE = (("post", "yes"),)


def delete_selected(label: str, allowed: frozenset[str]) -> Action:
    return Action(label, "delete_selected", allowed, gone(label), data=CONFIRM_DELETE)


ACTIONS = [
    delete_selected("auth.group", SUPERUSER),
    delete_selected("auth.user", SUPERUSER),
    delete_selected("articles.topic", EDITING),
    delete_selected("articles.author", EDITING),
    delete_selected("articles.article", EDITING),
    Action(
        "articles.article",
        "publish_now",
        EDITING,
        article_in("article", ArticleStatus.PUBLISHED),
    ),
    Action(
        "articles.article",
        "withdraw",
        EDITING,
        article_in("published", ArticleStatus.WITHDRAWN),
        target="published",
        data=(("apply", "1"), ("reason", "Falsche Zahlen"), ("confirm", "on")),
    ),
    delete_selected("articles.disclaimer", EDITING),
    delete_selected("articles.articleevent", NOBODY),
    # Versions are history; evidence, newsletters and digests are never deleted by hand.
    delete_selected("articles.disclaimerversion", NOBODY),
    delete_selected("articles.image", EDITING),
    delete_selected("newsletter.newsletter", NOBODY),
    delete_selected("newsletter.consenttext", NOBODY),
    delete_selected("newsletter.subscription", NOBODY),
    delete_selected("newsletter.consentevent", NOBODY),
    delete_selected("newsletter.chaincheckpoint", NOBODY),
    delete_selected("newsletter.suppression", NOBODY),
    delete_selected("newsletter.digest", NOBODY),
    delete_selected("newsletter.campaign", MANAGING),
    Action(
        "newsletter.subscription",
        "revoke_with_note",
        MANAGING,
        subscription_no_longer_confirmed,
        data=(("apply", "1"), ("note", "Widerruf per Brief")),
    ),
    # A read: whoever may list the addresses may export them.
    Action(
        "newsletter.subscription",
        "export_confirmed_csv",
        MANAGING | {"viewer"},
        csv_with_the_subscriber,
        reads_only=True,
    ),
    Action("newsletter.subscription", "erase_subscribers", MANAGING, subscription_erased),
    Action("newsletter.digest", "pause_selected", MANAGING, digest_in(DigestState.PAUSED)),
    Action(
        "newsletter.digest",
        "resume_selected",
        MANAGING,
        digest_in(DigestState.SENDING),
        before=lambda ids: digest_pause(digest_id=ids["digest"]),
    ),
    Action("newsletter.digest", "cancel_selected", MANAGING, digest_in(DigestState.CANCELLED)),
]


def test_every_admin_action_has_a_row_and_declares_its_permissions():
    rows = {(action.model, action.name): action for action in ACTIONS}
    found = set()
    for model, model_admin in admin.site._registry.items():
        for func, name, _description in model_admin._get_base_actions():
            found.add((model._meta.label_lower, name))
            declared = set(getattr(func, "allowed_permissions", ()))
            assert declared, f"{model._meta.label_lower}.{name} declares no permissions"
            row = rows.get((model._meta.label_lower, name))
            if row is not None and not row.reads_only:
                assert declared <= {"change", "delete"}, (name, declared)
    assert found == set(rows), "actions nobody decided on, or rows for actions that are gone"


@pytest.mark.parametrize("action", ACTIONS, ids=lambda action: f"{action.model}.{action.name}")
def test_every_admin_action_takes_effect_only_for_those_allowed(client, world, action):
    ids = world["ids"]
    app_label, model_name = action.model.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    data = {
        "action": action.name,
        "_selected_action": [ids[action.target or key(action.model)]],
        **dict(action.data),
    }
    outcome = {}
    for who in PRINCIPALS:
        as_principal(client, world, who)
        with undone():
            if action.before is not None:
                action.before(ids)
            if not action.reads_only:
                assert not action.happened(ids, None), "the effect is there before the post"
            response = client.post(url, data)
            outcome[who] = action.happened(ids, response)
    assert {who for who, done in outcome.items() if done} == action.allowed


@pytest.mark.parametrize("path", ["r/abc/1/", "r/999999/1/", "r/{article_type}/999999/"])
def test_view_on_site_answers_odd_ids_with_not_found(admin_client, world, path):
    assert admin_client.get(ADMIN + path.format(**world["ids"])).status_code == 404
