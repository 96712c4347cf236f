"""The writing desk through the admin client: corrections after go-live, delete becomes
withdraw, purges, autosave, the previews of unsaved changes, revisions and readable names."""

import json
from datetime import timedelta

import pytest
import reversion
from django.contrib.auth.models import Group, Permission, User
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone, translation
from reversion.models import Version

from articles.models import Article, ArticleEvent, ArticleEventKind, ArticleStatus
from articles.services import (
    article_delete,
    article_publish,
    article_purge,
    article_save,
    article_withdraw,
)
from tests.articles.factories import ArticleFactory, AuthorFactory, DraftArticleFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:articles_article_changelist"


def _form(article: Article, **overrides) -> dict:
    stored = article.pk is not None
    local = timezone.localtime(article.published_at) if article.published_at else None
    data = {
        "title": article.title,
        "slug": article.slug,
        "kind": article.kind,
        "lead": article.lead,
        "body_markdown": article.body_markdown,
        "status": article.status,
        "published_at_0": local.strftime("%d.%m.%Y") if local else "",
        "published_at_1": local.strftime("%H:%M:%S") if local else "",
        "disclaimer_version": article.disclaimer_version_id or "",
        "meta_description": "",
        "authors": [a.pk for a in article.authors.all()] if stored else [],
        "topics": [t.pk for t in article.topics.all()] if stored else [],
        "feature_image": article.feature_image_id or "",
    }
    # The translations inline posts its management form and every stored translation as is.
    translations = list(article.translations.all()) if stored else []
    data.update(
        {
            "translations-TOTAL_FORMS": str(len(translations)),
            "translations-INITIAL_FORMS": str(len(translations)),
            "translations-MIN_NUM_FORMS": "0",
            "translations-MAX_NUM_FORMS": "1000",
        }
    )
    for index, text in enumerate(translations):
        prefix = f"translations-{index}-"
        data.update(
            {
                f"{prefix}id": text.pk,
                f"{prefix}article": article.pk,
                f"{prefix}language": text.language,
                f"{prefix}title": text.title,
                f"{prefix}slug": text.slug,
                f"{prefix}lead": text.lead,
                f"{prefix}body_markdown": text.body_markdown,
                f"{prefix}meta_description": text.meta_description,
            }
        )
    data.update(overrides)
    return data


@pytest.fixture
def editor_client(client):
    user = User.objects.create_user("redakteurin", password="pw-redaktion-123", is_staff=True)
    user.groups.add(Group.objects.get(name="Redaktion"))
    client.force_login(user)
    return client


@pytest.fixture
def scheduled_now_live(default_disclaimer):
    """Scheduled for a minute that has come; the beat has not flipped its row yet."""
    return ArticleFactory(
        status=ArticleStatus.SCHEDULED,
        published_at=timezone.now() - timedelta(minutes=3),
        disclaimer_version=default_disclaimer,
    )


# --- Corrections and the live status -----------------------------------------------------


