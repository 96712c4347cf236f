"""The import rules of the README's architecture section, held by reading the code.

config → apps; newsletter → articles, never back (templates included); no function-local
import of the project's own modules; no private name taken from another module; views and
services never import tasks.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = ("articles", "newsletter", "config")
# Django loads an app's checks and signal receivers in AppConfig.ready(), after the registry.
READY_IMPORTS = {"newsletter/apps.py"}


def _modules(*packages: str) -> list[Path]:
    return [
        path
        for package in packages
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def _imports(path: Path) -> list[tuple[ast.AST, str, list[str], bool]]:
    """(node, module, names, at top level) for every import of the file."""
    tree = ast.parse(path.read_text())
    top = set(map(id, tree.body))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node, node.module, [a.name for a in node.names], id(node) in top))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found.append((node, alias.name, [], id(node) in top))
    return found


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_articles_never_imports_newsletter_or_config():
    offending = [
        f"{_rel(path)}:{node.lineno} {module}"
        for path in _modules("articles")
        for node, module, _names, _top in _imports(path)
        if module.split(".")[0] in ("newsletter", "config")
    ]
    assert not offending


def test_article_templates_load_no_other_apps_tags_or_files():
    pattern = re.compile(r"newsletter")
    offending = [
        _rel(path)
        for path in sorted((ROOT / "templates" / "articles").rglob("*.html"))
        if pattern.search(path.read_text())
    ]
    assert not offending


def test_apps_never_import_the_site_package():
    offending = [
        f"{_rel(path)}:{node.lineno} {module}"
        for path in _modules("articles", "newsletter")
        for node, module, _names, _top in _imports(path)
        if module.split(".")[0] == "config"
    ]
    assert not offending


def test_no_function_local_import_of_our_own_modules():
    offending = [
        f"{_rel(path)}:{node.lineno} {module}"
        for path in _modules(*OWN)
        if _rel(path) not in READY_IMPORTS
        for node, module, _names, top in _imports(path)
        if not top and module.split(".")[0] in OWN
    ]
    assert not offending


def test_no_private_name_is_taken_from_another_module():
    offending = [
        f"{_rel(path)}:{node.lineno} {module} {names}"
        for path in _modules(*OWN)
        for node, module, names, _top in _imports(path)
        if module.split(".")[0] in OWN
        and (
            any(name.startswith("_") for name in names)
            or any(part.startswith("_") and part != "__init__" for part in module.split("."))
        )
    ]
    assert not offending


@pytest.mark.parametrize("package", ["newsletter/views", "newsletter/services", "articles"])
def test_views_and_services_never_import_tasks(package):
    offending = [
        f"{_rel(path)}:{node.lineno} {module}"
        for path in _modules(package)
        for node, module, _names, _top in _imports(path)
        if ".tasks" in f".{module}" and module.split(".")[0] in OWN
    ]
    assert not offending
