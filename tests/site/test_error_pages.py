import pytest
from django.test import Client


@pytest.mark.django_db
def test_unknown_page_gets_the_site_404_in_german(client):
    response = client.get("/gibt-es-nicht/")
    assert response.status_code == 404
    assert "Seite nicht gefunden" in response.content.decode()


@pytest.mark.django_db
def test_form_post_without_csrf_token_gets_a_plain_words_403():
    client = Client(enforce_csrf_checks=True)
    response = client.post("/newsletter/anmelden/", {"email": "a@example.org"})
    assert response.status_code == 403
    assert "Formular abgelaufen" in response.content.decode()
