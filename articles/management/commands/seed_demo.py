"""Demo content for a fresh local run. Safe to run again: what exists is left alone."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from articles.models import Article, ArticleKind, Author, Disclaimer, Topic
from articles.selectors import disclaimer_default_version
from articles.services import (
    article_create,
    article_publish,
    author_save,
    disclaimer_save,
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


class Command(BaseCommand):
    help = "Create demo topics, authors and published articles (idempotent)."

    def handle(self, *args, **options) -> None:
        created = self._seed()
        from newsletter.demo import newsletter_demo_seed

        newsletter_demo_seed()
        self.stdout.write(self.style.SUCCESS(f"Demo content ready ({created} articles new)."))

    @transaction.atomic
    def _seed(self) -> int:
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
            if Article.objects.filter(slug=slug).exists():
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
            )
            # Publishing gives each kind its default disclaimer (none for news).
            article_publish(article=article, at=now - timedelta(hours=hours), now=now)
            created += 1
        return created
