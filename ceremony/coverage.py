"""Bundle validity coverage: the window, its slots, overlaps and gaps, and an SVG chart of them.

Pure functions over (id, inception, expiration) spans so the audit report, the tests and any
other view share one computation. The SVG is self-contained (no fonts, scripts or links).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

DAY = 86400


@dataclass(frozen=True)
class Span:
    """One bundle's validity: what the zone may publish between ``start`` and ``end``."""

    id: str
    start: int  # seconds since the epoch, UTC
    end: int
    keys: str = ""  # e.g. "KSK 20326, ZSK 38696"
    signed_by: str = ""  # e.g. "20326"


@dataclass(frozen=True)
class Segment:
    """A stretch of the window with a constant number of valid bundles."""

    start: int
    end: int
    depth: int  # 0 = gap, 1 = covered, >1 = overlap

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY


@dataclass(frozen=True)
class Coverage:
    spans: tuple[Span, ...]
    segments: tuple[Segment, ...]
    start: int
    end: int

    @property
    def gaps(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.depth == 0)

    @property
    def overlaps(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.depth > 1)

    @property
    def days(self) -> float:
        return (self.end - self.start) / DAY

    @property
    def handovers(self) -> tuple[tuple[str, str, int], ...]:
        """Consecutive bundles (by inception) and their overlap in seconds (negative: a gap)."""
        return tuple(
            (a.id, b.id, a.end - b.start) for a, b in zip(self.spans, self.spans[1:], strict=False)
        )

    @property
    def overlapping_handovers(self) -> int:
        return sum(1 for h in self.handovers if h[2] > 0)

    @property
    def min_overlap_days(self) -> float | None:
        if len(self.spans) < 2:
            return None
        return min(h[2] for h in self.handovers) / DAY


def compute(spans: Sequence[Span]) -> Coverage:
    """Sweep the bundle boundaries: every stretch of the window with its depth."""
    if not spans:
        raise ValueError("no bundles")
    ordered = tuple(sorted(spans, key=lambda s: (s.start, s.end, s.id)))
    points = sorted({p for s in ordered for p in (s.start, s.end)})
    segments: list[Segment] = []
    for a, b in itertools.pairwise(points):
        depth = sum(1 for s in ordered if s.start <= a and b <= s.end)
        if segments and segments[-1].depth == depth and segments[-1].end == a:
            segments[-1] = Segment(segments[-1].start, b, depth)
        else:
            segments.append(Segment(a, b, depth))
    return Coverage(ordered, tuple(segments), points[0], points[-1])


