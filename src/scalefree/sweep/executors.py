"""Where the runs of a sweep execute: ``local`` processes, ``ray`` tasks, ``slurm`` job arrays.

Every executor ships :func:`scalefree.sweep.tasks.run_task` with one :class:`RunTask` per run
and reports each :class:`TaskResult` through ``on_result`` as soon as that run finishes, in
completion order. A run's own crash comes back as a ``failed`` result (run_task records it); a
lost worker or job comes back as ``interrupted`` and is never resubmitted by the executor (the
next launch resumes it from its checkpoint).

* :class:`LocalExecutor` - one spawned ``multiprocessing.Process`` per run, at most ``workers`` at
  once (CUDA state, global torch flags and memory never leak from one run into the next, and each
  process is pinned to its GPU through ``CUDA_VISIBLE_DEVICES`` before CUDA starts). A process per
  run, rather than a ``ProcessPoolExecutor``, because a pool breaks as a whole when one worker
  dies and takes the other running runs with it; here a dead process costs only its own run.
  Nothing is left running: Ctrl-C or SIGTERM to the launcher sends SIGTERM to every worker (its
  trainer stops at the next step; the run keeps its last checkpoint and resumes at the next
  launch) and kills those still alive after ``STOP_GRACE_S``; a worker whose launcher dies
  without cleanup (SIGKILL) gets SIGTERM from the kernel (Linux ``PR_SET_PDEATHSIG``) and, on any
  system, notices within a second that its parent changed. GPUs are assigned round-robin from the
  launcher's visible GPUs, ``runs_per_gpu`` runs per GPU at once; on the CPU each run gets
  ``cores // workers`` torch threads.
* :class:`RayExecutor` - one Ray task per run with ``num_gpus = 1 / runs_per_gpu`` (Ray packs
  fractional GPUs and sets CUDA_VISIBLE_DEVICES itself) and ``max_calls=1`` (a fresh worker per
  run, for the same reason as above). Joins ``address`` or starts a local instance.
* :class:`SlurmExecutor` - submitit's ``AutoExecutor.map_array``: one Slurm job array, each
  element running ``runs_per_gpu * gpus_per_node`` runs (one run when 1). The job callable is
  checkpointable, so a job that hits its time limit or is preempted is requeued by submitit and
  the trainer resumes the run from its last epoch.

Ray and submitit are optional dependencies (extras ``ray`` and ``slurm``), imported only when
their executor runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import re
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from scalefree.errors import Terminated, UsageError
from scalefree.sweep.tasks import RunTask, TaskResult, interrupted, run_task

OnResult = Callable[[TaskResult], None]
# Seconds a stopping worker gets to leave by itself (a training step, or an evaluation and its
# checkpoint) before it is killed; Slurm's default grace between SIGTERM and SIGKILL is 30 s.
STOP_GRACE_S = 20.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class Executor(Protocol):
    """Runs tasks, calling ``on_result`` once per task as each finishes; returns all results."""

    name: str

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> list[TaskResult]: ...


def require_positive(flag: str, value: int | None) -> None:
    """A count option of an executor (``--workers``, ``--runs-per-gpu``, ...): unset or >= 1."""
    if value is not None and value < 1:
        raise UsageError(f"{flag} must be a positive integer, got {value}")


def available_cores() -> int:
    """CPU cores this process may use (the affinity mask, e.g. a Slurm allocation)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def wants_gpu(task: RunTask) -> bool:
    """The run trains on a GPU when one exists (device auto or cuda, or --use-cuda)."""
    return task.config.device != "cpu"


