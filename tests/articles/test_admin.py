"""The editors' admin through the admin client: lists, forms, actions, plain-words errors."""

import json
import re
from datetime import datetime, timedelta
from html import unescape

import pytest
from django.contrib.auth.models import Group, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from articles.models import (
    Article,
    ArticleEvent,
    ArticleEventKind,
    ArticleKind,
    ArticleStatus,
    ArticleTranslation,
    Disclaimer,
    DisclaimerVersion,
)
from tests.articles.factories import (
    ArticleFactory,
    AuthorFactory,
    DraftArticleFactory,
    TopicFactory,
)

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:articles_article_changelist"


def _form_data(**overrides):
    data = {
        "title": "Neuer Kommentar",
        "slug": "neuer-kommentar",
        "kind": ArticleKind.OPINION,
        "lead": "Vorspann",
        "body_markdown": "## Teil\n\nText <script>alert(1)</script>",
        "status": ArticleStatus.DRAFT,
        "published_at_0": "",
        "published_at_1": "",
        "disclaimer_version": "",
        "meta_description": "",
        "authors": [],
        "topics": [],
        # The translations inline, empty.
        "translations-TOTAL_FORMS": "0",
        "translations-INITIAL_FORMS": "0",
        "translations-MIN_NUM_FORMS": "0",
        "translations-MAX_NUM_FORMS": "1000",
    }
    data.update(overrides)
    return data


def test_changelist_shows_columns_with_a_fixed_number_of_queries(admin_client):
    topic = TopicFactory(name="Edelmetalle")
    article = ArticleFactory(topics=[topic])
    article.authors.set([AuthorFactory(name="Lena Hartmann")])
    url = reverse(CHANGELIST)
    with CaptureQueriesContext(connection) as few:
        response = admin_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    for text in ("Edelmetalle", "Lena Hartmann", "Veröffentlicht", "Meinung", "Vorschau öffnen"):
        assert text in html
    for _ in range(15):
        extra = ArticleFactory(topics=[TopicFactory(), TopicFactory()])
        extra.authors.set([AuthorFactory(), AuthorFactory()])
    with CaptureQueriesContext(connection) as many:
        assert admin_client.get(url).status_code == 200
    assert len(many) == len(few)


@pytest.fixture
def one_of_each():
    """One article per filter, each matching only its own, and one that matches none."""
    DraftArticleFactory(title="Entwurf zur Rente")
    ArticleFactory(title="Nachricht vom Markt", kind=ArticleKind.NEWS)
    ArticleFactory(title="Gold glänzt")
    ArticleFactory(
        title="Rückblick auf den Sommer",
        published_at=timezone.make_aware(datetime(2025, 7, 1, 9, 0)),
    )
    ArticleFactory(title="Meinung ohne Besonderheit")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?status__exact=draft", {"Entwurf zur Rente"}),
        ("?kind__exact=news", {"Nachricht vom Markt"}),
        ("?q=Gold", {"Gold glänzt"}),
        ("?published_at__year=2025", {"Rückblick auf den Sommer"}),
        (
            "",
            {
                "Entwurf zur Rente",
                "Nachricht vom Markt",
                "Gold glänzt",
                "Rückblick auf den Sommer",
                "Meinung ohne Besonderheit",
            },
        ),
    ],
)
def test_changelist_filters_search_and_dates_narrow_to_the_matching_rows(
    admin_client, one_of_each, query, expected
):
    response = admin_client.get(reverse(CHANGELIST) + query)
    assert response.status_code == 200
    assert {article.title for article in response.context["cl"].result_list} == expected
    # The rows the editor sees are those articles, no more.
    html = response.content.decode()
    shown = set(re.findall(r'<th class="field-title"><a href="[^"]*">([^<]*)</a>', html))
    assert shown == expected
    # And the unfiltered list offers the editor that filter (the sidebar, the date links, the
    # search box): a lookup typed into the URL would narrow the list without it.
    offered = admin_client.get(reverse(CHANGELIST)).content.decode()
    if query.startswith("?q="):
        assert 'id="searchbar"' in offered
    elif query:
        assert f'href="{query}"' in offered


