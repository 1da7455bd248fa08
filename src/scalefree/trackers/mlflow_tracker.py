"""MLflow: params, metrics per epoch, the statistics files as artifacts; a sweep is a parent run.

Needs ``mlflow-skinny`` (``pip install -e '.[mlflow]'``; the full ``mlflow`` package works too).
The tracking URI is ``--mlflow-uri`` (default: the file store ``<log folder>/mlruns``). MLflow 3
keeps file stores in maintenance mode and opens one only with ``MLFLOW_ALLOW_FILE_STORE=true``,
which this module sets for file URIs (the UI, from the full package, needs it too:
``MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri <log folder>/mlruns``).
Runs go to the experiment ``--mlflow-experiment`` (default ``scalefree``):

* Parameters: optimizer, eta0, weight_decay, decay_convention, model, batch_norm, seed, ...
* Metrics (step = epoch): ``train/loss``, ``train/acc``, ``test/loss``, ``test/acc``, ``lr``,
  ``epoch_time_s``; at the end ``test_error``; with ``--store-stats`` also
  ``stats/iqr_log2_update_over_alpha`` and ``stats/iqr_log2_param`` (the spread, in octaves);
* Artifacts (``--store-stats``): ``stats/epoch_EEEE.npz``, the statistics files themselves
  (``scalefree plot histogram`` reads them once downloaded into a run directory's ``stats/``);
* Tags: ``scalefree.status`` (completed / diverged), ``scalefree.run_dir``; the run's status
  FINISHED (completed), FAILED (diverged) or KILLED (stopped; a resumed run sets it RUNNING
  again and continues the same MLflow run).

``scalefree sweep --tracker mlflow`` creates one parent run per sweep (tag
``scalefree.sweep_parent``; a relaunch finds and reuses it) and every grid point is a child run
(``mlflow.parentRunId``): the UI nests them and its table sorts them by any param or metric.
For a server URI, a request is retried once with a 5 s timeout (unless the MLFLOW_HTTP_REQUEST_*
variables say otherwise), so a server that is down costs a run seconds, then a warning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from scalefree.rundir.stats import iqr_log2
from scalefree.trackers.base import Histogram, RunInfo, Tracker, TrackerSettings, now_ms

PARENT_TAG = "scalefree.sweep_parent"
STATUS = {"completed": "FINISHED", "diverged": "FAILED", "failed": "FAILED"}


def tracking_uri(settings: TrackerSettings, log_folder: Path) -> str:
    """--mlflow-uri, or the file store under the log folder (absolute, as a file:// URI)."""
    if settings.mlflow_uri:
        return settings.mlflow_uri
    return (Path(log_folder).resolve() / "mlruns").as_uri()


def client_for(uri: str) -> Any:
    """An MlflowClient on ``uri``, with this module's environment defaults (module docstring)."""
    if "://" not in uri or uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    else:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def experiment_id(client: Any, name: str) -> str:
    """The experiment's id, created if new (a parallel worker may create it first)."""
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return client.create_experiment(name)
    except Exception:  # noqa: BLE001 - created by another worker in between: use that one
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


class MlflowTracker(Tracker):
    name = "mlflow"

    def __init__(self, settings: TrackerSettings, log_folder: Path) -> None:
        self.settings = settings
        self.uri = tracking_uri(settings, log_folder)
        self.client = client_for(self.uri)
        self.run_id: str | None = None
        self.last_epoch = 0

    def start(self, run: RunInfo, saved: Mapping[str, Any] | None) -> dict[str, Any]:
        from mlflow.entities import Param

        c, s = self.client, self.settings
        if saved and saved.get("run_id") and saved.get("uri") == self.uri:
            self.run_id = saved["run_id"]
            c.update_run(self.run_id, status="RUNNING")
        else:
            tags = {"scalefree.run_dir": str(run.run_dir)}
            if s.group:
                tags["scalefree.sweep_group"] = s.group
            if s.mlflow_parent:
                tags["mlflow.parentRunId"] = s.mlflow_parent
            exp = experiment_id(c, s.mlflow_experiment)
            self.run_id = c.create_run(exp, run_name=run.name, tags=tags).info.run_id
            c.log_batch(self.run_id, params=[Param(k, str(v)) for k, v in run.hparams.items()])
        self.last_epoch = run.start_epoch - 1
        return {"run_id": self.run_id, "uri": self.uri}

    def log_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        ts = now_ms()
        batch = [Metric(k, float(v), ts, epoch) for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)
        self.last_epoch = epoch

    def log_histograms(self, epoch: int, hists: Mapping[str, Histogram], path: Path) -> None:
        from mlflow.entities import Metric

        ts = now_ms()
        spread = [
            Metric(f"stats/iqr_log2_{q}", float(iqr_log2(h.counts)), ts, epoch)
            for q, h in hists.items()
            if h.counts.sum() > 0
        ]
        if spread:
            self.client.log_batch(self.run_id, metrics=spread)
        self.client.log_artifact(self.run_id, str(path), artifact_path="stats")

    def finish(self, result: Mapping[str, Any] | None) -> None:
        if self.run_id is None:
            return
        if result is None:
            self.client.set_terminated(self.run_id, "KILLED")
            return
        status = str(result.get("status"))
        if result.get("test_error") is not None:
            step = max(self.last_epoch, 1)
            self.client.log_metric(
                self.run_id, "test_error", float(result["test_error"]), step=step
            )
        self.client.set_tag(self.run_id, "scalefree.status", status)
        self.client.set_terminated(self.run_id, STATUS.get(status, "FINISHED"))


def start_sweep(
    settings: TrackerSettings, log_folder: Path, params: Mapping[str, Any]
) -> TrackerSettings:
    """The sweep's parent run (found by its group tag, else created); its id goes to every run."""
    from mlflow.entities import Param

    client = client_for(tracking_uri(settings, log_folder))
    exp = experiment_id(client, settings.mlflow_experiment)
    group = settings.group or "sweep"
    found = client.search_runs(
        [exp], filter_string=f"tags.`{PARENT_TAG}` = '{group.replace(chr(39), '')}'", max_results=1
    )
    if found:
        run_id = found[0].info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        tags = {PARENT_TAG: group.replace("'", ""), "scalefree.log_folder": str(log_folder)}
        run_id = client.create_run(exp, run_name=group, tags=tags).info.run_id
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
    return settings.replace(mlflow_parent=run_id)


def end_sweep(settings: TrackerSettings, log_folder: Path, counts: Mapping[str, int]) -> None:
    """Mark the parent run finished, with how many runs ended how."""
    if settings.mlflow_parent is None:
        return
    client = client_for(tracking_uri(settings, log_folder))
    for status, n in counts.items():
        client.set_tag(settings.mlflow_parent, f"scalefree.runs_{status}", str(n))
    client.set_terminated(settings.mlflow_parent, "FINISHED")


def build(settings: TrackerSettings, log_folder: Path) -> MlflowTracker:
    return MlflowTracker(settings, log_folder)