def visible_gpus() -> list[str]:
    """GPU ids this launcher may hand out: CUDA_VISIBLE_DEVICES if set, else every device."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - no usable CUDA means no GPUs to hand out
        return []


# ----------------------------------------------------------------------------------------- local


class LocalExecutor:
    """Worker processes on this machine (see the module docstring).

    Args:
        workers: runs at once; default ``len(gpus) * runs_per_gpu`` on GPUs, 1 on the CPU.
        runs_per_gpu: runs sharing one GPU at once.
        gpus: GPU ids to use; default :func:`visible_gpus`.
        cores: CPU cores to share among the workers; default :func:`available_cores`.
    """

    name = "local"

    def __init__(
        self,
        workers: int | None = None,
        runs_per_gpu: int = 1,
        gpus: Sequence[str] | None = None,
        cores: int | None = None,
    ) -> None:
        self.check_options(workers, runs_per_gpu)
        self.workers = workers
        self.runs_per_gpu = runs_per_gpu
        self._gpus = None if gpus is None else list(gpus)
        self.cores = cores or available_cores()

    @staticmethod
    def check_options(workers: int | None, runs_per_gpu: int) -> None:
        """``--runs-per-gpu`` and ``--workers`` (the sweep CLI checks them before any executor
        is chosen, through this)."""
        require_positive("--runs-per-gpu", runs_per_gpu)
        require_positive("--workers", workers)

    def slots(self, use_gpu: bool) -> list[str | None]:
        """One entry per concurrent run: its GPU id (round-robin over GPUs) or None for the CPU."""
        gpus = (self._gpus if self._gpus is not None else visible_gpus()) if use_gpu else []
        if not gpus:
            return [None] * (self.workers or 1)
        capacity = len(gpus) * self.runs_per_gpu
        n = self.workers or capacity
        if n > capacity:
            raise UsageError(
                f"--workers {n} exceeds {len(gpus)} GPU(s) x --runs-per-gpu {self.runs_per_gpu}; "
                "raise --runs-per-gpu to put more runs on each GPU"
            )
        return [gpus[i % len(gpus)] for i in range(n)]

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> list[TaskResult]:
        if not tasks:
            return []
        slots = self.slots(use_gpu=any(wants_gpu(t) for t in tasks))
        threads = max(self.cores // len(slots), 1)
        free: deque[int] = deque(range(len(slots)))
        pending = deque(tasks)
        results: list[TaskResult] = []
        ctx = multiprocessing.get_context("spawn")
        # sentinel -> (process, receiving end of its result pipe, task, slot)
        running: dict[int, tuple[Any, Any, RunTask, int]] = {}
        try:
            with _sigterm_raises():
                self._loop(ctx, slots, threads, free, pending, running, results, on_result)
        except BaseException:
            # Ctrl-C, SIGTERM or an error here: stop the running runs now. Stopped runs keep their
            # last checkpoint, write no result.json, and resume at the next launch.
            _stop_workers([(proc, recv) for proc, recv, _, _ in running.values()])
            raise
        return results

    def _loop(self, ctx, slots, threads, free, pending, running, results, on_result) -> None:
        """Keep every slot busy until every task has a result (see run)."""
        while pending or running:
            while pending and free:  # keep every slot (a GPU share or CPU share) busy
                task, slot = pending.popleft(), free.popleft()
                recv, send = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_child,
                    args=(_pin(task, slots[slot], threads), send, os.getpid()),
                    name=f"scalefree-run-{slot}",
                )
                proc.start()
                send.close()  # the child holds the only writing end: EOF if it dies
                running[proc.sentinel] = (proc, recv, task, slot)
            for sentinel in multiprocessing.connection.wait(list(running)):
                proc, recv, task, slot = running.pop(sentinel)
                res = _receive(recv, task)
                proc.join()
                if res is None:  # this run's own process died (OOM killer, SIGKILL, segfault)
                    res = interrupted(task, f"worker process died (exit code {proc.exitcode})")
                free.append(slot)
                results.append(res)
                on_result(res)


def _stop_workers(workers: list[tuple[Any, Any]]) -> None:
    """SIGTERM every worker, wait up to STOP_GRACE_S for all, SIGKILL the rest."""
    for proc, _ in workers:
        with contextlib.suppress(Exception):
            proc.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for proc, recv in workers:
        with contextlib.suppress(Exception):
            proc.join(timeout=max(deadline - time.monotonic(), 0.1))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
            recv.close()


@contextlib.contextmanager
def _sigterm_raises():
    """In the launcher: SIGTERM raises Terminated (so the workers are stopped as on Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop is enough
        raise Terminated(
            "stopped by SIGTERM; the runs that were training keep their last checkpoint and "
            "resume when the same command is launched again"
        )

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _child(task: RunTask, send: Any, parent_pid: int | None = None) -> None:
    """Body of one run's process: run it, send the TaskResult back (if the launcher still listens).

    Ctrl-C is left to the launcher, which stops its workers with SIGTERM; a worker whose launcher
    is gone stops by itself (see :func:`_die_with_parent`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    try:
        result = run_task(task)
        with contextlib.suppress(OSError):  # BrokenPipeError: the launcher is gone
            send.send(result)
    finally:
        with contextlib.suppress(OSError):
            send.close()


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM this process when its launcher dies, however it dies.

    Linux: the kernel sends it (PR_SET_PDEATHSIG). Everywhere: a daemon thread checks once a
    second that the parent is still ``parent_pid`` (an orphan is re-parented), which also covers
    a launcher that died before the prctl call.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="scalefree-parent-watch", daemon=True).start()


def _receive(recv: Any, task: RunTask) -> TaskResult | None:
    try:
        return recv.recv() if recv.poll() else None
    except (EOFError, OSError):
        return None
    finally:
        recv.close()


def _pin(task: RunTask, gpu: str | None, threads: int) -> RunTask:
    """The task pinned to its slot's GPU (when it trains on one) with its share of CPU threads."""
    if gpu is None or not wants_gpu(task):
        return replace(task, num_threads=threads)
    return replace(task, cuda_visible_devices=gpu, num_threads=threads)


# ------------------------------------------------------------------------------------------- ray


class RayExecutor:
    """One Ray task per run (see the module docstring).

    Args:
        address: an existing cluster (``ray.init(address=...)``, e.g. ``auto`` or
            ``ray://host:10001``); default: start a local instance for this sweep.
        runs_per_gpu: runs sharing a GPU (``num_gpus = 1 / runs_per_gpu`` per task).
        cpus_per_run: Ray CPUs reserved per run, also its torch threads.
        init_kwargs: further ``ray.init`` arguments (e.g. ``num_cpus=2`` for a local instance).
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        runs_per_gpu: int = 1,
        cpus_per_run: int = 1,
        init_kwargs: dict[str, Any] | None = None,
    ) -> None:
        require_positive("--runs-per-gpu", runs_per_gpu)
        require_positive("--cpus-per-run", cpus_per_run)
        self.address = address
        self.runs_per_gpu = runs_per_gpu
        self.cpus_per_run = cpus_per_run
        self.init_kwargs = dict(init_kwargs or {})

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> list[TaskResult]:
        if not tasks:
            return []
        ray = _import_optional("ray", "ray")
        started = False
        if not ray.is_initialized():
            kwargs = dict(self.init_kwargs)
            if self.address:
                kwargs["address"] = self.address
            else:  # our own instance: no dashboard, it only slows the start
                kwargs.setdefault("include_dashboard", False)
            kwargs.setdefault("log_to_driver", True)
            ray.init(**kwargs)
            started = True
        refs: dict[Any, RunTask] = {}
        try:
            has_gpu = ray.cluster_resources().get("GPU", 0) > 0
            remote = ray.remote(max_calls=1)(run_task)
            for task in tasks:
                num_gpus = 1.0 / self.runs_per_gpu if has_gpu and wants_gpu(task) else 0
                opts = remote.options(num_cpus=self.cpus_per_run, num_gpus=num_gpus)
                refs[opts.remote(replace(task, num_threads=self.cpus_per_run))] = task
            results: list[TaskResult] = []
            pending = list(refs)
            while pending:
                ready, pending = ray.wait(pending, num_returns=1)
                for ref in ready:
                    try:
                        res = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # worker crash, node loss
                        res = interrupted(refs[ref], f"Ray task lost: {type(exc).__name__}: {exc}")
                    results.append(res)
                    on_result(res)
            return results
        except BaseException:
            # Ctrl-C or a driver error: do not leave runs going in the cluster unattended.
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        finally:
            if started:
                ray.shutdown()


# ----------------------------------------------------------------------------------------- slurm


class SlurmJob:
    """The callable of one Slurm array element: runs its chunk of tasks, returns their results.

    Having a ``checkpoint`` method makes it checkpointable for submitit: on timeout or preemption
    submitit calls it and requeues the returned submission; the trainer then resumes each run from
    its last checkpoint (finished runs of the chunk are skipped).
    """

    def __init__(self, runs_per_gpu: int = 1) -> None:
        self.runs_per_gpu = runs_per_gpu

    def __call__(self, tasks: Sequence[RunTask]) -> list[TaskResult]:
        cores = available_cores()
        if len(tasks) == 1:
            return [run_task(replace(tasks[0], num_threads=cores))]
        # Several runs share this job's GPU(s) (Slurm set CUDA_VISIBLE_DEVICES to them): the
        # local executor packs runs_per_gpu runs on each.
        gpus = visible_gpus() if any(wants_gpu(t) for t in tasks) else []
        workers = min(len(tasks), len(gpus) * self.runs_per_gpu) if gpus else len(tasks)
        local = LocalExecutor(
            workers=workers, runs_per_gpu=self.runs_per_gpu, gpus=gpus, cores=cores
        )
        return local.run(tasks, on_result=lambda r: None)

    def checkpoint(self, tasks: Sequence[RunTask]) -> Any:
        submitit = _import_optional("submitit", "slurm")
        return submitit.helpers.DelayedSubmission(self, tasks)


def parse_slurm_time(value: str) -> int:
    """Minutes from Slurm's time formats: ``MM``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM[:SS]``."""
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value.strip())
    if not m:
        raise UsageError(
            f"--slurm-time must be minutes or [D-]HH:MM[:SS], e.g. 1440 or 1-00:00:00, got {value!r}"
        )
    days, a, b, c = m.groups()
    if days is None and b is None:
        minutes = int(a)  # plain minutes
    else:
        hours, mins, secs = int(a), int(b or 0), int(c or 0)
        minutes = int(days or 0) * 1440 + hours * 60 + mins + (1 if secs else 0)
    if minutes < 1:
        raise UsageError(f"--slurm-time must be at least one minute, got {value!r}")
    return minutes


