"""Weights & Biases: config, history per epoch, histograms; a sweep is a W&B group.

Needs ``wandb`` (``pip install -e '.[wandb]'``). Never prompts: without an API key (neither
``WANDB_API_KEY`` nor a ``wandb login`` entry in ~/.netrc) the run is written offline under
``<log folder>/wandb/offline-run-*`` (upload later with ``wandb sync``); ``WANDB_MODE`` set by the
user wins. Project ``--wandb-project`` (default ``scalefree``); the run's W&B id is kept in the
run directory's trackers.json, so a resumed run continues the same W&B run (``resume="allow"``).

* Config: optimizer, eta0, weight_decay, decay_convention, model, batch_norm, seed, ...
  (the runs table's columns; group by ``group`` = the sweep);
* History (step = epoch): ``train/loss``, ``train/acc``, ``test/loss``, ``test/acc``, ``lr``,
  ``epoch_time_s``, ``epoch``; with ``--store-stats`` the histograms
  ``stats/log2_update_over_alpha`` and ``stats/log2_param`` (log2 of |u|/alpha and |x|);
* Summary: ``status`` and ``test_error``.
"""

from __future__ import annotations

import netrc
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalefree.trackers.base import Histogram, RunInfo, Tracker, TrackerSettings


def has_api_key() -> bool:
    """Whether W&B would find credentials without asking (the environment or ~/.netrc)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc()
    except (OSError, netrc.NetrcParseError):
        return False
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    return rc.authenticators(host) is not None


def wandb_mode() -> str:
    return os.environ.get("WANDB_MODE") or ("online" if has_api_key() else "offline")


class WandbTracker(Tracker):
    name = "wandb"

    def __init__(self, settings: TrackerSettings, log_folder: Path) -> None:
        os.environ.setdefault("WANDB_SILENT", "true")
        import wandb

        self.wandb = wandb
        self.settings = settings
        self.dir = Path(settings.wandb_dir or log_folder)
        self.run: Any = None

    def start(self, run: RunInfo, saved: Mapping[str, Any] | None) -> dict[str, Any]:
        wandb, s = self.wandb, self.settings
        run_id = saved["run_id"] if saved and saved.get("run_id") else secrets.token_hex(6)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=s.wandb_project,
            name=run.name,
            id=run_id,
            resume="allow",
            group=s.group,
            config=dict(run.hparams),
            dir=str(self.dir),
            mode=wandb_mode(),
            reinit="create_new",
            settings=wandb.Settings(
                silent=True,
                console="off",
                disable_git=True,
                save_code=False,
                x_disable_stats=True,
                disable_job_creation=True,
            ),
        )
        return {"run_id": run_id, "project": s.wandb_project}

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.run.log({**metrics, "epoch": epoch}, step=epoch)

    def log_histograms(self, epoch: int, hists: Mapping[str, Histogram], path: Path) -> None:
        data = {
            f"stats/log2_{q}": self.wandb.Histogram(np_histogram=(h.counts.tolist(), h.edges))
            for q, h in hists.items()
        }
        self.run.log(data, step=epoch)

    def finish(self, result: Mapping[str, Any] | None) -> None:
        if self.run is None:
            return
        run, self.run = self.run, None
        if result is None:
            run.finish(exit_code=1)
            return
        run.summary["status"] = str(result.get("status"))
        if result.get("test_error") is not None:
            run.summary["test_error"] = float(result["test_error"])
        run.finish(exit_code=0)


def build(settings: TrackerSettings, log_folder: Path) -> WandbTracker:
    return WandbTracker(settings, log_folder)
