"""The data layer's one exception type."""

from __future__ import annotations

from scalefree.errors import UsageError


class DatasetError(UsageError):
    """A dataset that is missing, malformed or failed to download.

    A ``UsageError`` so the CLI prints the message and exits with code 2: the fix is on the user's
    side (download the data, point ``--dataroot`` at it, or replace a damaged file), and every
    message names the exact path and that fix.
    """
