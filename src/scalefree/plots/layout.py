"""Layout rules every figure follows, so that what is drawn is what a reader sees.

* no offset axes: a tick label "1.1196" with "1e-5+" in the corner makes values that differ by
  3e-5 look far apart; every linear axis prints plain numbers (``useOffset=False``);
* every text inside the canvas: titles, the figure legend and notes are wrapped to the width
  they have (one method gives a narrow figure, and a title written for three panels overflows);
* a note strip: :func:`new_figure` with a note reserves room under the panels for a sentence that must be seen
  (results at chance, differences within noise), boxed like the report's notes.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, FigureBase
from matplotlib.text import Text
from matplotlib.ticker import ScalarFormatter

from scalefree.io import atomic_save

DPI = 150
NOTE_GID = "note"
NOTE_COLOR = "#8a5a00"
NOTE_FONTSIZE = 8.5
_PAD_PX = 4  # keep text this far from the canvas edge


def new_figure(width: float, height: float, note: str | None = None) -> tuple[Figure, FigureBase]:
    """A figure of ``width`` x ``height`` inches for the panels, and where to draw them.

    Without a note the panels go on the figure itself. With one, the figure grows by a strip at
    the bottom holding the boxed note, and the panels go on the subfigure above it (titles,
    legends, colour bars and axes are laid out there exactly as on a figure of their own)."""
    if note is None:
        fig = Figure(figsize=(width, height), layout="constrained", dpi=DPI)
        FigureCanvasAgg(fig)
        return fig, fig
    wrapped = textwrap.fill(note, width=_chars_for_width(width, NOTE_FONTSIZE))
    strip = (wrapped.count("\n") + 1) * 1.3 * NOTE_FONTSIZE / 72 + 0.25
    fig = Figure(figsize=(width, height + strip), layout="constrained", dpi=DPI)
    FigureCanvasAgg(fig)
    top, bottom = fig.subfigures(2, 1, height_ratios=[height, strip])
    bottom.text(
        0.5,
        0.5,
        wrapped,
        ha="center",
        va="center",
        fontsize=NOTE_FONTSIZE,
        color=NOTE_COLOR,
        gid=NOTE_GID,
        bbox=dict(boxstyle="round,pad=0.35", facecolor="#fff8e6", edgecolor="#e0a800"),
    )
    return fig, top


def notes(fig: Figure) -> list[str]:
    """The texts of the notes of :func:`new_figure` (newlines from wrapping removed)."""
    return [" ".join(t.get_text().split()) for t in _all_texts(fig) if t.get_gid() == NOTE_GID]


def _all_texts(fig: FigureBase) -> list[Text]:
    out = list(fig.texts)
    for sub in fig.subfigs:
        out += _all_texts(sub)
    return out


def no_offsets(fig: Figure) -> None:
    """Plain tick labels on every linear axis (colorbars included)."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            formatter = axis.get_major_formatter()
            if isinstance(formatter, ScalarFormatter):
                formatter.set_useOffset(False)


def fit_texts(fig: Figure, rounds: int = 4) -> None:
    """Wrap the figure's titles, figure legend and notes until each fits its width."""
    for _ in range(rounds):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        changed = False
        for text, width_px in _wrappable(fig):
            box = text.get_window_extent(renderer)
            if box.width > width_px:
                _rewrap(text, width_px / box.width)
                changed = True
        if not changed:
            return


def finish(fig: Figure, path: str | Path) -> Figure:
    """Apply the layout rules and write the PNG atomically."""
    no_offsets(fig)
    fit_texts(fig)
    save_png(fig, path)
    return fig


def save_png(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as PNG, atomically (a reader never sees half an image)."""
    path = Path(path)
    atomic_save(path, lambda f: fig.savefig(f, format="png", dpi=DPI))
    return path


def _wrappable(fig: Figure) -> list[tuple[Text, float]]:
    """(text, the width it may take in pixels): figure-level texts the whole canvas, an axes title
    the width of its axes."""
    full = fig.bbox.width - 2 * _PAD_PX
    out = [(t, full) for t in _all_texts(fig) if t.get_text()]
    for ax in fig.axes:
        if ax.get_subplotspec() is None:  # colour bars
            continue
        # No wider than the axes: constrained layout then never shrinks a panel for its title.
        width = max(ax.bbox.width, 60.0)
        out += [(t, width) for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
    return out


def _rewrap(text: Text, ratio: float) -> None:
    lines = text.get_text().splitlines()
    longest = max(len(line) for line in lines)
    width = max(8, int(longest * ratio * 0.95))
    text.set_text("\n".join(textwrap.fill(line, width=width) for line in lines))


def _chars_for_width(width_in: float, fontsize: float) -> int:
    """Characters of average width that fit in ``width_in`` inches (DejaVu Sans: ~0.55 em)."""
    return max(20, int((width_in * 72 - 2 * _PAD_PX) / (0.55 * fontsize)))


__all__ = ["DPI", "finish", "fit_texts", "new_figure", "no_offsets", "notes"]
