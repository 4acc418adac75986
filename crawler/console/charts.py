"""Charts drawn on the server as SVG: no script, no external file, nothing fetched by the browser.

Why hand-written SVG: the console's Content-Security-Policy forbids scripts from anywhere but the
console itself, and a charting library would be a large dependency for three shapes. Each chart is
accessible without sight: ``role="img"`` with a ``<title>`` and a ``<desc>`` that says what the
figures are, every bar and point carries its value as text (a ``<title>`` tooltip and a label), and a
bar that stands for a list links to it. Every string is escaped here; the result is ``Markup``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 14, 36
_ids = itertools.count(1)


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    href: str | None = None


@dataclass(frozen=True)
class Stack:
    """One column of a share chart: ``part`` of ``whole`` (e.g. removed of reported)."""

    label: str
    part: int
    whole: int
    href: str | None = None


@dataclass(frozen=True)
class Line:
    name: str
    points: Sequence[tuple[datetime, int]]


def _open(title: str, desc: str) -> tuple[str, str]:
    n = next(_ids)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-labelledby="chart{n}-title chart{n}-desc">'
        f'<title id="chart{n}-title">{escape(title)}</title><desc id="chart{n}-desc">{escape(desc)}</desc>'
    )
    return head, "</svg>"


def _nice_max(value: float) -> int:
    """The axis top: 1, 2 or 5 times a power of ten, at least ``value`` (and at least 1)."""
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= value)


def _axis(top: int) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    out = []
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        value = round(top * fraction)
        out.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value}</text>'
        )
    return "".join(out)


def _linked(inner: str, href: str | None, label: str) -> str:
    if not href:
        return inner
    return f'<a href="{escape(href)}" aria-label="{escape(label)}">{inner}</a>'


def bar_chart(title: str, desc: str, bars: Sequence[Bar]) -> Markup:
    """Vertical bars with their value above and their label below; a bar with ``href`` links there."""
    head, tail = _open(title, desc)
    top = _nice_max(max([b.value for b in bars] + [1]))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    parts = [head, _axis(top)]
    for i, bar in enumerate(bars):
        h = plot_h * bar.value / top
        x, y = LEFT + i * slot + slot * 0.15, TOP + plot_h - h
        center = LEFT + i * slot + slot / 2
        shape = (
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
            f"<title>{escape(bar.label)}: {bar.value}</title></rect>"
            f'<text class="value" x="{center:.1f}" y="{y - 3:.1f}" text-anchor="middle">{bar.value}</text>'
        )
        parts.append(_linked(shape, bar.href, f"{bar.label}: {bar.value}"))
        parts.append(
            f'<text class="label" x="{center:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{escape(bar.label)}</text>"
        )
    parts.append(tail)
    return Markup("".join(parts))


def share_chart(title: str, desc: str, stacks: Sequence[Stack], part_name: str, rest_name: str) -> Markup:
    """100 % columns: the ``part`` share (filled) over the rest, the percentage written on each."""
    head, tail = _open(title, desc)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(stacks), 1)
    parts = [head]
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{round(fraction * 100)}%</text>'
        )
    for i, stack in enumerate(stacks):
        x, w = LEFT + i * slot + slot * 0.15, slot * 0.7
        center = LEFT + i * slot + slot / 2
        share = stack.part / stack.whole if stack.whole else 0.0
        h = plot_h * share
        percent = f"{round(share * 100)}%" if stack.whole else "–"
        tip = f"{stack.label}: {part_name} {stack.part}, {rest_name} {stack.whole - stack.part}"
        shape = (
            f'<rect class="rest" x="{x:.1f}" y="{TOP}" width="{w:.1f}" height="{plot_h - h:.1f}">'
            f"<title>{escape(tip)}</title></rect>"
            f'<rect class="part" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{w:.1f}" height="{h:.1f}">'
            f"<title>{escape(tip)}</title></rect>"
            f'<text class="value" x="{center:.1f}" y="{TOP + 12}" text-anchor="middle">{percent}</text>'
        )
        parts.append(_linked(shape, stack.href, tip))
        parts.append(
            f'<text class="label" x="{center:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
            f"{escape(stack.label)}</text>"
        )
    parts.append(tail)
    return Markup("".join(parts))


def line_chart(title: str, desc: str, lines: Sequence[Line], empty: str) -> Markup:
    """Figures over time, one polyline per series, the first and last value written at their points."""
    head, tail = _open(title, desc)
    drawn = [line for line in lines if line.points]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if not drawn:
        return Markup(f'{head}<text class="empty" x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">'
                      f"{escape(empty)}</text>{tail}")  # fmt: skip
    times = [t.timestamp() for line in drawn for t, _ in line.points]
    t0, t1 = min(times), max(times)
    span = (t1 - t0) or 1.0
    top = _nice_max(max(v for line in drawn for _, v in line.points))
    parts = [head, _axis(top)]

    def xy(at: datetime, value: int) -> tuple[float, float]:
        x = LEFT + plot_w * ((at.timestamp() - t0) / span if t1 > t0 else 0.5)
        return x, TOP + plot_h * (1 - value / top)

    for n, line in enumerate(drawn):
        coords = [xy(at, v) for at, v in line.points]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        parts.append(f'<g class="series s{n % 4}"><title>{escape(line.name)}</title>')
        parts.append(f'<polyline fill="none" points="{path}"/>')
        for (at, value), (x, y) in zip(line.points, coords, strict=True):
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3">'
                f"<title>{escape(line.name)} {at:%Y-%m-%d %H:%M} UTC: {value}</title></circle>"
            )
        (_, last_value), (lx, ly) = line.points[-1], coords[-1]
        parts.append(
            f'<text class="value" x="{min(lx, WIDTH - RIGHT - 4):.1f}" y="{ly - 6:.1f}" text-anchor="end">'
            f"{escape(line.name)} {last_value}</text></g>"
        )
    first_at = min(at for line in drawn for at, _ in line.points)
    last_at = max(at for line in drawn for at, _ in line.points)
    parts.append(
        f'<text class="label" x="{LEFT}" y="{HEIGHT - BOTTOM + 16}">{first_at:%Y-%m-%d}</text>'
        f'<text class="label" x="{WIDTH - RIGHT}" y="{HEIGHT - BOTTOM + 16}" text-anchor="end">'
        f"{last_at:%Y-%m-%d}</text>"
    )
    parts.append(tail)
    return Markup("".join(parts))
