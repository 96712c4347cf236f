"""Reads over an article's revisions (django-reversion): the list, what changed, the diff."""

import difflib
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from reversion.models import Version

from .models import Article, UnpublishedRevision

# The fields a revision compares, in the order of the form; relations are shown as ids.
COMPARED_FIELDS = (
    "title",
    "slug",
    "kind",
    "lead",
    "body_markdown",
    "status",
    "published_at",
    "disclaimer_version",
    "meta_description",
    "authors",
    "topics",
)


@dataclass(frozen=True)
class FieldDiff:
    name: str
    label: str
    table: SafeString  # a side-by-side table: old on the left, new on the right


def _label(name: str) -> str:
    return str(Article._meta.get_field(name).verbose_name)


def _value(fields: dict, name: str):
    """A field's value in a revision, which keys fields by attribute name."""
    return fields.get(Article._meta.get_field(name).attname)


def _text(value, name: str = "") -> str:
    """A revision's value as an editor reads it: labels for choices, names for relations,
    local times."""
    if value is None or value == "":
        return ""
    field = Article._meta.get_field(name) if name else None
    if field is not None and field.choices:
        return str(dict(field.flatchoices).get(value, value))
    if field is not None and field.is_relation:
        ids = value if isinstance(value, list) else [value]
        names = {obj.pk: str(obj) for obj in field.related_model.objects.filter(pk__in=ids)}
        return ", ".join(names.get(pk, f"#{pk}") for pk in ids)
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "DATETIME_FORMAT")
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _versions() -> QuerySet[Version]:
    return Version.objects.select_related("revision__user").annotate(
        is_unpublished=Exists(UnpublishedRevision.objects.filter(revision=OuterRef("revision")))
    )


def version_list_for_article(*, article: Article) -> list[Version]:
    """The article's revisions, newest first, each with `changed`: labels of the fields that
    differ from the saved revision before it (autosaved, unpublished text is no state readers
    saw, so nothing is compared against it)."""
    versions = list(
        _versions()
        .filter(pk__in=Version.objects.get_for_object(article).values("pk"))
        .order_by("pk")
    )
    previous: dict = {}
    for version in versions:
        fields = version.field_dict
        version.changed = [
            _label(name)
            for name in COMPARED_FIELDS
            if previous and _text(_value(fields, name)) != _text(_value(previous, name))
        ]
        if not version.is_unpublished:
            previous = fields
    return versions[::-1]


def version_get(*, article: Article, version_id: int) -> Version | None:
    return (
        _versions()
        .filter(pk__in=Version.objects.get_for_object(article).values("pk"), pk=version_id)
        .first()
    )


def version_previous(*, version: Version) -> Version | None:
    """The saved revision before this one (skipping autosaved, unpublished ones)."""
    return (
        _versions()
        .filter(
            content_type_id=version.content_type_id,
            object_id=version.object_id,
            pk__lt=version.pk,
            is_unpublished=False,
        )
        .order_by("-pk")
        .first()
    )


def version_pending_for_article(*, article: Article) -> Version | None:
    """An autosaved state newer than the stored article whose words differ from it: typed,
    kept, not yet published."""
    latest = (
        _versions()
        .filter(pk__in=Version.objects.get_for_object(article).values("pk"))
        .order_by("-pk")
        .first()
    )
    if latest is None or not latest.is_unpublished:
        return None
    fields = latest.field_dict
    if all(
        fields.get(name) == getattr(article, name) for name in ("title", "lead", "body_markdown")
    ):
        return None
    return latest


def version_diff(*, old: dict, new: dict) -> list[FieldDiff]:
    """Side by side, line by line, every field that differs between two revisions."""
    differ = difflib.HtmlDiff(tabsize=4, wrapcolumn=60)
    diffs = []
    for name in COMPARED_FIELDS:
        before, after = _text(_value(old, name), name), _text(_value(new, name), name)
        if before == after:
            continue
        table = differ.make_table(
            before.splitlines() or [""], after.splitlines() or [""], context=False
        )
        # difflib escapes the text itself; its markup is fixed. Its legend links and the
        # nowrap attributes are dropped so the table fits the admin's column.
        table = table.replace(' nowrap="nowrap"', "")
        diffs.append(FieldDiff(name=name, label=escape(_label(name)), table=mark_safe(table)))  # noqa: S308
    return diffs
