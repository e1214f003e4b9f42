"""Small inline SVG charts for the report: a page that opens without a network or a plotting library.

Each function returns an `<svg>` element as text; colours and fonts come from the page's CSS classes.
"""
from __future__ import annotations

from html import escape

PALETTE = ("#2b6cb0", "#c05621", "#2f855a", "#6b46c1", "#b7791f", "#c53030")


def bars(labels: list[str], values: list[float], *, top: float | None = None, width: int = 520,
         fmt: str = "{:.2f}", title: str = "") -> str:
    """Horizontal bars, one per label, scaled to `top` (default: the largest value)."""
    top = top or max(values, default=0) or 1.0
    row, left, right = 22, 170, 60
    height = row * len(labels) + 10
    span = width - left - right
    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 5 + i * row
        length = max(0.0, min(1.0, value / top)) * span
        parts.append(f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="axis">{escape(label[:26])}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 6}" '
                     f'fill="{PALETTE[0]}"/><text x="{left + length + 4:.1f}" y="{y + 15}" class="value">'
                     f'{escape(fmt.format(value))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines(series: dict[str, list[tuple[float, float]]], *, width: int = 520, height: int = 240,
          y_label: str = "", x_label: str = "k", title: str = "") -> str:
    """One line per named series of (x, y) points; y from 0 to 1, x over the points' range."""
    left, bottom, top_pad, right = 44, 34, 12, 120
    xs = [x for points in series.values() for x, _ in points] or [1]
    x0, x1 = min(xs), max(xs)
    plot_w, plot_h = width - left - right, height - bottom - top_pad

    def at(x: float, y: float) -> tuple[float, float]:
        fx = (x - x0) / (x1 - x0) if x1 > x0 else 0.5
        return left + fx * plot_w, top_pad + (1 - y) * plot_h

    parts = [f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        _, y = at(x0, tick)
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="axis">{tick:g}</text>')
    for x in sorted(set(xs)):
        px, _ = at(x, 0)
        parts.append(f'<text x="{px:.1f}" y="{height - bottom + 16}" text-anchor="middle" class="axis">{x:g}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" text-anchor="middle" class="axis">'
                 f'{escape(x_label)}</text><text x="10" y="{top_pad + plot_h / 2:.1f}" class="axis" '
                 f'transform="rotate(-90 10 {top_pad + plot_h / 2:.1f})" text-anchor="middle">{escape(y_label)}</text>')
    for i, (name, points) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in (at(x, y) for x, y in points))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py in (at(x, y) for x, y in points):
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<rect x="{width - right + 10}" y="{top_pad + i * 18}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{width - right + 24}" y="{top_pad + 9 + i * 18}" class="axis">{escape(name[:16])}</text>')
    parts.append("</svg>")
    return "".join(parts)
