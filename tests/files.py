"""What a test finds on disk: the files a run wrote, without pipex's own bookkeeping."""

from __future__ import annotations

import os

#: The folder of the run ledger under a store's root (pipex.running.ledger.location).
LEDGER = ".pipex"


def files_under(folder: str | os.PathLike[str]) -> list[str]:
    """Every file below ``folder`` but the run ledger, as sorted paths relative to it."""
    found = []
    for parent, dirs, names in os.walk(folder):
        if LEDGER in dirs:
            dirs.remove(LEDGER)
        found.extend(os.path.relpath(os.path.join(parent, name), folder) for name in names)
    return sorted(found)
