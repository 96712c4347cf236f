"""Demo articles for a fresh local run (`manage.py seed_demo`, which the site assembles in
config/management/commands/). Safe to run again: what exists is left alone."""

import io
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from PIL import Image as PILImage
from PIL import ImageDraw

from articles.imaging import image_prepare
from articles.models import Article, ArticleKind, Author, Disclaimer, Image, Topic
from articles.selectors import disclaimer_default_version
from articles.services import (
    article_create,
    article_publish,
    article_save,
    author_save,
    disclaimer_save,
    image_store,
    topic_save,
)

TOPICS = [
    (
        "edelmetalle",
        "Edelmetalle",
        "Gold, Silber, Platin: Preise, Nachfrage und was Anleger darüber wissen sollten.",
    ),
    (
        "geldpolitik",
        "Geldpolitik",
        "Zentralbanken, Zinsen und Inflation – und was sie für Sparer bedeuten.",
    ),
    (
        "technologie",
        "Technologie",
        "Künstliche Intelligenz, Halbleiter und die Machtverschiebungen dahinter.",
    ),
]

AUTHORS = [
    ("lena-hartmann", "Lena Hartmann", "Wirtschaftsredakteurin mit Schwerpunkt Rohstoffe."),
    ("jonas-berger", "Jonas Berger", "Schreibt über Notenbanken und Staatsfinanzen."),
    ("mira-yilmaz", "Mira Yilmaz", "Beobachtet die Technologiebranche seit zwanzig Jahren."),
]

# Analyses carry their own disclaimer; the opinion one comes with the migrations; news has none.
ANALYSIS_DISCLAIMER = (
    "Analysehinweis",
    "Hinweis: Dieser Artikel ist eine Analyse unserer Redaktion und keine Anlageberatung. "
    "Jeder Anleger muss selbst ausreichend recherchieren und ist für seine "
    "Anlageentscheidungen selbst verantwortlich.",
    "Note: This article is an analysis by our editorial team, not investment advice. Every "
    "investor must do sufficient research of their own and is solely responsible for their "
    "investment decisions.",
)

