import ast
import subprocess
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