class SlurmExecutor:
    """A submitit job array (see the module docstring).

    Args:
        folder: submitit's folder (job scripts, pickles, logs).
        partition, account, qos, constraint: the usual sbatch options (None: cluster default).
        time_min: time limit of each job, minutes.
        gpus_per_node: GPUs per job; None: 1 when the runs train on a GPU, else 0.
        cpus_per_task, mem_gb: per job; None: cluster default.
        array_parallelism: array elements running at once.
        runs_per_gpu: runs packed on each GPU of a job.
        cluster: submitit cluster: ``slurm`` (default), or ``local``/``debug`` to test without one.
        poll_s: seconds between job status checks while waiting.
        wait: wait for the jobs and report each run (False: submit, print the job ids, return).
    """

    name = "slurm"

    def __init__(
        self,
        folder: str | Path,
        *,
        partition: str | None = None,
        time_min: int = 1440,
        gpus_per_node: int | None = None,
        cpus_per_task: int | None = None,
        mem_gb: float | None = None,
        array_parallelism: int = 64,
        runs_per_gpu: int = 1,
        account: str | None = None,
        qos: str | None = None,
        constraint: str | None = None,
        cluster: str = "slurm",
        poll_s: float = 30.0,
        wait: bool = True,
    ) -> None:
        for flag, v in (
            ("--slurm-time", time_min),
            ("--slurm-array-parallelism", array_parallelism),
            ("--runs-per-gpu", runs_per_gpu),
        ):
            if v < 1:
                raise UsageError(f"{flag} must be positive, got {v}")
        if gpus_per_node is not None and gpus_per_node < 0:
            raise UsageError(f"--slurm-gpus-per-node must be >= 0, got {gpus_per_node}")
        if cpus_per_task is not None and cpus_per_task < 1:
            raise UsageError(f"--slurm-cpus-per-task must be positive, got {cpus_per_task}")
        self.folder = Path(folder)
        self.partition, self.account, self.qos, self.constraint = (
            partition,
            account,
            qos,
            constraint,
        )
        self.time_min, self.gpus_per_node = time_min, gpus_per_node
        self.cpus_per_task, self.mem_gb = cpus_per_task, mem_gb
        self.array_parallelism, self.runs_per_gpu = array_parallelism, runs_per_gpu
        self.cluster, self.poll_s, self.wait = cluster, poll_s, wait
        self.job_ids: list[str] = []

    def _executor(self, use_gpu: bool):
        submitit = _import_optional("submitit", "slurm")
        if self.cluster == "slurm" and submitit.SlurmExecutor.affinity() < 0:
            raise UsageError(
                "--executor slurm: no Slurm found (sbatch is not on PATH); run on a Slurm login "
                "node or use --executor local/ray"
            )
        ex = submitit.AutoExecutor(folder=self.folder, cluster=self.cluster)
        gpus = self.gpus_per_node if self.gpus_per_node is not None else int(use_gpu)
        params: dict[str, Any] = {
            "name": "scalefree-sweep",
            "timeout_min": self.time_min,
            "gpus_per_node": gpus,
            "cpus_per_task": self.cpus_per_task,
            "mem_gb": self.mem_gb,
            "slurm_array_parallelism": self.array_parallelism,
            "slurm_partition": self.partition,
            "slurm_account": self.account,
            "slurm_qos": self.qos,
            "slurm_constraint": self.constraint,
        }
        ex.update_parameters(**{k: v for k, v in params.items() if v is not None})
        return ex, gpus

    def run(self, tasks: Sequence[RunTask], on_result: OnResult) -> list[TaskResult]:
        if not tasks:
            return []
        submitit = _import_optional("submitit", "slurm")
        ex, gpus = self._executor(use_gpu=any(wants_gpu(t) for t in tasks))
        size = self.runs_per_gpu * max(gpus, 1)
        chunks = [list(tasks[i : i + size]) for i in range(0, len(tasks), size)]
        jobs = ex.map_array(SlurmJob(self.runs_per_gpu), chunks)
        self.job_ids = [j.job_id for j in jobs]
        chunk_of = {id(j): c for j, c in zip(jobs, chunks)}
        if not self.wait:
            return []
        results: list[TaskResult] = []
        for job in submitit.helpers.as_completed(jobs, poll_frequency=self.poll_s):
            try:
                batch = job.result()
            except Exception as exc:  # noqa: BLE001 - job failed, timed out for good, cancelled
                why = f"Slurm job {job.job_id} did not finish: {type(exc).__name__}: {exc}"
                batch = [interrupted(t, why.splitlines()[0]) for t in chunk_of[id(job)]]
            for res in batch:
                results.append(res)
                on_result(res)
        return results


def missing_extra(module: str, extra: str) -> UsageError:
    """The error for an executor whose optional package is not installed, naming the extra."""
    return UsageError(
        f"the {extra} executor needs the '{module}' package, which a plain install leaves out: "
        f"pip install 'scalefree[{extra}]' (in a clone: pip install -e '.[{extra}]')"
    )


def _import_optional(module: str, extra: str):
    try:
        return __import__(module)
    except ImportError as exc:
        raise missing_extra(module, extra) from exc


__all__ = [
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "SlurmExecutor",
    "SlurmJob",
    "available_cores",
    "parse_slurm_time",
    "require_positive",
    "visible_gpus",
]
