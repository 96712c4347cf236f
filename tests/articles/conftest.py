import pytest
from django.core.cache import cache
from django.utils import translation

from articles.models import ArticleKind, DisclaimerVersion
from articles.selectors import disclaimer_default_version


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty page cache (this suite's own Redis database)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _german():
    """URLs reversed in a test are the German ones, whatever a previous request activated."""
    with translation.override("de"):
        yield


@pytest.fixture
def default_disclaimer(db) -> DisclaimerVersion:
    """The opinion default created by the data migration."""
    version = disclaimer_default_version(kind=ArticleKind.OPINION)
    assert version is not None
    return version
