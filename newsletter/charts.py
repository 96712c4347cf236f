"""Figures as server-rendered SVG (pygal) and as CSV, from the same numbers.

The SVG is embedded in the admin page; pygal's tooltips need its JavaScript, which the CSP
('self' scripts only) would block anyway, so every <script> is taken out of the drawing and
the numbers are in the table beside it instead.
"""

from __future__ import annotations

from xml.etree import ElementTree

import pygal
from pygal.style import Style

from newsletter.csvcells import csv_text
from newsletter.selectors.reports import Figure

SVG_NS = "http://www.w3.org/2000/svg"
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#333",
    foreground_strong="#222",
    foreground_subtle="#888",
    colors=("#417690", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490"),
    font_family="sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    title_font_size=14,
)
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def figure_svg(figure: Figure, *, width: int = 900, height: int = 320) -> str:
    """The figure as an <svg> element without scripts, sized by its viewBox."""
    common = {
        "style": STYLE,
        "width": width,
        "height": height,
        "show_legend": len(figure.series) > 1,
        "legend_at_bottom": True,
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": False,
        "print_values": False,
        "show_minor_x_labels": False,
        "x_label_rotation": 0,
        "truncate_label": 12,
        "margin": 8,
    }
    if figure.kind == "hbar":
        chart = pygal.HorizontalBar(**common)
        for row, (value,) in figure.table():
            chart.add(row, [value])
        chart.show_legend = True
        chart.legend_at_bottom = False
        chart.truncate_legend = 40
    else:
        chart_class = {"bar": pygal.Bar, "stacked": pygal.StackedBar}.get(figure.kind, pygal.Line)
        chart = chart_class(x_labels_major_every=15, show_dots=False, **common)
        chart.x_labels = figure.rows
        for series in figure.series:
            chart.add(str(series.label), series.values)
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if child.tag in ("script", f"{{{SVG_NS}}}script"):
                parent.remove(child)
    tree.set("role", "img")
    tree.set("aria-hidden", "true")
    return ElementTree.tostring(tree, encoding="unicode")


def figure_csv(figure: Figure) -> str:
    return csv_text(
        [figure.row_header, *(s.label for s in figure.series)],
        ([row, *values] for row, values in figure.table()),
    )
