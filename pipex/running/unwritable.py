"""Why a run ledger cannot be written, told once as a warning (the run goes on)."""

from __future__ import annotations

import os

#: Seconds a write waits for a lock another process holds on the ledger, then gives up.
LOCK_SECONDS = 5.0


def unwritable(file: str, exc: BaseException) -> str:
    """Why the ledger ``file`` cannot be written, and what to do."""
    text = f"{type(exc).__name__}: {exc}"
    if "locked" in str(exc):
        return (
            f"the run ledger {file} is locked by another process ({text}, after "
            f"{LOCK_SECONDS:g} s): this run goes on without recording to it. Close the "
            "program that holds it (an sqlite3 shell, a database browser, a stuck process); "
            "a pipex run writing it holds it for a moment only."
        )
    if "readonly" in str(exc) or isinstance(exc, PermissionError) or not _writable(file):
        return (
            f"the run ledger {file} is read-only ({text}): this run goes on without recording "
            "to it. Make the file and its folder writable to record runs, or set "
            "pipex.ledger: false."
        )
    return (
        f"cannot write the run ledger {file} ({text}); the run goes on without it. Set "
        "pipex.ledger: false to stop trying."
    )


def _writable(file: str) -> bool:
    folder = os.path.dirname(file)
    if os.path.exists(file):
        return os.access(file, os.W_OK) and os.access(folder, os.W_OK)
    return not os.path.exists(folder) or os.access(folder, os.W_OK)