def _date(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _datetime(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# Palette shared with the report's CSS.
INK = "#1c2733"
MUTED = "#6b7785"
GRID = "#e3e7ec"
BAR = "#2f7d74"
BAR_ALT = "#3f9a8f"
OVERLAP = "#f2b134"
OVERLAP3 = "#c77d0a"  # three or more valid at once
GAP = "#d64545"
MARK = "#5b4bc4"


def svg(cov: Coverage, *, marker: int | None = None, marker_label: str = "ceremony") -> str:
    """An SVG chart: one bar per bundle, a depth strip (gaps red, overlaps amber), date axis."""
    width = 1080
    left, right = 150, 24
    top = 34
    row_h = 26
    n = len(cov.spans)
    strip_y = top + n * row_h + 14
    strip_h = 22
    axis_y = strip_y + strip_h + 8
    height = axis_y + 40
    span = max(cov.end - cov.start, 1)
    lo = cov.start
    hi = cov.end
    if marker is not None and not (
        cov.start - (cov.end - cov.start) // 4 <= marker <= cov.end + (cov.end - cov.start) // 10
    ):
        marker = None  # too far from the window to draw without squashing it
    if marker is not None:
        lo = min(lo, marker)
        hi = max(hi, marker)
        span = max(hi - lo, 1)
    plot_w = width - left - right

    def x(ts: int) -> float:
        return left + (ts - lo) * plot_w / span

    out: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="coverage" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="Bundle validity coverage">',
        f"<title>Bundle validity coverage {_date(cov.start)} to {_date(cov.end)}</title>",
        '<style>text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;'
        f"font-size:12px;fill:{INK}}}.m{{fill:{MUTED};font-size:11px}}"
        ".t{font-weight:600}</style>",
    ]
    # Day grid: weekly lines, a label every ~7-14 days depending on length.
    days = span / DAY
    step = 7 if days <= 120 else 14 if days <= 300 else 30
    first = lo - lo % DAY
    d = first
    while d <= hi:
        if d >= lo:
            xi = x(d)
            major = ((d - first) // DAY) % step == 0
            if major:
                out.append(
                    f'<line x1="{xi:.1f}" y1="{top - 6}" x2="{xi:.1f}" y2="{axis_y}" '
                    f'stroke="{GRID}" stroke-width="1"/>'
                )
                out.append(
                    f'<text class="m" x="{xi:.1f}" y="{axis_y + 16}" text-anchor="middle">'
                    f"{escape(_date(d)[5:])}</text>"
                )
        d += DAY
    out.append(
        f'<text class="m" x="{left}" y="{axis_y + 32}">{escape(_date(lo)[:4])} (UTC), '
        f"{days:.0f} days</text>"
    )
    # Bundle bars.
    for i, s in enumerate(cov.spans):
        y = top + i * row_h
        x0, x1 = x(s.start), x(s.end)
        colour = BAR if i % 2 == 0 else BAR_ALT
        tip = f"{s.id}: {_datetime(s.start)} to {_datetime(s.end)}"
        if s.keys:
            tip += f" ({s.keys})"
        out.append(
            f'<text class="t" x="{left - 10}" y="{y + 16}" text-anchor="end">{escape(s.id)}</text>'
        )
        out.append(
            f'<rect class="bundle" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{row_h - 8}" rx="5" fill="{colour}"><title>{escape(tip)}</title></rect>'
        )
        label = f"{(s.end - s.start) / DAY:.0f} d"
        if x1 - x0 > 60:
            out.append(
                f'<text x="{(x0 + x1) / 2:.1f}" y="{y + 16}" text-anchor="middle" '
                f'style="fill:#fff;font-size:11px">{escape(label)}</text>'
            )
    # Overlap shading behind the bars' column, and the depth strip.
    for seg in cov.segments:
        x0, x1 = x(seg.start), x(seg.end)
        if seg.depth > 1:
            out.append(
                f'<rect x="{x0:.1f}" y="{top}" width="{x1 - x0:.1f}" height="{n * row_h}" '
                f'fill="{OVERLAP}" opacity="0.13"/>'
            )
        colour = (
            GAP
            if seg.depth == 0
            else OVERLAP3
            if seg.depth > 2
            else OVERLAP
            if seg.depth > 1
            else BAR
        )
        kind = "gap" if seg.depth == 0 else "overlap" if seg.depth > 1 else "covered"
        tip = (
            f"{kind} ({seg.depth} valid): {_datetime(seg.start)} to {_datetime(seg.end)} "
            f"({seg.days:.1f} days)"
        )
        out.append(
            f'<rect class="seg {kind}" x="{x0:.1f}" y="{strip_y}" width="{max(x1 - x0, 1):.1f}" '
            f'height="{strip_h}" fill="{colour}"><title>{escape(tip)}</title></rect>'
        )
    out.append(
        f'<text class="t" x="{left - 10}" y="{strip_y + 15}" text-anchor="end">coverage</text>'
    )
    if marker is not None:
        xm = x(marker)
        out.append(
            f'<line x1="{xm:.1f}" y1="{top - 14}" x2="{xm:.1f}" y2="{strip_y + strip_h}" '
            f'stroke="{MARK}" stroke-width="2" stroke-dasharray="4 3"/>'
        )
        out.append(
            f'<text x="{xm + 4:.1f}" y="{top - 16}" style="fill:{MARK};font-size:11px">'
            f"{escape(marker_label)}</text>"
        )
    out.append("</svg>")
    return "\n".join(out)
