"""The Live View's charts, drawn on the server as inline SVG: no script and no library, and no
inline style either (the page's Content-Security-Policy allows neither), so geometry is in
attributes and colours come from classes in static/live.css.

One renderer draws every chart: per time slot, stacked bars (`stacks`) and/or lines (`lines`,
a gap where a slot has no value), over a y axis from zero to a round number. Each bar and point
carries a <title> (the browser shows it on hover) and data attributes (for tests and scripts)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from markupsafe import Markup, escape

WIDTH, HEIGHT = 600, 160
LEFT, RIGHT, TOP, BOTTOM = 46, 10, 10, 22
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


def nice_max(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10ⁿ at or above `value` (1 for nothing)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def number(value: float) -> str:
    """12, 2.5, 1.2k, 3M: short enough for an axis."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}" if value != int(value) else str(int(value))


def exact(value: float) -> str:
    """A number as data attributes carry it: whole numbers without a fraction."""
    return str(int(value)) if value == int(value) else f"{value:.3f}"


def slot_label(start: float, step: float) -> str:
    """A slot's start as the axis shows it (UTC): 14:05, or 11-29 14:00 for a week."""
    moment = datetime.fromtimestamp(start, UTC)
    return moment.strftime("%m-%d %H:%M" if step >= 3600 else "%H:%M")


def _x(index: float, slots: int) -> float:
    return LEFT + PLOT_W * index / slots


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H * (1 - value / top)


def chart(
    name: str,
    starts: list[float],
    step: float,
    stacks: list[dict[str, float]] | None = None,
    order: tuple[str, ...] = (),
    lines: dict[str, list[float | None]] | None = None,
    unit: str = "",
    label: str = "",
    empty: str = "nothing in this window",
) -> Markup:
    """An SVG chart of `len(starts)` slots of `step` seconds. `stacks[i]` holds slot i's bar
    parts by series (drawn bottom-up in `order`); `lines[series][i]` a point of each line."""
    stacks = stacks or []
    lines = lines or {}
    slots = max(len(starts), 1)
    tallest = max(
        [sum(stack.values()) for stack in stacks]
        + [v for vs in lines.values() for v in vs if v is not None]
        + [0]
    )
    top = nice_max(tallest)
    total = sum(sum(stack.values()) for stack in stacks)
    parts = [
        f'<svg class="chart-svg" data-chart="{escape(name)}" data-total="{exact(total)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(label)}">'
    ]
    parts += _axes(starts, step, top, unit)
    width = PLOT_W / slots
    for index, stack in enumerate(stacks):
        if not stack:
            continue
        when = slot_label(starts[index], step)
        base = 0.0
        said = ", ".join(f"{series} {number(stack[series])}" for series in order if stack.get(series))
        parts.append(
            f'<g class="slot" data-start="{starts[index]:.0f}">'
            f"<title>{escape(when)} UTC: {escape(said)}</title>"
        )
        for series in order:
            count = stack.get(series) or 0
            if not count:
                continue
            y_top, y_base = _y(base + count, top), _y(base, top)
            parts.append(
                f'<rect class="bar bar-{escape(series)}" data-series="{escape(series)}" '
                f'data-count="{exact(count)}" '
                f'x="{_x(index, slots) + width * 0.1:.1f}" y="{y_top:.1f}" '
                f'width="{max(width * 0.8, 1):.1f}" height="{max(y_base - y_top, 0.5):.1f}"/>'
            )
            base += count
        parts.append("</g>")
    for series, values in lines.items():
        parts += _line(series, values, starts, step, top, unit)
    if not total and not any(v is not None for vs in lines.values() for v in vs):
        parts.append(
            f'<text class="empty-note" x="{LEFT + PLOT_W / 2:.0f}" y="{TOP + PLOT_H / 2:.0f}" '
            f'text-anchor="middle">{escape(empty)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _axes(starts: list[float], step: float, top: float, unit: str) -> list[str]:
    parts = []
    for value in (0.0, top / 2, top):
        y = _y(value, top)
        parts.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="tick" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">'
            f"{number(value)}{escape(unit)}</text>"
        )
    if starts:
        slots = len(starts)
        for index, anchor in ((0, "start"), (slots // 2, "middle"), (slots - 1, "end")):
            x = _x(index + (1 if anchor == "end" else 0.5 if anchor == "middle" else 0), slots)
            parts.append(
                f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
                f"{escape(slot_label(starts[index], step))}</text>"
            )
    return parts


def _line(series: str, values: list[float | None], starts: list[float], step: float, top: float, unit: str):
    slots = max(len(starts), 1)
    width = PLOT_W / slots
    points = [
        (index, _x(index, slots) + width / 2, _y(value, top), value)
        for index, value in enumerate(values)
        if value is not None
    ]
    parts = []
    run: list[str] = []
    previous = None
    for index, x, y, _value in [*points, (None, 0, 0, None)]:
        if index is None or (previous is not None and index != previous + 1):
            if len(run) > 1:
                parts.append(f'<polyline class="line line-{escape(series)}" points="{" ".join(run)}"/>')
            run = []
        if index is not None:
            run.append(f"{x:.1f},{y:.1f}")
        previous = index
    radius = 2.2 if len(points) <= 60 else 1.6
    for index, x, y, value in points:
        parts.append(
            f'<circle class="dot dot-{escape(series)}" data-series="{escape(series)}" '
            f'data-value="{value:.1f}" '
            f'cx="{x:.1f}" cy="{y:.1f}" r="{radius}"><title>{escape(slot_label(starts[index], step))} UTC: '
            f"{escape(series)} {number(value)}{escape(unit)}</title></circle>"
        )
    return parts
