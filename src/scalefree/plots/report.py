"""One page summarizing a log folder: tables and every figure its runs allow, as Markdown and HTML.

``write_report(log_folder, out_dir)`` writes into ``out_dir``::

    report.md, report.html       the page, twice (same content; HTML with inline style)
    summary.csv, best.csv, summary.md    the tables (scalefree.plots.tables.write_summary)
    figures/*.png                referenced relatively by both pages

Per experiment configuration (dataset, model, batch norm, ...): the best setting per method, the
heatmap (paper Figures 2-6), the learning curves of the best settings (Figure 3 middle), the update
histograms (Figure 3 right, Appendix C) and the full grids; across configurations, the
advantage-vs-spread correlation (Section 4.1). A figure the runs cannot support (nothing finished,
no statistics recorded, only one method swept) is replaced by a note saying why.
"""

from __future__ import annotations

import errno
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from scalefree import __version__
from scalefree.errors import UsageError
from scalefree.io import atomic_write_text, staged_into
from scalefree.locking import holder, is_locked
from scalefree.rundir import DIVERGED_ERROR, RunRecord, load_runs
from scalefree.train.config import fmt_num

from . import figures
from .tables import (
    GroupSummary,
    best_table,
    grid_table,
    markdown_table,
    summarize,
    write_summary,
)
from .verdict import judge_group

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
FIGURES_DIR = "figures"
MAX_PROBLEM_ROWS = 50  # a sweep with thousands of crashed runs should not bury the page


@dataclass
class Block:
    """One piece of the page, rendered to both Markdown and HTML."""

    kind: str  # h1 | h2 | h3 | p | note | table | image | details
    text: str = ""
    header: Sequence[str] = ()
    rows: Sequence[Sequence[str]] = ()
    src: str = ""
    anchor: str = ""
    children: list[Block] = field(default_factory=list)


def shown(text: object) -> str:
    """``text`` with control characters and undecodable bytes of a file name escaped
    (``\\n``, ``\\udcff``), so a folder named with a newline cannot break a heading."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def ensure_runs(log_folder: str | Path, damaged: list[str] | None = None) -> list[RunRecord]:
    """Every run below ``log_folder``; a missing or empty folder is a usage error naming the fix.

    Runs with an unreadable config.json are left out and described in ``damaged``."""
    folder = Path(log_folder)
    if not folder.is_dir():
        raise UsageError(
            f"log folder {folder} does not exist; pass the --log-folder the runs were trained with"
        )
    runs = load_runs(folder, damaged)
    if not runs:
        raise UsageError(
            f"no runs in {folder} (no run directory with a config.json below it); train with "
            f"`scalefree train --log-folder {folder}` or pass the folder that holds the runs"
        )
    return runs


def write_report(log_folder: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the report of every run below ``log_folder`` into ``out_dir`` (default
    ``<log_folder>/report``) and return the path of ``report.md`` (``report.html`` is beside it).
    """
    return write_report_files(log_folder, out_dir)[0]