def test_first_change_after_a_scheduled_go_live_is_a_correction(admin_client, scheduled_now_live):
    article = scheduled_now_live
    url = reverse("admin:articles_article_change", args=[article.pk])
    form = admin_client.get(url).context["adminform"].form
    assert form.initial["status"] == ArticleStatus.PUBLISHED  # not "Geplant" after go-live
    response = admin_client.post(
        url, _form(article, status=ArticleStatus.PUBLISHED, body_markdown="Korrigiert.")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    article.refresh_from_db()
    assert article.corrected_at is not None
    assert article.status == ArticleStatus.PUBLISHED
    event = ArticleEvent.objects.get(article=article, kind=ArticleEventKind.CORRECTED)
    assert event.data["fields"] == ["body_markdown"]
    assert event.acting_user.username == "admin"


def test_saving_without_a_visible_change_is_no_correction(admin_client):
    article = ArticleFactory()
    url = reverse("admin:articles_article_change", args=[article.pk])
    assert admin_client.post(url, _form(article)).status_code == 302
    article.refresh_from_db()
    assert article.corrected_at is None


def test_list_status_follows_the_live_time(admin_client, scheduled_now_live):
    future = ArticleFactory(
        status=ArticleStatus.SCHEDULED, published_at=timezone.now() + timedelta(days=1)
    )
    rows = {row.pk: row for row in admin_client.get(reverse(CHANGELIST)).context["cl"].result_list}
    admin = admin_client.get(reverse(CHANGELIST)).context["cl"].model_admin
    assert admin.live_status(rows[scheduled_now_live.pk]) == "Veröffentlicht"
    assert admin.live_status(rows[future.pk]) == "Geplant"


def test_a_live_article_does_not_go_back_to_draft_from_the_form(admin_client):
    article = ArticleFactory()
    url = reverse("admin:articles_article_change", args=[article.pk])
    response = admin_client.post(url, _form(article, status=ArticleStatus.DRAFT))
    assert response.status_code == 200
    assert response.context["adminform"].form.has_error("status", code="live_back_to_draft")
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED


# --- Delete becomes withdraw; purge for superusers -----------------------------------------


def test_editor_cannot_delete_a_published_article(editor_client):
    article = ArticleFactory()
    url = reverse("admin:articles_article_delete", args=[article.pk])
    response = editor_client.get(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:articles_article_withdraw", args=[article.pk])
    editor_client.post(url, {"post": "yes"})
    assert Article.objects.filter(pk=article.pk).exists()
    change = editor_client.get(reverse("admin:articles_article_change", args=[article.pk]))
    # No way to the article's delete page (the feature-image widget's own icon-deletelink.svg,
    # for images in the media library, is not one).
    assert b'class="deletelink"' not in change.content
    assert (
        reverse("admin:articles_article_delete", args=[article.pk]).encode() not in change.content
    )
    assert reverse("admin:articles_article_withdraw", args=[article.pk]).encode() in change.content


def test_delete_selected_keeps_articles_that_were_out(editor_client):
    draft, published = DraftArticleFactory(), ArticleFactory()
    withdrawn = ArticleFactory(status=ArticleStatus.WITHDRAWN, withdrawn_at=timezone.now())
    response = editor_client.post(
        reverse(CHANGELIST),
        {
            "action": "delete_selected",
            "_selected_action": [draft.pk, published.pk, withdrawn.pk],
            "post": "yes",
        },
    )
    assert response.status_code == 200
    assert "zurückziehen statt löschen" in response.content.decode()
    assert Article.objects.filter(pk__in=[draft.pk, published.pk, withdrawn.pk]).count() == 3
    response = editor_client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [draft.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Article.objects.filter(pk=draft.pk).exists()


def test_a_scheduled_article_withdrawn_before_its_minute_can_be_deleted():
    article = ArticleFactory(
        status=ArticleStatus.WITHDRAWN,
        published_at=timezone.now() + timedelta(days=1),
        withdrawn_at=timezone.now(),
    )
    article_delete(article=article)
    assert not Article.objects.filter(pk=article.pk).exists()


def test_the_service_refuses_to_delete_what_went_live():
    with pytest.raises(ValidationError, match="war schon online") as caught:
        article_delete(article=ArticleFactory())
    assert caught.value.code == "gone_live"


def test_purge_needs_a_superuser_and_a_reason(admin_client, editor_client):
    article = ArticleFactory(title="Rechtlich heikel")
    article_save(article=article)  # a revision that must go too
    assert Version.objects.get_for_object(article).exists()
    url = reverse("admin:articles_article_purge", args=[article.pk])
    assert editor_client.get(url).status_code == 403
    assert editor_client.post(url, {"reason": "x", "confirm": "on"}).status_code == 403
    response = admin_client.post(url, {"reason": "", "confirm": "on"})
    assert response.status_code == 200
    assert "Bitte geben Sie eine Begründung an." in response.content.decode()
    assert Article.objects.filter(pk=article.pk).exists()
    response = admin_client.post(url, {"reason": "Einstweilige Verfügung", "confirm": "on"})
    assert response.status_code == 302
    assert not Article.objects.filter(pk=article.pk).exists()
    assert not Version.objects.get_for_object_reference(Article, article.pk).exists()
    event = ArticleEvent.objects.get(kind=ArticleEventKind.PURGED)
    assert (event.article_ref, event.reason, event.acting_user.username) == (
        article.pk,
        "Einstweilige Verfügung",
        "admin",
    )
    assert "Rechtlich heikel" not in str(event.data)


def test_the_purge_service_refuses_editors():
    editor = User.objects.create_user("r", is_staff=True)
    with pytest.raises(ValidationError) as caught:
        article_purge(article=ArticleFactory(), actor=editor, reason="Grund")
    assert caught.value.code == "not_allowed"


def test_withdraw_page_needs_reason_and_confirmation(editor_client):
    article = ArticleFactory()
    url = reverse("admin:articles_article_withdraw", args=[article.pk])
    for data in ({"reason": "Falsch"}, {"reason": " ", "confirm": "on"}):
        assert editor_client.post(url, data).status_code == 200
    article.refresh_from_db()
    assert article.status == ArticleStatus.PUBLISHED
    response = editor_client.post(url, {"reason": "Falsche Zahlen", "confirm": "on"})
    assert response.status_code == 302
    article.refresh_from_db()
    assert article.status == ArticleStatus.WITHDRAWN and article.withdrawn_at is not None
    event = ArticleEvent.objects.get(kind=ArticleEventKind.WITHDRAWN, article=article)
    assert (event.reason, event.acting_user.username) == ("Falsche Zahlen", "redakteurin")
    history = editor_client.get(reverse("admin:articles_article_history", args=[article.pk]))
    assert "Falsche Zahlen" in history.content.decode()


def test_delete_confirmation_names_the_links_readably(admin_client):
    draft = DraftArticleFactory(title="Entwurf mit Autorin")
    draft.authors.set([AuthorFactory(name="Lena Hartmann")])
    html = admin_client.get(reverse("admin:articles_article_delete", args=[draft.pk])).content
    html = html.decode()
    assert "Article_authors object" not in html
    assert "Autorenzuordnung: Entwurf mit Autorin – Lena Hartmann" in html


# --- Autosave -------------------------------------------------------------------------------


def test_autosave_creates_a_draft_and_never_publishes(editor_client, default_disclaimer):
    draft = Article(title="Neu", slug="neu", body_markdown="Text", kind="opinion")
    response = editor_client.post(
        reverse("admin:articles_article_autosave_new"),
        _form(draft, status=ArticleStatus.PUBLISHED),
    )
    assert response.status_code == 200, response.content
    answer = response.json()
    article = Article.objects.get(slug="neu")
    assert article.status == ArticleStatus.DRAFT and article.published_at is None
    assert answer["change_url"] == reverse("admin:articles_article_change", args=[article.pk])
    assert Version.objects.get_for_object(article).count() == 1


def test_autosave_of_a_live_article_keeps_a_revision_only(editor_client):
    article = ArticleFactory(body_markdown="Alt.")
    response = editor_client.post(
        reverse("admin:articles_article_autosave", args=[article.pk]),
        _form(article, body_markdown="Neu getippt."),
    )
    assert response.status_code == 200
    assert response.json()["article_written"] is False
    article.refresh_from_db()
    assert article.body_markdown == "Alt." and article.corrected_at is None
    page = editor_client.get(reverse("admin:articles_article_change", args=[article.pk]))
    assert "nicht veröffentlichte Änderungen" in page.content.decode()
    assert page.context["pending_version"].field_dict["body_markdown"] == "Neu getippt."


def test_autosave_answers_form_errors_as_json(editor_client):
    response = editor_client.post(
        reverse("admin:articles_article_autosave_new"), {"title": "", "slug": "a b"}
    )
    assert response.status_code == 400
    assert "title" in response.json()["errors"]


# --- Previews -------------------------------------------------------------------------------


def test_live_pane_is_byte_for_byte_the_public_page(admin_client, client):
    article = ArticleFactory(
        body_markdown="## Lage\n\nText mit *Betonung* und <script>x</script>.",
        published_at=timezone.now().replace(microsecond=0) - timedelta(hours=1),
    )
    article_save(article=article)
    public = client.get(article.get_absolute_url()).content.decode()
    response = admin_client.post(
        reverse("articles:preview_unsaved") + "?teil=main",
        {**_form(article), "article_id": article.pk},
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer["html"] in public
    assert "script" not in answer["html"] and article.disclaimer_version.text_de in answer["html"]
    assert (answer["words"], answer["minutes"]) == (5, 1)


def test_unsaved_preview_of_a_live_article_publishes_nothing(admin_client, client):
    article = ArticleFactory(body_markdown="Veröffentlicht.")
    response = admin_client.post(
        reverse("articles:preview_unsaved"),
        {**_form(article, body_markdown="Noch nicht freigegeben."), "article_id": article.pk},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Noch nicht freigegeben." in html and "nichts davon ist gespeichert" in html
    assert 'name="robots" content="noindex' in html
    article.refresh_from_db()
    assert article.body_markdown == "Veröffentlicht."
    assert "Noch nicht freigegeben." not in client.get(article.get_absolute_url()).content.decode()


def test_unsaved_preview_of_an_empty_form_is_no_error(admin_client):
    response = admin_client.post(reverse("articles:preview_unsaved") + "?teil=main", {})
    assert response.status_code == 200
    assert response.json()["words"] == 0


def test_draft_preview_shows_the_disclaimer_it_will_be_published_with(
    admin_client, default_disclaimer
):
    draft = DraftArticleFactory()
    assert draft.disclaimer_version is None
    html = admin_client.get(reverse("articles:preview", kwargs={"pk": draft.pk})).content
    assert default_disclaimer.text_de in html.decode()


# --- Revisions --------------------------------------------------------------------------------


def test_restoring_a_revision_of_a_live_article_is_a_logged_correction(admin_client):
    article = ArticleFactory(body_markdown="Erste Fassung.")
    article_save(article=article)
    first = Version.objects.get_for_object(article).get()
    article.body_markdown = "Zweite Fassung."
    article_save(article=article)
    url = reverse("admin:articles_article_revision", args=[article.pk, first.pk])
    page = admin_client.get(url).content.decode()
    assert "Diese Fassung wiederherstellen" in page and "diff_sub" in page
    assert admin_client.post(url).status_code == 302
    article.refresh_from_db()
    assert article.body_markdown == "Erste Fassung."
    assert article.body_html == "<p>Erste Fassung.</p>"
    assert article.corrected_at is not None
    assert ArticleEvent.objects.filter(article=article, kind=ArticleEventKind.RESTORED).exists()


def test_readers_of_the_admin_see_revisions_but_cannot_restore(client):
    article = ArticleFactory()
    with reversion.create_revision():
        reversion.add_to_revision(article)
    version = Version.objects.get_for_object(article).get()
    viewer = User.objects.create_user("leser", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_article"))
    client.force_login(viewer)
    url = reverse("admin:articles_article_revision", args=[article.pk, version.pk])
    assert client.get(url).status_code == 200
    assert client.post(url).status_code == 403


def test_publishing_and_withdrawing_keep_revisions_with_who_did_it():
    editor = User.objects.create_user("r", is_staff=True)
    draft = DraftArticleFactory()
    article_publish(article=draft, actor=editor, at=timezone.now() - timedelta(minutes=1))
    article_withdraw(article=draft, reason="Falsche Zahlen", actor=editor)
    versions = list(Version.objects.get_for_object(draft).select_related("revision__user"))
    assert [v.field_dict["status"] for v in versions] == [
        ArticleStatus.WITHDRAWN,
        ArticleStatus.PUBLISHED,
    ]
    assert {v.revision.user for v in versions} == {editor}
    assert versions[0].revision.comment == "Zurückgezogen: Falsche Zahlen"


def test_restoring_an_old_slug_taken_since_is_a_message_not_an_error(admin_client):
    article = ArticleFactory(slug="alter-name")
    article_save(article=article)
    first = Version.objects.get_for_object(article).get()
    article.slug = "neuer-name"
    article_save(article=article)
    ArticleFactory(slug="alter-name")
    url = reverse("admin:articles_article_revision", args=[article.pk, first.pk])
    response = admin_client.post(url, follow=True)
    assert response.status_code == 200
    assert "Kurzname" in response.content.decode()
    article.refresh_from_db()
    assert article.slug == "neuer-name"


@pytest.mark.parametrize(("language", "label"), [("de", "Fett (Strg+B)"), ("en", "Bold (Ctrl+B)")])
def test_the_editor_gets_its_labels_in_the_editors_language(admin_client, language, label):
    with translation.override(language):  # the admin lives under /en/ in English
        response = admin_client.get(reverse("admin:articles_article_add"))
    widget = response.context["adminform"].form.fields["body_markdown"].widget
    assert json.loads(widget.attrs["data-editor-labels"])["bold"] == label
    assert widget.attrs["data-markdown-editor"] == "1"
