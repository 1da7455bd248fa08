"""Exceptions the CLI turns into a one-line message and exit code 2 (no traceback)."""


class UsageError(ValueError):
    """Bad input from the user: a flag value, a missing or malformed file, an unknown name.

    The message must name the problem and the fix, e.g.
    "--eta0 must be a positive finite number, got -1".
    """