def write_report_files(log_folder: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """:func:`write_report`, returning every file written: report.md, report.html, the tables,
    then the figures. Everything is written aside first and moved into ``out_dir`` only when all
    of it is written: a failure (a full disk) leaves the previous report as it was."""
    folder = Path(log_folder)
    damaged: list[str] = []
    runs = ensure_runs(folder, damaged)
    out = Path(out_dir) if out_dir is not None else folder / "report"
    with staged_into(out) as stage:
        written = _write_report_into(folder, runs, damaged, stage)
    return [out / p.relative_to(stage) for p in written]


def _write_report_into(
    folder: Path, runs: list[RunRecord], damaged: list[str], out: Path
) -> list[Path]:
    fig_dir = out / FIGURES_DIR
    tables = write_summary(runs, out)
    summaries = summarize(runs)

    blocks: list[Block] = [Block("h1", f"scalefree report: {shown(folder)}")]
    blocks.append(
        Block(
            "p",
            (
                f"{len(runs)} runs in {len(summaries)} experiment configuration(s); "
                f"generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC by scalefree {__version__}. "
                f"Test error is a fraction (1 − top-1 accuracy); diverged or failed runs count as "
                f"{fmt_num(DIVERGED_ERROR)}, as in the reference scripts; incomplete runs are left out. "
                f"Tables: [summary.csv](summary.csv), [best.csv](best.csv), [summary.md](summary.md)."
            ),
        )
    )
    blocks += _status_blocks(runs)
    if damaged:
        blocks.append(Block("note", "Left out (damaged files): " + shown("; ".join(damaged))))

    blocks.append(Block("h2", "Contents"))
    blocks.append(
        Block("p", " · ".join(f"[{s.key.label}](#{_anchor(s.key.label)})" for s in summaries))
    )

    blocks.append(Block("h2", "AdamW's advantage and the spread of updates (Section 4.1)"))
    blocks += _figure_blocks(
        lambda p: figures.correlation(runs, p),
        fig_dir / "correlation.png",
        out,
        "AdamW vs AdamL2 against depth",
    )
    if blocks[-1].kind == "image":
        points = figures.correlation_data(runs)
        note = figures.correlation_note(points, "AdamW")
        if note:
            blocks.append(Block("note", note))
        depths = {p.depth for p in points}
        if len(depths) < 2:
            blocks.append(
                Block(
                    "note",
                    (
                        "Only one depth has both methods, so this is a single point, not yet a "
                        "correlation: sweep more models (e.g. ResNet20/44/56/110/218 without BN)."
                    ),
                )
            )

    blocks += _diagnose_blocks(runs, fig_dir, out)
    for s in summaries:
        blocks += _group_blocks(s, fig_dir, out)

    md_path, html_path = out / REPORT_MD, out / REPORT_HTML
    atomic_write_text(md_path, render_markdown(blocks))
    atomic_write_text(html_path, render_html(blocks, title=f"scalefree report: {shown(folder)}"))
    images = [out / b.src for b in _walk(blocks) if b.kind == "image"]
    return [md_path, html_path, *tables.values(), *images]


def _walk(blocks: Sequence[Block]):
    for b in blocks:
        yield b
        yield from _walk(b.children)


def _status_blocks(runs: Sequence[RunRecord]) -> list[Block]:
    counts = {
        st: sum(r.status == st for r in runs)
        for st in ("completed", "diverged", "failed", "incomplete")
    }
    blocks = [Block("table", header=list(counts), rows=[[str(v) for v in counts.values()]])]
    problems = [r for r in runs if r.status in ("failed", "incomplete")]
    if problems:
        rows = [[r.name, r.status, _problem_text(r)] for r in problems[:MAX_PROBLEM_ROWS]]
        child = [Block("table", header=["run", "status", "message"], rows=rows)]
        if len(problems) > MAX_PROBLEM_ROWS:
            child.append(Block("note", f"... and {len(problems) - MAX_PROBLEM_ROWS} more"))
        blocks.append(
            Block("details", f"{len(problems)} failed or incomplete runs", children=child)
        )
    return blocks


def _problem_text(r: RunRecord, limit: int = 300) -> str:
    """Why a run is failed or incomplete: its message, or for an unfinished run whether a process
    is training it right now (it holds the run's lock) or none is (interrupted)."""
    text = str(r.problem or (r.result or {}).get("message") or "")
    if not text and r.status == "incomplete":
        try:
            running = is_locked(r.path)
        except OSError:
            running = False
        who = holder(r.path) if running else None
        text = ("running" + (f" ({who})" if who else "")) if running else "not running (stopped)"
    return shown(text if len(text) <= limit else text[:limit] + " ...")


def _figure_blocks(draw, path: Path, out: Path, alt: str) -> list[Block]:
    """Draw one figure; a figure the runs cannot support becomes a note instead."""
    try:
        draw(path)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # a full disk stops the report (unchanged)
            raise
        return [Block("note", f"Not drawn (OSError): {exc}.")]
    except UsageError as exc:  # NothingToPlot and the like: the runs cannot support it
        return [Block("note", f"Not drawn: {exc}.")]
    except Exception as exc:  # noqa: BLE001 - one unreadable run must not sink the whole report
        return [Block("note", f"Not drawn ({type(exc).__name__}): {exc}.")]
    return [Block("image", alt, src=path.relative_to(out).as_posix())]


def _diagnose_blocks(runs: Sequence[RunRecord], fig_dir: Path, out: Path) -> list[Block]:
    """The runs' ``scalefree diagnose`` results, where present: a table and one figure per
    ``at`` (initial weights, last checkpoint); nothing when no run was diagnosed."""
    from . import diagnose as diag

    found = diag.run_diagnoses(runs)
    if not found:
        return []

    def num(x) -> str:
        return "–" if x is None else f"{x:.2f}"

    rows = [
        [r.name, at, num(e["diagnosis"].get("spread")),
         num(e["diagnosis"].get("layer_spread")), str(e.get("batches", "?"))]
        for r, at, e in found[:MAX_PROBLEM_ROWS]
    ]  # fmt: skip
    blocks = [
        Block("h2", "How differently AdamL2 decays the coordinates (scalefree diagnose)"),
        Block(
            "p",
            "Spread: log2 interquartile range of √v̂ (mean squared gradient per coordinate over "
            "a few batches, at fixed weights) over all coordinates, which is the spread of "
            "AdamL2's effective decay λ/√v̂ at ε = 0 (AdamW's is 0). Layer spread: log2 of the "
            "largest over the smallest per-tensor median.",
        ),
        Block("table", header=["run", "at", "spread", "layer spread", "batches"], rows=rows),
    ]
    if len(found) > MAX_PROBLEM_ROWS:
        blocks.append(Block("note", f"... and {len(found) - MAX_PROBLEM_ROWS} more"))
    for at in dict.fromkeys(at for _, at, _ in found):
        entries = [e for _, a, e in found if a == at]
        blocks += _figure_blocks(
            lambda p, entries=entries: diag.depth_profile(diag.distinct(entries), p),
            fig_dir / f"diagnose_{at}.png",
            out,
            f"median sqrt(v) per layer ({at})",
        )
    return blocks


def _group_blocks(s: GroupSummary, fig_dir: Path, out: Path) -> list[Block]:
    slug = s.key.slug
    blocks = [Block("h2", s.key.label, anchor=_anchor(s.key.label))]
    counts = ", ".join(
        f"{s.count(st)} {st}"
        for st in ("completed", "diverged", "failed", "incomplete")
        if s.count(st)
    )
    blocks.append(Block("p", f"{len(s.runs)} runs ({counts}); methods: {', '.join(s.methods)}."))
    header, rows = best_table(s)
    blocks.append(Block("h3", "Best setting per method"))
    blocks.append(Block("table", header=header, rows=rows))
    note = judge_group(s).note("finished grid points")
    if note:
        blocks.append(Block("note", note))

    blocks.append(Block("h3", f"Final test error over η0 × {s.decay_axis.column}"))
    blocks += _figure_blocks(
        lambda p: figures.heatmap(s, p),
        fig_dir / f"{slug}_heatmap.png",
        out,
        f"heatmap {s.key.label}",
    )
    blocks.append(Block("h3", "Training loss and test accuracy of the best settings"))
    blocks += _figure_blocks(
        lambda p: figures.curves(s, p), fig_dir / f"{slug}_curves.png", out, f"curves {s.key.label}"
    )
    blocks.append(Block("h3", "Update magnitudes |u|/α of the best settings"))
    notes = _histogram_notes(s)
    blocks += _figure_blocks(
        lambda p: figures.histogram(s, p),
        fig_dir / f"{slug}_histogram.png",
        out,
        f"histogram {s.key.label}",
    )
    if notes and blocks[-1].kind == "image":
        blocks.append(Block("note", "Not shown: " + "; ".join(notes) + "."))

    grids: list[Block] = []
    for method, g in s.grids.items():
        h, r = grid_table(g)
        column = g.decay_axis.column
        grids.append(Block("p", f"{method} (rows η0, columns {column}; best in bold):"))
        grids.append(Block("table", header=h, rows=r))
    blocks.append(Block("details", "All settings (mean ± std over seeds)", children=grids))
    return blocks


def _histogram_notes(s: GroupSummary) -> list[str]:
    """Methods the histogram figure leaves out, and why (e.g. no statistics recorded)."""
    try:
        return figures.histogram_data(s)[1]
    except Exception:  # noqa: BLE001 - the figure call reports the same problem as a note
        return []


# ---------------------------------------------------------------------------------- rendering
def render_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            level = int(b.kind[1])
            if b.anchor:
                out.append(f'<a id="{b.anchor}"></a>\n')
            out.append("#" * level + " " + b.text + "\n")
        elif b.kind == "p":
            out.append(b.text + "\n")
        elif b.kind == "note":
            out.append(f"> {b.text}\n")
        elif b.kind == "table":
            out.append(markdown_table(b.header, b.rows))
        elif b.kind == "image":
            out.append(f"![{b.text}]({b.src})\n")
        elif b.kind == "details":
            out.append(f"<details><summary>{html.escape(b.text)}</summary>\n")
            out.append(render_markdown(b.children))
            out.append("</details>\n")
        else:
            raise ValueError(f"unknown block kind {b.kind!r}")
    return "\n".join(out)


_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)]+)\)")
_MD_BOLD = re.compile(r"\*\*(.+?)\*\*")


