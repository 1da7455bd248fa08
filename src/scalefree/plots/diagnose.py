"""The ``scalefree diagnose`` figure: per-layer median sqrt(v_hat) against depth, one line per model.

Input is what the diagnose JSON files hold (``{"diagnosis": Diagnosis.to_dict(), ...}``), so the
CLI, the report and a user's notebook draw from the same data. The y axis is log2: a line that
climbs by one grid step means twice the gradient scale, i.e. half of AdamL2's effective decay.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from scalefree.errors import UsageError
from scalefree.rundir import DamagedFile, RunRecord, read_json_object
from scalefree.rundir.layout import DIAGNOSE_AT, diagnose_file

from .layout import finish, new_figure

MAX_LINES = 12  # more lines than this are unreadable; the rest are named in the note


class NothingToDiagnose(UsageError):
    """No diagnosis holds a per-tensor median to draw."""


def entry_label(entry: Mapping[str, Any]) -> str:
    """A line's label: the entry's own ``label``, else model (+ NoBN) and where it was taken."""
    if entry.get("label"):
        return str(entry["label"])
    model = str(entry.get("model", "model")) + ("" if entry.get("batch_norm", True) else " NoBN")
    return f"{model} ({entry['at']})" if entry.get("at") else model


def depth_profile(
    entries: Sequence[Mapping[str, Any]], path: str | Path, title: str | None = None
) -> Figure:
    """Draw the median sqrt(v_hat) of each analyzed tensor against its index (input first), one
    line per entry, and save it to ``path``. Tensors whose coordinates all had zero gradient
    have no median and are skipped (the note says how many)."""
    lines, skipped = [], 0
    for e in entries:
        rows = e["diagnosis"]["per_tensor"]
        pts = [(i, r["median_sqrt_v"]) for i, r in enumerate(rows, 1) if r["median_sqrt_v"]]
        skipped += len(rows) - len(pts)
        if pts:
            lines.append((entry_label(e), e["diagnosis"], pts))
    if not lines:
        raise NothingToDiagnose(
            "no diagnosis has a tensor with a nonzero gradient: nothing to draw"
        )
    notes = []
    if len(lines) > MAX_LINES:
        notes.append(f"{len(lines) - MAX_LINES} more model(s) not drawn")
        lines = lines[:MAX_LINES]
    if skipped:
        notes.append(f"{skipped} tensor(s) with zero gradient everywhere have no median")
    fig, panel = new_figure(6.4, 3.8, note="; ".join(notes) + "." if notes else None)
    ax = panel.subplots()
    for label, d, pts in lines:
        xs, ys = zip(*pts)
        tail = f" (spread {d['spread']:.2f}"
        tail += f", layers {d['layer_spread']:.2f})" if len(pts) > 1 else ")"
        ax.plot(xs, ys, marker="o", markersize=3 if len(xs) > 30 else 5, lw=1.2, label=label + tail)
    ax.set_yscale("log", base=2)
    n_max = max(len(e["diagnosis"]["per_tensor"]) for e in entries)
    if n_max <= 12:
        ax.set_xticks(range(1, n_max + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, n_max + 0.5)
    ax.set_xlabel("parameter tensor (input → output)")
    ax.set_ylabel("median √v̂ (log2 axis)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7.5, loc="best")
    ax.set_title(title or "Per-layer gradient scale: AdamL2's decay is λ / √v̂", fontsize=10)
    return finish(fig, path)


def run_diagnoses(runs: Sequence[RunRecord]) -> list[tuple[RunRecord, str, dict[str, Any]]]:
    """(run, at, JSON) of every readable diagnose file of the runs (damaged ones are skipped)."""
    found = []
    for r in runs:
        for at in DIAGNOSE_AT:
            path = diagnose_file(r.path, at)
            if not path.is_file():
                continue
            try:
                obj = read_json_object(path)
                obj["diagnosis"]["per_tensor"]  # noqa: B018 - the one key every use needs
            except DamagedFile as exc:
                print(f"warning: {exc}; left out of the diagnose figure", file=sys.stderr)
                continue
            except (KeyError, TypeError):
                print(f"warning: {path}: no diagnosis.per_tensor; left out", file=sys.stderr)
                continue
            found.append((r, at, obj))
    return found


def distinct(entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One entry per label (the runs of a sweep share their initial weights: one line each)."""
    seen: dict[str, Mapping[str, Any]] = {}
    for e in entries:
        seen.setdefault(entry_label(e), e)
    return list(seen.values())
