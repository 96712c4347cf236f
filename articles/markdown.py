"""Markdown to safe HTML: rendered once when an article is saved, never at request time.

Editors write Markdown (raw HTML is allowed as input), `markdown` renders it and `nh3` keeps
only an allow-list of tags, attributes and URL schemes. Whatever an editor pastes, scripts,
event handlers, `javascript:`/`data:` URLs, frames, styles and plugins do not survive.
"""

from collections.abc import Callable
from html import escape
from html.parser import HTMLParser
from urllib.parse import urlsplit

import markdown
import nh3
from django.conf import settings

ALLOWED_TAGS = {
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "del",
    "em",
    "figcaption",
    "figure",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "li",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
}
# Dropped together with their content, so a stripped <script> leaves no code behind as text.
DROPPED_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "noscript"}
URL_SCHEMES = {"http", "https", "mailto"}
EXTERNAL_REL = "noopener noreferrer nofollow"


class _HeadingShift(markdown.treeprocessors.Treeprocessor):
    """The page title is the only <h1>; a body starting at '#' moves one level down."""

    def run(self, root):
        for element in root.iter():
            if element.tag == "h1":
                element.tag = "h2"


class _ArticleExtension(markdown.Extension):
    def extendMarkdown(self, md):  # noqa: N802 - the Markdown API's name
        md.treeprocessors.register(_HeadingShift(md), "heading_shift", 5)


class HtmlRewriter(HTMLParser):
    """Re-serialises clean, well-formed HTML (nh3's output, or markup of our own), tag by
    tag: a subclass changes or replaces a start tag in `start`, or drops an end tag in `end`.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []

    def start(self, tag: str, attrs: list[tuple[str, str | None]]) -> str:
        return self.tag(tag, attrs)

    def end(self, tag: str) -> str:
        return f"</{tag}>"

    def handle_starttag(self, tag, attrs):
        self.out.append(self.start(tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.out.append(self.start(tag, attrs))

    def handle_endtag(self, tag):
        self.out.append(self.end(tag))

    def handle_data(self, data):
        self.out.append(escape(data, quote=False))

    def handle_entityref(self, name):
        self.out.append(f"&{name};")

    def handle_charref(self, name):
        self.out.append(f"&#{name};")

    def rewrite(self, html: str) -> str:
        self.feed(html)
        self.close()
        return "".join(self.out)

    @staticmethod
    def tag(tag: str, attrs: list[tuple[str, str | None]]) -> str:
        rendered = "".join(f' {key}="{escape(value or "", quote=True)}"' for key, value in attrs)
        return f"<{tag}{rendered}>"


# Markup for an image of the body: given its src and alt, the HTML to show instead (for a
# picture of the media library: `<picture>` with srcsets), or None to keep the `<img>`.
PictureResolver = Callable[[str, str], str | None]


class _ArticleRewriter(HtmlRewriter):
    """Marks external links (nh3 can only add one `rel` to every link; internal links should
    stay followable) and hands images to the picture resolver."""

    def __init__(self, own_hosts: set[str], pictures: PictureResolver | None) -> None:
        super().__init__()
        self.own_hosts = own_hosts
        self.pictures = pictures

    def _is_external(self, href: str) -> bool:
        parts = urlsplit(href.strip())
        return bool(parts.netloc) and parts.hostname not in self.own_hosts

    def start(self, tag, attrs):
        if tag == "a" and any(k == "href" and v and self._is_external(v) for k, v in attrs):
            attrs = [(k, v) for k, v in attrs if k != "rel"] + [("rel", EXTERNAL_REL)]
        if tag == "img" and self.pictures is not None:
            values = dict(attrs)
            picture = self.pictures(values.get("src") or "", values.get("alt") or "")
            if picture is not None:
                return picture
        return self.tag(tag, attrs)


def _own_hosts() -> set[str]:
    hosts = {urlsplit(settings.SITE_URL).hostname or ""}
    hosts.update(h for h in settings.ALLOWED_HOSTS if h and "*" not in h and h != ".")
    return {h.lstrip(".") for h in hosts if h}


def sanitize_html(html: str, *, pictures: PictureResolver | None = None) -> str:
    """Keep only the allow-listed markup; everything else is stripped. Images the resolver
    knows become its markup, made after the sanitiser from our own data."""
    cleaned = nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )
    return _ArticleRewriter(_own_hosts(), pictures).rewrite(cleaned)


def render_markdown(text: str, *, pictures: PictureResolver | None = None) -> str:
    """Markdown to sanitised HTML, the only HTML an article page ever shows."""
    html = markdown.markdown(
        text or "",
        extensions=["extra", "sane_lists", _ArticleExtension()],
        output_format="html",
    )
    return sanitize_html(html, pictures=pictures)
