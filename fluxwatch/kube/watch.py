"""The names of watch event types, as the API server sends them (``metav1.WatchEvent``).

A module of names only, no I/O: the engine compares an event's type with them
without importing the informer that reads the stream.
"""

from __future__ import annotations

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
# Never handed to a handler: a bookmark moves the resourceVersion, an error ends the watch.
BOOKMARK = "BOOKMARK"
ERROR = "ERROR"

__all__ = ["ADDED", "BOOKMARK", "DELETED", "ERROR", "MODIFIED"]
