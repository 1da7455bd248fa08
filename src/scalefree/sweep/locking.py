"""Moved to :mod:`scalefree.locking` (plain ``scalefree train`` locks its run too); re-exported."""

from scalefree.locking import LOCK_FILE, RunLock, holder, is_locked, lock_path

__all__ = ["LOCK_FILE", "RunLock", "holder", "is_locked", "lock_path"]
