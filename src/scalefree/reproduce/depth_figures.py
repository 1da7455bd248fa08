"""The depth study's three figures (see :mod:`scalefree.reproduce.depth_study` for the numbers).

* ``gap_vs_depth.png``: AdamW - AdamL2 test error (points) against depth, one panel per family,
  one line per normalization, error bars one standard error of the difference;
* ``spread_vs_depth.png``: the update spread |u|/alpha (log2 IQR at the last snapshot) of each
  method's best cell against depth, one panel per family;
* ``gap_vs_spread.png``: the gap against ``diagnose``'s spread of AdamL2's best run (at init and
  at the end of training), every model of every family, one marker per family.

A panel with nothing to draw says so in its middle instead of showing empty axes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from scalefree.plots.layout import finish, new_figure
from scalefree.reproduce.depth_study import BestCell, Gap, correlation

FAMILY_TITLES = {"mlp": "fully connected (MLP)", "resnet": "ResNet"}
NORM_STYLE = {"none": ("#c0392b", "without normalization"), "BN": ("#2471a3", "with BatchNorm")}
METHOD_STYLE = {"AdamL2": "--", "AdamW": "-"}
FAMILY_MARKER = {"mlp": "o", "resnet": "s"}


def _families(items: Sequence[BestCell] | Sequence[Gap]) -> list[str]:
    return sorted({i.family for i in items}) or ["mlp"]


def _empty(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _family_panels(
    rows: Sequence[Any], keep: Callable[[Any], bool], what: str
) -> tuple[Figure, list]:
    """A figure of one titled panel per family; the ``(ax, rows)`` of the panels with rows that
    ``keep`` passes, the others saying they have no ``what`` yet."""
    families = _families(rows)
    fig, top = new_figure(4.2 * len(families), 3.4)
    axes = top.subplots(1, len(families), squeeze=False)[0]
    panels = []
    for ax, family in zip(axes, families):
        mine = [r for r in rows if r.family == family and keep(r)]
        ax.set_title(FAMILY_TITLES.get(family, family))
        if mine:
            panels.append((ax, mine))
        else:
            _empty(ax, what)
    return fig, panels


def _depth_axis(ax, depths: Sequence[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(set(depths)))
    ax.set_xticklabels([str(d) for d in sorted(set(depths))])
    ax.set_xlabel("depth (layers)")


def gap_vs_depth(gap_rows: Sequence[Gap], path: Path) -> Figure:
    fig, panels = _family_panels(
        gap_rows, lambda g: math.isfinite(g.gap), "pair of finished best cells"
    )
    for ax, mine in panels:
        for norm, (color, label) in NORM_STYLE.items():
            rows = sorted((g for g in mine if g.normalization == norm), key=lambda g: g.depth)
            if rows:
                ax.errorbar(
                    [g.depth for g in rows],
                    [100 * g.gap for g in rows],
                    yerr=[100 * g.gap_se if math.isfinite(g.gap_se) else 0 for g in rows],
                    color=color, marker="o", capsize=3, label=label,
                )  # fmt: skip
        ax.axhline(0, color="0.5", lw=0.8)
        _depth_axis(ax, [g.depth for g in mine])
        ax.set_ylabel("AdamW - AdamL2 test error (points)")
        ax.legend(fontsize=8)
    return finish(fig, path)


def spread_vs_depth(cells: Sequence[BestCell], path: Path) -> Figure:
    fig, panels = _family_panels(
        cells, lambda c: math.isfinite(c.update_spread_mean), "update statistics"
    )
    for ax, mine in panels:
        for norm, (color, label) in NORM_STYLE.items():
            for method, style in METHOD_STYLE.items():
                rows = [c for c in mine if c.normalization == norm and c.method == method]
                rows.sort(key=lambda c: c.depth)
                if rows:
                    ax.plot(
                        [c.depth for c in rows], [c.update_spread_mean for c in rows],
                        color=color, ls=style, marker="o", label=f"{method}, {label}",
                    )  # fmt: skip
        _depth_axis(ax, [c.depth for c in mine])
        ax.set_ylabel("|u|/alpha spread at the end (log2 IQR)")
        ax.legend(fontsize=7)
    return finish(fig, path)


def gap_vs_spread(gap_rows: Sequence[Gap], path: Path) -> Figure:
    fig, top = new_figure(8.4, 3.6)
    axes = top.subplots(1, 2, squeeze=False)[0]
    for ax, at in zip(axes, ("init", "final")):
        pts = [g for g in gap_rows if math.isfinite(getattr(g, f"diagnose_spread_{at}"))]
        pts = [g for g in pts if math.isfinite(g.gap)]
        r, n = correlation([getattr(g, f"diagnose_spread_{at}") for g in pts], [g.gap for g in pts])
        where = "at init" if at == "init" else "at the end of training"
        ax.set_title(f"diagnose spread {where}" + (f" (r = {r:.2f}, n = {n})" if n >= 3 else ""))
        if not pts:
            _empty(ax, "diagnose results")
            continue
        for g in pts:
            color = NORM_STYLE[g.normalization][0]
            x = getattr(g, f"diagnose_spread_{at}")
            ax.errorbar(
                x, 100 * g.gap, yerr=100 * g.gap_se if math.isfinite(g.gap_se) else 0,
                color=color, marker=FAMILY_MARKER.get(g.family, "^"), capsize=3,
            )  # fmt: skip
            ax.annotate(g.model, (x, 100 * g.gap), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xlabel("AdamL2 run: log2 IQR of sqrt(v_hat)")
        ax.set_ylabel("AdamW - AdamL2 (points)")
    return finish(fig, path)


def write_figures(cells: Sequence[BestCell], gap_rows: Sequence[Gap], out: Path) -> list[Path]:
    paths = [out / n for n in ("gap_vs_depth.png", "spread_vs_depth.png", "gap_vs_spread.png")]
    gap_vs_depth(gap_rows, paths[0])
    spread_vs_depth(cells, paths[1])
    gap_vs_spread(gap_rows, paths[2])
    return paths


__all__ = ["gap_vs_depth", "gap_vs_spread", "spread_vs_depth", "write_figures"]
