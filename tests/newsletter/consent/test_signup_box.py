"""Readers find the newsletter from every page, and a refused try keeps them where they were."""

import re
import time

import pytest
from django.core import signing
from django.test import TestCase

from newsletter.forms import STARTED_SALT, form_started_token
from newsletter.models import ConsentText, Subscription
from tests.articles.factories import ArticleFactory, TopicFactory

pytestmark = pytest.mark.django_db


def started_at(seconds_ago: float) -> str:
    return signing.dumps(f"{time.time() - seconds_ago:.3f}", salt=STARTED_SALT)


@pytest.mark.parametrize("prefix", ["", "/en"])
def test_home_list_and_topic_pages_carry_the_signup_box_and_newsletter_links(
    client, newsletter, prefix
):
    topic = TopicFactory(name="Edelmetalle", slug="edelmetalle")
    ArticleFactory(slug="gold", topics=[topic])
    for path in (f"{prefix}/", f"{prefix}/thema/edelmetalle/"):
        html = client.get(path).content.decode()
        assert 'class="nl-box"' in html, path
        assert f'name="page" value="{path}"' in html
        assert f'action="{prefix}/newsletter/anmelden/"' in html
        nav = html.split('class="topic-nav"')[1].split("</nav>")[0]
        footer = html.split('class="site-footer"')[1]
        for part in (nav, footer):
            assert f'href="{prefix}/newsletter/anmelden/"' in part
            assert f'href="{prefix}/newsletter/archiv/"' in part


def test_a_too_fast_try_from_a_box_answers_with_the_box_and_the_address_kept(
    client, newsletter, settings
):
    settings.NEWSLETTER_SIGNUP_MIN_SECONDS = 3
    text = ConsentText.objects.get(newsletter=newsletter, language="de")
    started = form_started_token()
    data = {
        "email": "schnell@example.org",
        "newsletter": newsletter.slug,
        "consent_text": text.id,
        "page": "/artikel/gold/",
        "website": "",
        "started": started,
    }
    response = client.post("/newsletter/anmelden/", data, HTTP_X_SIGNUP_BOX="1")
    assert response.status_code == 400
    html = response.content.decode()
    assert html.lstrip().startswith("<link") and "<html" not in html
    assert 'value="schnell@example.org"' in html
    assert "Ihre Angaben sind noch da" in html
    # The clock runs on from when the form was first shown: the same start comes back.
    assert re.search(r'name="started" value="([^"]+)"', html).group(1) == started
    assert 'name="page" value="/artikel/gold/"' in html
    assert not Subscription.objects.exists()

    # Pressed again once the minimum time has passed since the form was shown: accepted.
    with TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            "/newsletter/anmelden/", {**data, "started": started_at(4)}, HTTP_X_SIGNUP_BOX="1"
        )
    assert response.status_code == 303
    assert Subscription.objects.filter(email="schnell@example.org").exists()


def test_an_expired_form_gets_a_new_start(client, newsletter):
    text = ConsentText.objects.get(newsletter=newsletter, language="de")
    response = client.post(
        "/newsletter/anmelden/",
        {
            "email": "alt@example.org",
            "newsletter": newsletter.slug,
            "consent_text": text.id,
            "started": "forged",
        },
    )
    assert response.status_code == 400
    assert 'name="started" value="forged"' not in response.content.decode()


@pytest.mark.parametrize(("description_en", "marked"), [("", "de"), ("Every morning.", "en")])
def test_the_boxs_description_and_consent_text_say_which_language_they_are_in(
    client, newsletter, description_en, marked
):
    newsletter.description = "Jeden Morgen."
    newsletter.description_en = description_en
    newsletter.save()
    html = client.get("/en/newsletter/anmelden/").content.decode()
    assert re.search(rf'<p class="nl-box__lead" lang="{marked}">', html)
    text = ConsentText.objects.filter(newsletter=newsletter, language="en").first()
    language = text.language if text else "de"
    assert f'<div class="nl-consent" lang="{language}">' in html