def test_add_page_renders_with_groups_and_autocomplete(admin_client):
    response = admin_client.get(reverse("admin:articles_article_add"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Veröffentlichung" in html and "Zuordnung" in html
    assert "admin-autocomplete" in html
    # The admin's prepopulate script reads this list: the slug follows the title as typed.
    match = re.search(
        r'id="django-admin-prepopulated-fields-constants"[^>]*data-prepopulated-fields="([^"]*)"',
        html,
    )
    assert match, "no prepopulated-fields configuration on the add page"
    fields = json.loads(unescape(match.group(1)))
    # The translations inline's slug follows its own title the same way (one template row).
    assert [(f["id"], f["dependency_list"], f["maxLength"]) for f in fields] == [
        ("#id_slug", ["title"], Article._meta.get_field("slug").max_length),
        (
            "#id_translations-__prefix__-slug",
            ["title"],
            ArticleTranslation._meta.get_field("slug").max_length,
        ),
    ]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_slug_fills_in_from_the_title_as_the_editor_types(
    browser_page, live_server, admin_user, client, settings
):
    client.force_login(admin_user)
    browser_page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    browser_page.goto(live_server.url + reverse("admin:articles_article_add"))
    title, slug = browser_page.locator("#id_title"), browser_page.locator("#id_slug")
    title.press_sequentially("Über Gold & Zinsen 2026")
    assert slug.input_value() == "uber-gold-zinsen-2026"
    # An editor's own slug is kept when the title changes afterwards.
    slug.fill("gold-und-zinsen")
    slug.press("Tab")
    title.press("End")
    title.press_sequentially(" und mehr")
    assert title.input_value() == "Über Gold & Zinsen 2026 und mehr"
    assert slug.input_value() == "gold-und-zinsen"


def test_add_stores_a_sanitised_draft(admin_client):
    topic = TopicFactory()
    response = admin_client.post(
        reverse("admin:articles_article_add"), _form_data(topics=[topic.pk])
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    article = Article.objects.get(slug="neuer-kommentar")
    assert article.status == ArticleStatus.DRAFT
    assert article.body_html.startswith("<h2>Teil</h2>")
    assert "script" not in article.body_html
    assert list(article.topics.all()) == [topic]


def test_publishing_from_the_form_attaches_the_default_disclaimer(admin_client, default_disclaimer):
    response = admin_client.post(
        reverse("admin:articles_article_add"), _form_data(status=ArticleStatus.PUBLISHED)
    )
    assert response.status_code == 302
    article = Article.objects.get(slug="neuer-kommentar")
    assert article.disclaimer_version == default_disclaimer
    assert article.published_at is not None


def test_publishing_an_opinion_without_disclaimer_is_a_form_error_in_plain_words(admin_client):
    Disclaimer.objects.update(default_for_kind="")
    response = admin_client.post(
        reverse("admin:articles_article_add"), _form_data(status=ArticleStatus.PUBLISHED)
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.has_error("disclaimer_version", code="disclaimer_missing")
    assert "Ein Meinungsartikel kann nur mit Hinweis veröffentlicht werden" in (
        response.content.decode()
    )
    assert not Article.objects.filter(slug="neuer-kommentar").exists()


def test_scheduling_from_the_form(admin_client, default_disclaimer):
    when = timezone.localtime(timezone.now() + timedelta(days=1))
    response = admin_client.post(
        reverse("admin:articles_article_add"),
        _form_data(
            status=ArticleStatus.SCHEDULED,
            published_at_0=when.strftime("%d.%m.%Y"),
            published_at_1=when.strftime("%H:%M:%S"),
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    article = Article.objects.get(slug="neuer-kommentar")
    assert article.status == ArticleStatus.SCHEDULED
    assert article.published_at > timezone.now()


def test_editing_a_published_article_records_a_correction(admin_client):
    article = ArticleFactory()
    url = reverse("admin:articles_article_change", args=[article.pk])
    assert admin_client.get(url).status_code == 200
    local = timezone.localtime(article.published_at)
    response = admin_client.post(
        url,
        _form_data(
            title=article.title,
            slug=article.slug,
            body_markdown="Korrigierter Text",
            status=ArticleStatus.PUBLISHED,
            published_at_0=local.strftime("%d.%m.%Y"),
            published_at_1=local.strftime("%H:%M:%S"),
            disclaimer_version=article.disclaimer_version_id,
        ),
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    article.refresh_from_db()
    assert article.corrected_at is not None
    assert article.body_html == "<p>Korrigierter Text</p>"


def test_publish_now_action_reports_counts_and_failures(admin_client, default_disclaimer):
    drafts = [DraftArticleFactory() for _ in range(2)]
    Disclaimer.objects.update(default_for_kind="")
    no_default = DraftArticleFactory(title="Ohne Hinweis")
    drafts[1].disclaimer_version = default_disclaimer
    drafts[1].save()
    drafts[0].disclaimer_version = default_disclaimer
    drafts[0].save()
    response = admin_client.post(
        reverse(CHANGELIST),
        {
            "action": "publish_now",
            "_selected_action": [a.pk for a in [*drafts, no_default]],
        },
    )
    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert "2 Artikel veröffentlicht." in texts
    assert any("Ohne Hinweis" in t and "nur mit Hinweis" in t for t in texts)
    assert Article.objects.filter(status=ArticleStatus.PUBLISHED).count() == 2
    no_default.refresh_from_db()
    assert no_default.status == ArticleStatus.DRAFT


def test_withdraw_action_asks_for_a_reason_then_reports_counts(admin_client):
    articles = [ArticleFactory() for _ in range(3)]
    selected = {"action": "withdraw", "_selected_action": [a.pk for a in articles]}
    asked = admin_client.post(reverse(CHANGELIST), selected)
    assert asked.status_code == 200
    assert "Begründung" in asked.content.decode()
    assert not Article.objects.filter(status=ArticleStatus.WITHDRAWN).exists()
    # A reason without the confirmation, or a confirmation without a reason, changes nothing.
    for missing in ({"reason": "Falsche Zahlen"}, {"confirm": "on"}):
        again = admin_client.post(reverse(CHANGELIST), {**selected, "apply": "1", **missing})
        assert again.status_code == 200
    assert not Article.objects.filter(status=ArticleStatus.WITHDRAWN).exists()
    response = admin_client.post(
        reverse(CHANGELIST),
        {**selected, "apply": "1", "reason": "Falsche Zahlen", "confirm": "on"},
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert "3 Artikel zurückgezogen." in texts
    assert Article.objects.filter(status=ArticleStatus.WITHDRAWN).count() == 3
    events = ArticleEvent.objects.filter(kind=ArticleEventKind.WITHDRAWN)
    assert sorted(e.article_ref for e in events) == sorted(a.pk for a in articles)
    assert {e.reason for e in events} == {"Falsche Zahlen"}
    assert {e.acting_user.username for e in events} == {"admin"}


def test_preview_link_on_the_change_page(admin_client):
    article = DraftArticleFactory()
    html = admin_client.get(reverse("admin:articles_article_change", args=[article.pk])).content
    assert reverse("articles:preview", kwargs={"pk": article.pk}).encode() in html


def test_editing_disclaimer_text_creates_a_new_version(admin_client, default_disclaimer):
    published = ArticleFactory(disclaimer_version=default_disclaimer)
    disclaimer = default_disclaimer.disclaimer
    url = reverse("admin:articles_disclaimer_change", args=[disclaimer.pk])
    page = admin_client.get(url).content.decode()
    assert default_disclaimer.text_de in page
    data = {
        "name": disclaimer.name,
        "default_for_kind": disclaimer.default_for_kind,
        "text_de": "Hinweis: neu formuliert.",
        "text_en": "Note: reworded.",
        "versions-TOTAL_FORMS": "1",
        "versions-INITIAL_FORMS": "1",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
        "versions-0-id": default_disclaimer.pk,
        "versions-0-disclaimer": disclaimer.pk,
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    versions = list(DisclaimerVersion.objects.filter(disclaimer=disclaimer).order_by("version"))
    assert [v.text_de for v in versions] == [default_disclaimer.text_de, "Hinweis: neu formuliert."]
    published.refresh_from_db()
    assert published.disclaimer_version == default_disclaimer
    # Saving again without a change adds nothing.
    data["versions-TOTAL_FORMS"] = data["versions-INITIAL_FORMS"] = "2"
    data["versions-1-id"] = versions[1].pk
    data["versions-1-disclaimer"] = disclaimer.pk
    admin_client.post(url, data)
    assert DisclaimerVersion.objects.filter(disclaimer=disclaimer).count() == 2


def test_disclaimer_versions_are_read_only(admin_client, default_disclaimer):
    url = reverse("admin:articles_disclaimerversion_change", args=[default_disclaimer.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert 'name="text_de"' not in response.content.decode()
    assert admin_client.post(url, {"text_de": "x"}).status_code == 403
    assert admin_client.get(reverse("admin:articles_disclaimerversion_add")).status_code == 403


def test_disclaimer_autocomplete_finds_versions(admin_client, default_disclaimer):
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "articles",
            "model_name": "article",
            "field_name": "disclaimer_version",
            "term": "Meinung",
        },
    )
    assert response.status_code == 200
    assert str(default_disclaimer.pk) in [r["id"] for r in response.json()["results"]]


# --- Groups ------------------------------------------------------------------------------


@pytest.fixture
def editor_client(client):
    user = User.objects.create_user("redakteurin", password="pw-redaktion-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Redaktion"))
    client.force_login(user)
    return client


def test_editor_group_can_work_on_articles(editor_client, default_disclaimer):
    assert editor_client.get(reverse(CHANGELIST)).status_code == 200
    assert editor_client.get(reverse("admin:articles_article_add")).status_code == 200
    assert editor_client.get(reverse("admin:articles_topic_changelist")).status_code == 200
    assert editor_client.get(reverse("admin:articles_disclaimer_changelist")).status_code == 200
    draft = DraftArticleFactory()
    editor_client.post(
        reverse(CHANGELIST), {"action": "publish_now", "_selected_action": [draft.pk]}
    )
    draft.refresh_from_db()
    assert draft.status == ArticleStatus.PUBLISHED


def test_editor_cannot_see_subscriber_data(editor_client):
    user = User.objects.get(username="redakteurin")
    for codename in ("view_subscription", "view_consentevent", "view_suppression"):
        assert not user.has_perm(f"newsletter.{codename}")
    index = editor_client.get(reverse("admin:index")).content.decode()
    assert "/newsletter/subscription/" not in index
    response = editor_client.get("/admin/newsletter/subscription/")
    assert response.status_code in (403, 404)


def test_newsletter_managers_get_the_newsletter_app_only():
    group = Group.objects.get(name="Newsletter-Verwaltung")
    labels = set(group.permissions.values_list("content_type__app_label", flat=True))
    assert labels == {"newsletter"}
    assert group.permissions.filter(codename="view_subscription").exists()
    editors = Group.objects.get(name="Redaktion")
    assert set(editors.permissions.values_list("content_type__app_label", flat=True)) == {
        "articles"
    }


def test_published_with_a_future_time_becomes_scheduled(admin_client, default_disclaimer):
    when = timezone.localtime(timezone.now() + timedelta(hours=3))
    response = admin_client.post(
        reverse("admin:articles_article_add"),
        _form_data(
            status=ArticleStatus.PUBLISHED,
            published_at_0=when.strftime("%d.%m.%Y"),
            published_at_1=when.strftime("%H:%M:%S"),
        ),
    )
    assert response.status_code == 302
    article = Article.objects.get(slug="neuer-kommentar")
    assert article.status == ArticleStatus.SCHEDULED
    assert article.published_at.second == 0


def test_adding_a_disclaimer_creates_version_one(admin_client):
    response = admin_client.post(
        reverse("admin:articles_disclaimer_add"),
        {
            "name": "Analyse-Hinweis",
            "default_for_kind": ArticleKind.ANALYSIS,
            "text_de": "Keine Anlageberatung.",
            "text_en": "No investment advice.",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    version = DisclaimerVersion.objects.get(disclaimer__name="Analyse-Hinweis")
    assert (version.version, version.text_en) == (1, "No investment advice.")


def test_a_second_default_for_a_kind_is_a_form_error(admin_client, default_disclaimer):
    response = admin_client.post(
        reverse("admin:articles_disclaimer_add"),
        {
            "name": "Zweiter Meinungshinweis",
            "default_for_kind": ArticleKind.OPINION,
            "text_de": "Anders formuliert.",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert not Disclaimer.objects.filter(name="Zweiter Meinungshinweis").exists()


def test_an_english_translation_is_added_beside_the_original_in_the_article_form(admin_client):
    from articles.models import ArticleTranslation

    data = _form_data(
        **{
            "translations-TOTAL_FORMS": "1",
            "translations-0-language": "en",
            "translations-0-title": "New comment",
            "translations-0-slug": "new-comment",
            "translations-0-lead": "Lead",
            "translations-0-body_markdown": "## Part\n\nText <script>alert(1)</script>",
            "translations-0-meta_description": "",
        }
    )
    response = admin_client.post(reverse("admin:articles_article_add"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    translation = ArticleTranslation.objects.get()
    assert translation.article.slug == "neuer-kommentar"
    assert "<h2>Part</h2>" in translation.body_html
    assert "<script" not in translation.body_html
