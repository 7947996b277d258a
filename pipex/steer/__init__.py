"""Seeing and steering a pipeline: status, invalidate and restore, a picture of the graph.

None of these loads an output: they read the same listings resolution does.
"""

from pipex.steer.invalidate import invalidate, restore
from pipex.steer.status import Status, status
from pipex.steer.visualize import visualize

__all__ = ["Status", "invalidate", "restore", "status", "visualize"]
