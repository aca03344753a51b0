"""Geometry of the overview's server-drawn trend charts: lines over the runs, or one column per
run stacked by series, on a fixed ``viewBox`` the page scales to its width. The template draws
them (``_macros.html``); each chart carries its text alternative, a sentence a screen reader
reads in place of the drawing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

WIDTH = 480
HEIGHT = 200
LEFT = 64  # room for the value axis' labels
RIGHT = 12
TOP = 10
BOTTOM = 24  # room for the first and last run's labels
SERIES_COLOURS = 6  # the stylesheet's series-0 ... series-5, reused in turn

Format = Callable[[float], str]
Series = tuple[str, Sequence[float]]


@dataclass(frozen=True, slots=True)
class Line:
    """One series drawn as a line through its runs' points."""

    name: str
    colour: int
    path: str
    dots: tuple[tuple[float, float], ...]


@dataclass(frozen=True, slots=True)
class Segment:
    """One series' part of a run's column."""

    name: str
    colour: int
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    """A value on the value axis, where it is drawn."""

    y: float
    text: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A chart's parts where the template draws them, its legend and its text alternative."""

    width: int
    height: int
    left: int
    bottom: float
    lines: tuple[Line, ...]
    segments: tuple[Segment, ...]
    ticks: tuple[Tick, ...]
    first_label: str
    last_label: str
    legend: tuple[tuple[str, int], ...]
    summary: str


def thousands(value: float) -> str:
    """A count with thousands separators (``12,345``)."""
    return f"{round(value):,}"


def percent(value: float) -> str:
    """A share (0.0421) as people read it (``4.2%``)."""
    return f"{value * 100:.1f}%"


def _plot_bottom() -> float:
    return float(HEIGHT - BOTTOM)


def _scale(top: float) -> Callable[[float], float]:
    span = _plot_bottom() - TOP
    return lambda value: round(_plot_bottom() - span * (value / top), 1)


def _ticks(top: float, fmt: Format) -> tuple[Tick, ...]:
    y = _scale(top)
    return tuple(Tick(y=y(value), text=fmt(value)) for value in (0.0, top / 2, top))


def _summary(title: str, labels: Sequence[str], series: Sequence[Series], fmt: Format) -> str:
    """``title``, how many runs from when to when, and every series' first and last value."""
    parts = [f"{name} {fmt(values[0])} to {fmt(values[-1])}" for name, values in series if values]
    return (
        f"{title}, {len(labels)} runs from {labels[0]} to {labels[-1]}: " + "; ".join(parts) + "."
    )


def _chart(
    labels: Sequence[str],
    series: Sequence[Series],
    parts: tuple[tuple[Line, ...], tuple[Segment, ...], tuple[Tick, ...]],
    summary: str,
) -> Chart:
    lines, segments, ticks = parts
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        left=LEFT,
        bottom=_plot_bottom(),
        lines=lines,
        segments=segments,
        ticks=ticks,
        first_label=labels[0],
        last_label=labels[-1],
        legend=tuple((name, index % SERIES_COLOURS) for index, (name, _) in enumerate(series)),
        summary=summary,
    )


def line_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], fmt: Format
) -> Chart | None:
    """Lines through each series' values, one point per label (run), oldest on the left; None
    without a label."""
    if not labels:
        return None
    top = max((value for _, values in series for value in values), default=0.0) or 1.0
    y = _scale(top)
    span = WIDTH - LEFT - RIGHT
    step = span / (len(labels) - 1) if len(labels) > 1 else 0.0
    xs = [
        round(LEFT + step * index if step else LEFT + span / 2, 1) for index in range(len(labels))
    ]
    lines = []
    for index, (name, values) in enumerate(series):
        dots = tuple((x, y(value)) for x, value in zip(xs, values, strict=True))
        path = " ".join(f"{'M' if n == 0 else 'L'}{x},{dy}" for n, (x, dy) in enumerate(dots))
        lines.append(Line(name=name, colour=index % SERIES_COLOURS, path=path, dots=dots))
    parts = (tuple(lines), (), _ticks(top, fmt))
    return _chart(labels, series, parts, _summary(title, labels, series, fmt))


def stacked_chart(
    title: str, labels: Sequence[str], series: Sequence[Series], fmt: Format
) -> Chart | None:
    """One column per label (run), its series stacked from the bottom; None without a label."""
    if not labels:
        return None
    totals = [sum(values[index] for _, values in series) for index in range(len(labels))]
    top = max(totals, default=0.0) or 1.0
    span = _plot_bottom() - TOP
    slot = (WIDTH - LEFT - RIGHT) / len(labels)
    width = round(min(max(slot * 0.7, 1.0), 40.0), 1)
    segments = []
    for column, label in enumerate(labels):
        x = round(LEFT + column * slot + (slot - width) / 2, 1)
        base = _plot_bottom()
        for index, (name, values) in enumerate(series):
            height = round(span * (values[column] / top), 1)
            base = round(base - height, 1)
            segments.append(
                Segment(
                    name=name,
                    colour=index % SERIES_COLOURS,
                    x=x,
                    y=base,
                    width=width,
                    height=height,
                    title=f"{label}: {name} {fmt(values[column])}",
                )
            )
    parts = ((), tuple(segments), _ticks(top, fmt))
    return _chart(labels, series, parts, _summary(title, labels, series, fmt))
