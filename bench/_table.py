"""Print a benchmark table: figure, unit, tgwatch, baseline, ratio, goal (shared by the bench scripts)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    figure: str
    unit: str
    tgwatch: float | str
    baseline: float | str | None = None
    goal: str = ""

    @property
    def ratio(self) -> str:
        if isinstance(self.tgwatch, int | float) and isinstance(self.baseline, int | float) and self.baseline:
            return f"{self.tgwatch / self.baseline:.2f}×"
        return ""


def _fmt(value: float | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def render(rows: Sequence[Row], title: str = "") -> str:
    header = ("figure", "unit", "tgwatch", "baseline", "ratio", "goal")
    body = [(r.figure, r.unit, _fmt(r.tgwatch), _fmt(r.baseline), r.ratio, r.goal) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=True)]
    line = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    out += ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)), line]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(out)


def print_table(rows: Sequence[Row], title: str = "") -> None:
    print(render(rows, title), flush=True)