def _inline(text: str) -> str:
    """Escape text for HTML, then turn the two Markdown inline forms used here (links, bold)
    into tags, so both renderings come from the same strings."""
    s = html.escape(str(text), quote=False)
    s = _MD_LINK.sub(lambda m: f'<a href="{html.escape(m.group(2))}">{m.group(1)}</a>', s)
    return _MD_BOLD.sub(r"<strong>\1</strong>", s)


def _html_body(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if b.kind in ("h1", "h2", "h3"):
            anchor = f' id="{b.anchor}"' if b.anchor else ""
            out.append(f"<{b.kind}{anchor}>{_inline(b.text)}</{b.kind}>")
        elif b.kind == "p":
            out.append(f"<p>{_inline(b.text)}</p>")
        elif b.kind == "note":
            out.append(f'<p class="note">{_inline(b.text)}</p>')
        elif b.kind == "table":
            head = "".join(f"<th>{_inline(h)}</th>" for h in b.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in b.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "image":
            src = html.escape(b.src)
            out.append(
                f'<figure><a href="{src}"><img src="{src}" alt="{html.escape(b.text)}">'
                f"</a></figure>"
            )
        elif b.kind == "details":
            out.append(
                f"<details><summary>{_inline(b.text)}</summary>{_html_body(b.children)}</details>"
            )
        else:
            raise ValueError(f"unknown block kind {b.kind!r}")
    return "\n".join(out)


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
figure { margin: .8em 0; }
img { max-width: 100%; height: auto; }
.note { color: #8a5a00; background: #fff8e6; padding: .4em .8em; border-left: 3px solid #e0a800; }
details { margin: .6em 0; }
summary { cursor: pointer; color: #0645ad; }
"""


def render_html(blocks: Sequence[Block], title: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        f"{_html_body(blocks)}\n</body></html>\n"
    )


__all__ = [
    "REPORT_HTML",
    "REPORT_MD",
    "ensure_runs",
    "render_html",
    "render_markdown",
    "write_report",
    "write_report_files",
]
