"""The sanitiser against hostile input: nothing executable survives Markdown rendering."""

import re

import pytest

from articles.markdown import render_markdown

HOSTILE = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/xss.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<img src="x" onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    '<IMG SRC="javascript:alert(1);">',
    "<IMG SRC=JaVaScRiPt:alert(1)>",
    '<IMG SRC="jav&#x09;ascript:alert(1);">',
    '<IMG SRC="jav&#x0A;ascript:alert(1);">',
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)>",
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    "[klick](javascript:alert(1))",
    "[klick](JAVASCRIPT:alert(1))",
    "[klick](  javascript:alert(1))",
    "[klick](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[klick](vbscript:msgbox(1))",
    "![bild](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="&#x6A;avascript:alert(1)">x</a>',
    '<a href="jav\tascript:alert(1)">x</a>',
    '<a href="http://ok.example" onclick="alert(1)">x</a>',
    '<a href="http://ok.example" onmouseover=alert(1)>x</a>',
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<math><mi xlink:href=javascript:alert(1)>x</mi></math>",
    '<iframe src="https://evil.example"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<object data="evil.swf"></object>',
    '<embed src="evil.swf">',
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<p style="background:url(javascript:alert(1))">x</p>',
    '<div style="width: expression(alert(1));">x</div>',
    '<body onload="alert(1)">',
    '<input autofocus onfocus="alert(1)">',
    '<form action="javascript:alert(1)"><button>x</button></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<details open ontoggle="alert(1)">',
    '<video><source onerror="alert(1)"></video>',
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    "<!--<script>alert(1)</script>-->",
    "<<script>alert(1)//<</script>",
    '"><script>alert(1)</script>',
    "<a href='x' title='\"><script>alert(1)</script>'>x</a>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "<template><script>alert(1)</script></template>",
    '<a href="//evil.example/%0Aalert(1)">x</a>',
]

EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.IGNORECASE)
FORBIDDEN_TAG = re.compile(
    r"<\s*/?\s*(script|iframe|style|object|embed|svg|math|form|input|meta|link|base|body|"
    r"video|source|template|noscript|details)\b",
    re.IGNORECASE,
)
BAD_URL = re.compile(
    r"(href|src|action|background)\s*=\s*[\"']?\s*(javascript|data|vbscript):", re.I
)


def test_corpus_is_large_enough():
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_input_loses_everything_executable(source):
    html = render_markdown(source)
    assert not FORBIDDEN_TAG.search(html), html
    assert not EVENT_HANDLER.search(html), html
    assert not BAD_URL.search(html), html
    assert "style=" not in html.lower(), html


@pytest.mark.parametrize("source", HOSTILE)
def test_rendering_is_stable(source):
    """Sanitising the sanitised output changes nothing: no second-pass surprises."""
    from articles.markdown import sanitize_html

    once = render_markdown(source)
    assert sanitize_html(once) == once


def test_ordinary_markdown_keeps_its_structure():
    html = render_markdown(
        "# Titel\n\n## Abschnitt\n\nText mit **fett** und *kursiv*.\n\n> Zitat\n\n"
        "- eins\n- zwei\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    )
    assert "<h1" not in html  # the page title is the only h1
    assert "<h2>Titel</h2>" in html
    assert "<h2>Abschnitt</h2>" in html
    assert "<strong>fett</strong>" in html and "<em>kursiv</em>" in html
    assert "<blockquote>" in html and "<li>eins</li>" in html and "<td>1</td>" in html


def test_external_links_are_marked_internal_links_are_not(settings):
    settings.SITE_URL = "https://meinung.example"
    html = render_markdown(
        "[extern](https://other.example/a?b=1&c=2) [intern](/thema/gold/) "
        "[eigen](https://meinung.example/artikel/x/) [proto](//evil.example/)"
    )
    assert (
        '<a href="https://other.example/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">'
        "extern</a>"
    ) in html
    assert '<a href="/thema/gold/">intern</a>' in html
    assert '<a href="https://meinung.example/artikel/x/">eigen</a>' in html
    assert '<a href="//evil.example/" rel="noopener noreferrer nofollow">proto</a>' in html


def test_editor_supplied_rel_is_replaced_on_external_links():
    html = render_markdown('<a href="https://other.example/" rel="opener">x</a>')
    assert 'rel="noopener noreferrer nofollow"' in html
    assert 'rel="opener"' not in html


def test_text_that_looks_like_markup_is_escaped():
    html = render_markdown("5 < 6 & 7 > 3, \"Zitat\" und 'so'")
    assert "5 &lt; 6 &amp; 7 &gt; 3" in html
