"""The consent proof as PDF (ReportLab: pure Python, fonts embedded, nothing to install).

Bitstream Vera ships with ReportLab and covers German text and typographic quotes; embedding
it makes the PDF print the same everywhere and keeps its text extractable.
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer

from newsletter.services.proof_document import ProofDocument

FONT_DIR = Path(reportlab.__file__).parent / "fonts"


@cache
def _styles() -> dict[str, ParagraphStyle]:
    pdfmetrics.registerFont(TTFont("ProofSans", FONT_DIR / "Vera.ttf"))
    pdfmetrics.registerFont(TTFont("ProofSans-Bold", FONT_DIR / "VeraBd.ttf"))
    body = ParagraphStyle("body", fontName="ProofSans", fontSize=9.5, leading=13)
    return {
        "title": ParagraphStyle(
            "title", parent=body, fontName="ProofSans-Bold", fontSize=14, leading=18, spaceAfter=4
        ),
        "heading": ParagraphStyle(
            "heading",
            parent=body,
            fontName="ProofSans-Bold",
            fontSize=11,
            leading=15,
            spaceBefore=8,
            spaceAfter=3,
        ),
        "step": ParagraphStyle("step", parent=body, fontName="ProofSans-Bold", spaceBefore=5),
        "body": body,
        "detail": ParagraphStyle("detail", parent=body, leftIndent=6 * mm),
        "quote": ParagraphStyle(
            "quote", parent=body, leftIndent=6 * mm, rightIndent=6 * mm, fontSize=10, leading=14
        ),
        "small": ParagraphStyle("small", parent=body, fontSize=8, leading=11),
    }


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def proof_pdf_render(*, document: ProofDocument) -> bytes:
    """The same content as the printable page, as A4 pages."""
    styles = _styles()
    story = [_p(document.title, styles["title"])]
    story += [_p(line, styles["small"]) for line in document.publisher]
    story += [
        Spacer(1, 3 * mm),
        _p(f"{document.headings['issued']}: {document.issued}", styles["body"]),
    ]
    story += [_p(f"{label}: {value}", styles["body"]) for label, value in document.facts]
    for heading, text in document.consent_texts:
        story += [_p(heading, styles["heading"]), _p(text, styles["quote"])]
    story.append(_p(document.headings["steps"], styles["heading"]))
    for step in document.steps:
        block = [_p(f"{step.number}. {step.when} – {step.title}", styles["step"])]
        block += [_p(f"{label}: {value}", styles["detail"]) for label, value in step.details]
        block.append(_p(step.chain, styles["detail"]))
        story.append(KeepTogether(block))
    story += [
        _p(document.headings["chain"], styles["heading"]),
        _p(document.chain_summary, styles["body"]),
    ]
    story += [Spacer(1, 2 * mm), *(_p(line, styles["small"]) for line in document.statement)]
    story += [
        _p(document.headings["fingerprint"], styles["heading"]),
        _p(document.fingerprint, styles["body"]),
    ]
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=document.title,
        author=document.publisher[0],
        lang=document.language,
    ).build(story)
    return buffer.getvalue()