# (slug, title, kind, topics, authors, hours ago, lead, body)
ARTICLES = [
    (
        "gold-als-versicherung",
        "Gold als Versicherung: Warum der Preis nicht alles erzählt",
        ArticleKind.OPINION,
        ["edelmetalle", "geldpolitik"],
        ["lena-hartmann"],
        3,
        "Wer Gold nur nach dem Kurs des Tages beurteilt, übersieht seine eigentliche Aufgabe im "
        "Vermögen.",
        """Der Goldpreis hat in den vergangenen Monaten neue Höchststände erreicht, und prompt
melden sich die Mahner: zu teuer, zu spekulativ, zu spät. Doch diese Sicht greift zu kurz.

## Eine Versicherung, keine Rendite-Maschine

Niemand kauft eine Hausratversicherung, weil er auf einen Einbruch hofft. Ähnlich verhält es sich
mit physischem Gold: Es soll nicht glänzen, wenn alles gut läuft, sondern dann tragen, wenn
Währungen, Banken oder Staatsanleihen wanken.

> Gold ist das einzige Finanzgut, das nicht zugleich die Verbindlichkeit eines anderen ist.

## Was die Zentralbanken verraten

Bemerkenswert ist, wer derzeit kauft: Notenbanken aus Schwellenländern stocken ihre Reserven so
kräftig auf wie seit Jahrzehnten nicht. Sie tun das nicht aus Spekulationslust, sondern um sich
von einzelnen Reservewährungen unabhängiger zu machen.

## Unser Fazit

Ein Anteil von fünf bis fünfzehn Prozent in physischem Edelmetall ist aus unserer Sicht kein
Wagnis, sondern Vorsorge. Entscheidend ist nicht der perfekte Einstiegszeitpunkt, sondern die
Disziplin, regelmäßig und ohne Hektik zu kaufen.""",
    ),
    (
        "silber-industriemetall",
        "Silber zwischen Schmuckschatulle und Solarmodul",
        ArticleKind.ANALYSIS,
        ["edelmetalle", "technologie"],
        ["lena-hartmann", "mira-yilmaz"],
        20,
        "Mehr als die Hälfte der Silbernachfrage kommt inzwischen aus der Industrie. Das verändert "
        "den Charakter des Metalls.",
        """Silber galt lange als der kleine Bruder des Goldes. Diese Rolle passt immer weniger.

## Die Nachfrage verschiebt sich

Photovoltaik, Elektronik und Elektromobilität verbrauchen jedes Jahr größere Mengen. Weil
Silber in vielen Anwendungen nur in winzigen Mengen steckt, lohnt sich das Recycling kaum – ein
großer Teil ist nach Gebrauch schlicht verloren.

## Angebot mit Verzögerung

Der überwiegende Teil des Silbers wird als Nebenprodukt beim Abbau von Blei, Zink und Kupfer
gewonnen. Steigt der Silberpreis, wird deshalb nicht automatisch mehr gefördert.

| Nachfragequelle | Tendenz |
|---|---|
| Industrie | steigend |
| Schmuck und Besteck | stabil |
| Münzen und Barren | schwankend |

## Einordnung

Für Anleger bedeutet das: Silber schwankt stärker als Gold, weil es an der Konjunktur hängt.
Wer es beimischt, sollte Geduld mitbringen.""",
    ),
    (
        "zinswende-mit-ansage",
        "Zinswende mit Ansage: Was die Notenbank Sparern schuldig bleibt",
        ArticleKind.OPINION,
        ["geldpolitik"],
        ["jonas-berger"],
        30,
        "Die Zinsen sinken wieder, die Preise bleiben hoch. Für Sparer ist das eine stille "
        "Enteignung auf Raten.",
        """Die Europäische Zentralbank hat ihren Kurs erneut gelockert. Offiziell, weil die
Inflation auf dem Rückzug sei. Im Supermarkt merkt davon allerdings kaum jemand etwas.

## Die Rechnung der Sparer

Liegt der Zins auf dem Tagesgeldkonto unter der Teuerung, verliert Erspartes Jahr für Jahr an
Kaufkraft. Das geschieht leise, ohne Kontoauszug, der den Verlust ausweist.

## Politik des geringsten Widerstands

Hoch verschuldete Staaten profitieren von niedrigen Zinsen. Es wäre naiv zu glauben, dass diese
Interessen in den Entscheidungen keine Rolle spielen.

> Wer sich auf die Geldwertstabilität verlässt, sollte sie nicht blind voraussetzen.

## Was bleibt zu tun?

Streuung über Anlageklassen, Sachwerte und ein nüchterner Blick auf die Realzinsen – mehr
Patentrezepte gibt es nicht. Wohl aber die Pflicht, genau hinzusehen.""",
    ),
    (
        "digitaler-euro-fragen",
        "Der digitale Euro: Fünf Fragen, die noch niemand beantwortet",
        ArticleKind.ANALYSIS,
        ["geldpolitik", "technologie"],
        ["jonas-berger"],
        50,
        "Die Vorbereitungen laufen, doch zentrale Punkte zu Datenschutz und Bargeld sind offen.",
        """Die Zentralbank treibt das Projekt eines digitalen Euro voran. Wir haben die
wichtigsten offenen Punkte zusammengetragen.

## 1. Wer sieht meine Zahlungen?

Versprochen wird Privatsphäre „so weit wie möglich“. Wie weit das ist, steht nicht im Gesetz.

## 2. Gibt es eine Obergrenze?

Diskutiert wird ein Höchstbetrag pro Person, um Abflüsse von Bankkonten zu begrenzen.

## 3. Was wird aus dem Bargeld?

Die Zusage lautet: Bargeld bleibt. Doch Annahmepflichten im Handel werden schon heute
aufgeweicht.

## 4. Wer haftet bei Ausfällen?

Ein Zahlungsmittel, das nur mit Strom und Netz funktioniert, braucht eine Antwort für den
Notfall.

## 5. Welches Problem löst er?

Die ehrlichste Frage zuletzt: Für den Alltag der meisten Menschen ist der Nutzen bislang kaum
zu erkennen.""",
    ),
    (
        "ki-rechenzentren-strom",
        "KI braucht Strom – und zwar mehr, als die Netze hergeben",
        ArticleKind.NEWS,
        ["technologie"],
        ["mira-yilmaz"],
        70,
        "Neue Rechenzentren für künstliche Intelligenz stellen Versorger vor Probleme.",
        """Betreiber großer Rechenzentren melden einen Strombedarf an, der dem ganzer Städte
entspricht. Netzbetreiber in mehreren Ländern haben Anschlussanfragen bereits zurückgestellt.

## Engpass Netzanschluss

Nicht die Chips, sondern Transformatoren und Leitungen sind inzwischen der knappste Faktor.
Lieferzeiten für Hochspannungstechnik betragen teilweise mehrere Jahre.

## Folgen für die Industrie

Für Kupfer, Silber und andere Metalle der Elektrifizierung bedeutet das zusätzliche Nachfrage.
Ob die Förderung mithalten kann, ist offen.""",
    ),
    (
        "europas-chip-souveraenitaet",
        "Europas Chip-Souveränität: Viel Geld, wenig Plan",
        ArticleKind.OPINION,
        ["technologie"],
        ["mira-yilmaz"],
        96,
        "Milliarden an Subventionen sollen Halbleiterwerke nach Europa holen. Eine Strategie "
        "ist das noch nicht.",
        """Europa will bei Halbleitern unabhängiger werden. Das Ziel ist richtig, der Weg
dorthin wirkt beliebig.

## Fabriken allein reichen nicht

Ein Werk ohne Zulieferer, Fachkräfte und Abnehmer bleibt eine teure Insel. Gefördert wird vor
allem das, was sich gut eröffnen lässt.

## Wo Europa stark ist

Bei Maschinen für die Chipherstellung und bei Spezialchips für Autos und Industrie ist der
Kontinent Weltspitze. Dort anzusetzen wäre klüger, als den Vorsprung anderer nachzubauen.

> Souveränität entsteht dort, wo andere auf einen angewiesen sind – nicht umgekehrt.

## Unser Vorschlag

Weniger Prestigeprojekte, mehr Ausbildung, schnellere Genehmigungen und verlässliche
Energiepreise. Das ist unspektakulär – und gerade deshalb wirksam.""",
    ),
    (
        "platin-unterschaetzt",
        "Platin: Das vergessene Edelmetall meldet sich zurück",
        ArticleKind.NEWS,
        ["edelmetalle"],
        ["lena-hartmann"],
        120,
        "Das dritte Jahr in Folge übersteigt die Nachfrage das Angebot.",
        """Platin notiert seit Jahren deutlich unter Gold – obwohl es seltener ist. Nun
zeichnet sich ein anhaltendes Defizit am Markt ab.

## Gründe für die Knappheit

Die Förderung konzentriert sich auf wenige Länder, vor allem Südafrika, wo Stromausfälle und
Investitionsstau die Minen belasten. Gleichzeitig bleibt die Nachfrage aus der
Autoindustrie und der Wasserstofftechnik robust.

## Ausblick

Marktbeobachter rechnen damit, dass die Lagerbestände weiter sinken. Ob daraus dauerhaft
höhere Preise werden, hängt auch von der Konjunktur in China ab.""",
    ),
]


