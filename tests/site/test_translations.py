import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings

LOCALE = Path(django_settings.BASE_DIR) / "locale"
ENGLISH_PO = LOCALE / "en" / "LC_MESSAGES" / "django.po"


def po_entries(path: Path) -> list[dict[str, object]]:
    """Entries of a .po file as {flags, msgid, msgstr: [forms]}; enough for our own catalogues."""
    entries: list[dict[str, object]] = []
    for block in path.read_text(encoding="utf-8").split("\n\n"):
        entry: dict[str, object] = {"flags": set(), "msgid": "", "msgstr": []}
        field = None
        for line in block.splitlines():
            if line.startswith("#,"):
                entry["flags"] |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#") or not line.strip():
                continue
            elif line.startswith('"'):
                if field == "msgid":
                    entry["msgid"] += ast.literal_eval(line)
                elif field == "msgstr":
                    entry["msgstr"][-1] += ast.literal_eval(line)
            else:
                keyword, _, value = line.partition(" ")
                if keyword == "msgid":
                    field, entry["msgid"] = "msgid", ast.literal_eval(value)
                elif keyword.startswith("msgstr"):
                    field = "msgstr"
                    entry["msgstr"].append(ast.literal_eval(value))
                else:
                    field = None
        if entry["msgid"]:
            entries.append(entry)
    return entries


def test_english_catalogue_has_no_untranslated_or_fuzzy_entries():
    entries = po_entries(ENGLISH_PO)
    assert len(entries) > 100
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"])]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e["flags"]]
    assert untranslated == []
    assert fuzzy == []


def test_english_catalogue_compiles_with_matching_placeholders():
    # `-c` makes msgfmt reject a translation whose %(name)s placeholders differ from the source.
    result = subprocess.run(
        ["msgfmt", "-c", "--statistics", "-o", "/dev/null", str(ENGLISH_PO)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "fuzzy" not in result.stderr
    assert "untranslated" not in result.stderr
    assert f"{len(po_entries(ENGLISH_PO))} translated messages" in result.stderr


@pytest.fixture
def fresh_english_catalogue(settings, tmp_path):
    """Serve the catalogue compiled from the .po as it is now, not a stale local .mo."""
    target = tmp_path / "en" / "LC_MESSAGES"
    target.mkdir(parents=True)
    subprocess.run(["msgfmt", "-o", str(target / "django.mo"), str(ENGLISH_PO)], check=True)
    # Changing LOCALE_PATHS makes Django drop its loaded catalogues.
    settings.LOCALE_PATHS = [tmp_path]


@pytest.mark.django_db
def test_english_page_shows_english_text(client, fresh_english_catalogue):
    html = client.get("/en/").content.decode()
    assert '<html lang="en">' in html
    assert "All articles" in html
    assert "No investment advice." in html
    assert "Keine Anlageberatung" not in html


@pytest.mark.django_db
def test_english_error_page_shows_english_text(client, fresh_english_catalogue):
    response = client.get("/en/gibt-es-nicht/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert "To the article overview" in html


@pytest.mark.django_db
@pytest.mark.parametrize("purpose", ["newsletter.data-export", "newsletter.data-erase"])
def test_data_link_mail_and_pages_speak_the_readers_language(
    client, fresh_english_catalogue, purpose
):
    from newsletter import tokens
    from newsletter.emails.consent import data_link_message_build
    from tests.newsletter.factories import SubscriptionFactory

    for language, expected in (
        ("de", ("Ihre Newsletter-Daten", "Der Link gilt 60 Minuten.")),
        ("en", ("Your newsletter data", "The link is valid for 60 minutes.")),
    ):
        sub = SubscriptionFactory(language=language)
        message = data_link_message_build(subscription=sub, purpose=purpose)
        assert message.subject.startswith(expected[0])
        assert expected[1] in message.body and expected[1] in message.alternatives[0][0]
    # The pages behind the links, like every page reached from a mail (no language prefix),
    # follow the active language; their English is in the catalogue.
    from django.template.loader import render_to_string
    from django.utils import translation

    template = {
        tokens.DATA_EXPORT: "newsletter/data_export.html",
        tokens.DATA_ERASE: "newsletter/preferences_erase.html",
    }[purpose]
    request = client.get("/").wsgi_request
    with translation.override("en"):
        html = render_to_string(template, {"token": "t"}, request=request)
    assert "Download your data" in html or "If you do not want to erase anything" in html
    with translation.override("en"):
        sent = render_to_string(
            "newsletter/preferences_data_sent.html",
            {"token": "t", "erase": purpose == tokens.DATA_ERASE, "max_age_minutes": 60},
            request=request,
        )
    assert "It is valid for 60 minutes." in sent


def extracted_catalogue(tmp_path: Path) -> list[dict[str, object]]:
    """The catalogue `makemessages` extracts from the code and templates as they are now
    (admin included: its templates and ModelAdmins are ours), run on a copy so the
    committed catalogues stay untouched."""
    base = Path(django_settings.BASE_DIR)
    copy = tmp_path / "src"
    copy.mkdir()
    for name in ("articles", "newsletter", "config", "templates", "manage.py"):
        source = base / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / name)
    (copy / "tests").mkdir()
    for name in ("__init__.py", "settings.py"):
        shutil.copy(base / "tests" / name, copy / "tests" / name)
    (copy / "locale").mkdir()
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "en", "--no-location"],
        cwd=copy,
        check=True,
        capture_output=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    return po_entries(copy / "locale" / "en" / "LC_MESSAGES" / "django.po")


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_msgid_in_the_code_is_in_the_catalogue(tmp_path, language):
    """A string marked for translation but missing from a catalogue would show in German on
    English pages with no test noticing; German is the source language, so its catalogue
    needs every msgid too (empty msgstr shows the source), English a translation of each."""
    catalogue = {e["msgid"]: e for e in po_entries(LOCALE / language / "LC_MESSAGES" / "django.po")}
    extracted = extracted_catalogue(tmp_path)
    assert len(extracted) > 500
    missing = [e["msgid"] for e in extracted if e["msgid"] not in catalogue]
    assert missing == []
    if language == "en":
        untranslated = [e["msgid"] for e in extracted if not all(catalogue[e["msgid"]]["msgstr"])]
        assert untranslated == []
