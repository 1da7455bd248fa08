"""Exceptions the CLI turns into a short message and an exit code, never a traceback."""


class UsageError(ValueError):
    """Bad input from the user: a flag value, a missing or malformed file, an unknown name.

    The message must name the problem and the fix, e.g.
    "--eta0 must be a positive finite number, got -1". Exit code 2.
    """


class RunStopped(Exception):
    """A run stopped before its end in a state that ``--resume`` continues (exit code ``code``).

    The message says what happened, where, and how to continue.
    """

    code = 1


class DiskFull(RunStopped):
    """A write failed for lack of space (ENOSPC, EDQUOT); every file written before is intact."""

    code = 1


class Terminated(RunStopped):
    """SIGTERM (e.g. Slurm's warning before it kills a job): the run stopped at a step boundary."""

    code = 143  # 128 + SIGTERM, what a shell reports for a process killed by SIGTERM