# Colours per first topic: (sky top, sky bottom, line), so the demo pages look distinct.
PALETTES = {
    "edelmetalle": ((64, 46, 12), (212, 170, 72), (255, 236, 170)),
    "geldpolitik": ((14, 38, 74), (96, 140, 190), (232, 242, 255)),
    "technologie": ((20, 20, 38), (88, 60, 160), (170, 255, 220)),
}


def demo_picture(*, seed: str, topic: str, width: int = 1600, height: int = 900) -> bytes:
    """A chart-like picture drawn with Pillow (no download): a gradient, a grid and a price
    line that wanders by a random walk seeded by the slug, so each article has its own."""
    top, bottom, line = PALETTES.get(topic, PALETTES["geldpolitik"])
    picture = PILImage.new("RGB", (width, height))
    draw = ImageDraw.Draw(picture)
    for y in range(height):
        mix = y / (height - 1)
        colour = tuple(round(a + (b - a) * mix) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (width, y)], fill=colour)
    for x in range(0, width, width // 12):
        draw.line([(x, 0), (x, height)], fill=(*line, 40), width=1)
    for y in range(0, height, height // 8):
        draw.line([(0, y), (width, y)], fill=(*line, 40), width=1)
    rng = random.Random(seed)
    level, points = height * 0.6, []
    for x in range(0, width + 1, width // 48):
        level = min(height * 0.9, max(height * 0.15, level + rng.uniform(-60, 55)))
        points.append((x, level))
    draw.polygon([(0, height), *points, (width, height)], fill=tuple(c // 2 for c in bottom))
    draw.line(points, fill=line, width=8, joint="curve")
    for _ in range(6):
        r = rng.randint(30, 110)
        cx, cy = rng.randint(0, width), rng.randint(0, height // 2)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=line, width=3)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


def demo_feature_image(*, slug: str, title: str, topic: Topic) -> Image:
    """Through the same checks and renditions as an editor's upload."""
    prepared = image_prepare(data=demo_picture(seed=slug, topic=topic.slug))
    return image_store(
        prepared=prepared,
        alt_text=f"Grafik: ein schwankender Kursverlauf zum Thema {topic.name}",
        caption=title,
        credit="Redaktion (Demo-Grafik)",
    )


@transaction.atomic
def articles_demo_seed() -> int:
    """Create the demo topics, authors and published articles once; returns how many articles
    are new (none on a second run)."""
    topics = {}
    for slug, name, description in TOPICS:
        topic = Topic.objects.filter(slug=slug).first()
        if topic is None:
            topic = topic_save(topic=Topic(slug=slug, name=name, description=description))
        topics[slug] = topic
    authors = {}
    for slug, name, bio in AUTHORS:
        author = Author.objects.filter(slug=slug).first()
        if author is None:
            author = author_save(author=Author(slug=slug, name=name, bio=bio))
        authors[slug] = author

    name, text_de, text_en = ANALYSIS_DISCLAIMER
    analysis_default = disclaimer_default_version(kind=ArticleKind.ANALYSIS)
    if analysis_default is None and not Disclaimer.objects.filter(name=name).exists():
        disclaimer_save(
            disclaimer=Disclaimer(name=name, default_for_kind=ArticleKind.ANALYSIS),
            text_de=text_de,
            text_en=text_en,
        )
    now = timezone.now().replace(second=0, microsecond=0)
    created = 0
    for slug, title, kind, topic_slugs, author_slugs, hours, lead, body in ARTICLES:
        existing = Article.objects.filter(slug=slug).first()
        if existing is not None:
            # Seeded before pictures existed: it gets its picture now, once.
            if existing.feature_image_id is None:
                existing.feature_image = demo_feature_image(
                    slug=slug, title=title, topic=topics[topic_slugs[0]]
                )
                article_save(article=existing)
            continue
        article = article_create(
            title=title,
            slug=slug,
            kind=kind,
            lead=lead,
            body_markdown=body,
            meta_description=lead[:300],
            topics=[topics[t] for t in topic_slugs],
            authors=[authors[a] for a in author_slugs],
            feature_image=demo_feature_image(slug=slug, title=title, topic=topics[topic_slugs[0]]),
        )
        # Publishing gives each kind its default disclaimer (none for news).
        article_publish(article=article, at=now - timedelta(hours=hours), now=now)
        created += 1
    return created
