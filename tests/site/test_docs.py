"""The README and docs/ point only at what a clone of the project contains, and docs/design.md
names only functions, settings and files that still exist."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CODE = [p for app in ("articles", "newsletter", "config") for p in (ROOT / app).rglob("*.py")]
SKIP_DIRS = {".git", ".venv", "var", "staticfiles", "__pycache__", ".pytest_cache", ".ruff_cache"}
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", path.read_text(), flags=re.M)}


def test_design_doc_exists_and_the_readme_links_it():
    assert (ROOT / "docs" / "design.md").is_file()
    assert "](docs/design.md)" in (ROOT / "README.md").read_text()


def _resolves(document: Path, target: str) -> bool:
    path, _sep, anchor = target.partition("#")
    resolved = (document.parent / path).resolve() if path else document
    if not resolved.exists() or not resolved.is_relative_to(ROOT):
        return False
    return not anchor or resolved.suffix != ".md" or anchor in _anchors(resolved)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_local_links_resolve(document):
    targets = [t for t in LINK.findall(document.read_text()) if not re.match(r"[a-z]+:", t)]
    assert not [t for t in targets if not _resolves(document, t)]


def test_nothing_points_outside_the_project_at_shared_notes():
    # Readers of a clone have no sibling directories; the design lives in docs/.
    needles = ("../" + "shared", "shared/" + "DESIGN")
    hits = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*")
        if path.is_file()
        and not SKIP_DIRS.intersection(path.relative_to(ROOT).parts)
        and path.suffix in {".md", ".py", ".txt", ".html", ".yml", ".toml", ".sh", ".example", ""}
        and any(n in path.read_text(errors="replace") for n in needles)
    ]
    assert not hits


def test_every_name_the_design_doc_uses_still_exists():
    names = set(re.findall(r"`([^`\n]+)`", (ROOT / "docs" / "design.md").read_text()))
    code = "\n".join(p.read_text() for p in CODE)
    settings = (ROOT / "config" / "settings.py").read_text()
    missing = []
    for name in sorted(names):
        if re.fullmatch(r"NEWSLETTER_[A-Z_]+(=\w+)?", name):
            found = name.partition("=")[0] in settings
        elif re.fullmatch(r"[a-z_]+(/[\w.]+)+/?", name):
            found = (ROOT / name).exists()
        elif re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)+", name):
            found = re.search(rf"\b{name}\b", code) is not None
        else:
            continue
        if not found:
            missing.append(name)
    assert not missing
