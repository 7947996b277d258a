"""Seeing and steering a pipeline: status, invalidate and restore, a picture of the graph,
the history of its runs.

None of these loads an output: they read the same listings resolution does, and the run
ledger.
"""

from pipex.steer.history import history
from pipex.steer.invalidate import invalidate, restore
from pipex.steer.status import Status, status
from pipex.steer.visualize import visualize

__all__ = ["Status", "history", "invalidate", "restore", "status", "visualize"]
