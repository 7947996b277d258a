"""pipex: a Make/Luigi-style pipeline cache for Python, native to Dask."""

from pipex.compute import compute
from pipex.context import context
from pipex.core.targets import Target
from pipex.exceptions import (
    ModeError,
    PipelineError,
    PipexError,
    SerializerError,
    StoreError,
    TargetCollisionError,
    TargetError,
)
from pipex.expand import Expansion, expand
from pipex.flow import flow
from pipex.mapped import Mapped, Targets
from pipex.node import Node
from pipex.pages import report
from pipex.steer import Status, history, invalidate, restore, status, visualize
from pipex.stores import FileStore, FsspecStore, MemoryStore, SQLiteStore, Store
from pipex.task import TaskFunction, task

__version__ = "0.1.0"

__all__ = [
    "Expansion",
    "FileStore",
    "FsspecStore",
    "Mapped",
    "MemoryStore",
    "ModeError",
    "Node",
    "PipelineError",
    "PipexError",
    "SQLiteStore",
    "SerializerError",
    "Status",
    "Store",
    "StoreError",
    "Target",
    "TargetCollisionError",
    "TargetError",
    "Targets",
    "TaskFunction",
    "__version__",
    "compute",
    "context",
    "expand",
    "flow",
    "history",
    "invalidate",
    "report",
    "restore",
    "status",
    "task",
    "visualize",
]
