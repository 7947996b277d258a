"""Claims: a runner marks a target as being written, so that another runner waits for it.

Before a task runs, its runner *claims* the target: the store creates a claim for it
exclusively (a hidden sibling ``.<name>.pipex-claim`` made with ``O_EXCL`` on files, a
conditional create on object stores, a row in SQLite). A runner that finds the claim taken
waits until the target exists (done by the other runner) or the claim expires (the other
runner died; then it takes the claim over and runs the task itself), saying every
:data:`SAY_EVERY` seconds what it waits for; or, asked not to wait (``held(...,
wait=False)``), it learns at once who holds the claim (:attr:`held.busy`) and comes back
later (:mod:`pipex.running.claimed`). The claim is removed once the target is committed, or
when the task fails.

A claim names its owner (host, process id and start time, a random id) and is kept alive by
a heartbeat: one daemon thread per process, started with the process's first claim, renews
the claims it holds every ``timeout / 3``. An owner on this host holds its claim while its
process runs, whatever the heartbeat's age (a task that keeps Python's GIL stops the
heartbeat, not the task), and loses it at once when that process is gone (the start time
tells a reused process id). For an owner on another host, or a process of this host that
cannot run (stopped, a zombie), the heartbeat decides: its claim expires when the heartbeat
is older than ``pipex.claims.timeout``. A claim whose owner
cannot be read (its runner was killed while making it) expires :data:`ORPHAN_AGE` seconds
after it was made.

Settings: ``pipex.claims.enabled`` and ``pipex.claims.timeout``.
Stores that cannot create exclusively grant every claim (:attr:`Store.exclusive_claims`).
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import posixpath
import time
import zlib
from collections.abc import Callable
from typing import Any, Protocol

import dask.config
from dask.utils import parse_timedelta

from pipex import settings
from pipex.stores.atomic import NAME_MAX, abandoned_staged, discard
from pipex.stores.heartbeat import heartbeat
from pipex.stores.owners import described, expired, new_owner, shown, why_expired

CLAIM_MARK = ".pipex-claim"
#: The most bytes of a claim that are read as its owner.
CLAIM_SIZE = 1024
#: The first and the longest pause between two looks at a target another runner claimed.
POLL_FIRST, POLL_LONGEST = 0.02, 1.0
#: Seconds between two messages of a runner waiting for a target another runner claimed.
SAY_EVERY = 5.0

logger = logging.getLogger(__name__)


class Claiming(Protocol):
    """The claim primitives of a store (see :class:`pipex.stores.Store`)."""

    @property
    def exclusive_claims(self) -> bool: ...

    def claim(self, path: str, owner: str) -> bool: ...

    def claim_holder(self, path: str) -> tuple[str, float] | None: ...

    def refresh_claim(self, path: str, owner: str) -> None: ...

    def release(self, path: str, owner: str) -> None: ...

    def exists(self, path: str) -> bool: ...

    def stamp(self, path: str) -> str | None: ...


def claim_path(path: str) -> str:
    """The path of ``path``'s claim: a hidden sibling, ``.<name>.pipex-claim``.

    A name too long for the filesystem keeps its start and gains a hash of the whole.
    """
    folder, _, name = path.rpartition("/")
    claim = f".{name}{CLAIM_MARK}"
    if len(claim.encode()) > NAME_MAX:
        head = name.encode()[: NAME_MAX - 32].decode(errors="ignore")
        claim = f".{head}.{zlib.crc32(name.encode()):08x}{CLAIM_MARK}"
    return f"{folder}/{claim}" if folder else claim


def is_claim(name: str) -> bool:
    """Whether the file name ``name`` is a claim (never a target)."""
    return name.endswith(CLAIM_MARK) and name.startswith(".")


def target_of(claim: str) -> str:
    """The target path a claim path stands for (as :func:`claim_path` wrote it)."""
    folder, name = posixpath.split(claim)
    return posixpath.join(folder, name[1 : -len(CLAIM_MARK)])


def take_over(store: Any, path: str, owner: str, delete: Callable[[str], None]) -> None:
    """Delete ``owner``'s expired claim on ``path`` (``delete(p)`` removes the claim file of
    ``p``) when several runners may look at once: only the runner that makes the takeover
    claim, a claim on the claim made with the store's exclusive create, looks again and
    deletes it, so no runner deletes a claim another made after taking over. A takeover
    claim whose runner died taking over is deleted once expired (the next look takes over)."""
    claim = claim_path(path)
    if not store.claim(claim, new_owner()):
        holder = store.claim_holder(claim)
        if holder is not None and expired(holder, timeout()):
            delete(claim)
        return
    try:
        again = store.claim_holder(path)
        if again is not None and again[0] == owner:
            delete(path)
    finally:
        delete(claim)


def timeout(section: Any = None) -> float:
    """Seconds after its last heartbeat that a claim expires (``pipex.claims.timeout``;
    ``section``: the ``pipex.claims`` setting, when already read)."""
    section = settings.get("claims") if section is None else section
    value = section.get("timeout") if isinstance(section, dict) else None
    return _seconds(
        value if value is not None else settings.DEFAULTS["pipex"]["claims"]["timeout"]
    )


@functools.lru_cache(maxsize=16)
def _seconds(value: Any) -> float:
    return float(parse_timedelta(value, default="seconds"))


class Slot:
    """The claim this context holds on ``path`` while its save may write into it: the
    claim's size and, on stores whose claim is a file, its descriptor, kept open from its
    creation (:func:`keep`) until the save takes it, and the file's path."""

    __slots__ = ("descriptor", "file", "made", "path", "seconds", "size", "store")

    def __init__(self, store: Any, path: str, size: int, seconds: float) -> None:
        self.store = store
        self.path = path
        self.size = size
        self.seconds = seconds
        self.descriptor: int | None = None
        self.file = ""
        self.made = 0.0

    def surely_held(self) -> bool:
        """Whether no runner can have taken the claim over yet: it was made less than half
        its timeout ago (so even another host's clock, a little off, sees it alive)."""
        return time.monotonic() - self.made < self.seconds / 2

    def close(self) -> None:
        """Close the kept descriptor, if any."""
        descriptor, self.descriptor = self.descriptor, None
        if descriptor is not None:
            os.close(descriptor)


class held:  # a class: ~0.8 us a task where a generator context manager costs ~3.5 us
    """Hold the claim on ``path`` while the block runs: ``True`` when this runner is to
    write the target, ``False`` when another runner wrote it meanwhile (this one waited).

    With ``stage``, the block's save may write the target's data into the claim itself
    (:func:`staged_in_claim`; the commit then releases it). With ``rewrite`` (the target
    exists, but is stale) its existence says nothing: the block runs once this runner holds
    the claim, unless ``rewrite`` is the target's stamp (``Store.stamp``) as resolution saw
    it and the stamp changed since (another runner rewrote it: ``False``). Without ``wait``,
    a claim another live runner holds is not waited for: the block gets ``False`` at once
    and :attr:`busy` names the holder. Without claims (the
    setting, or a store that cannot create exclusively): ``True``.
    """

    __slots__ = (
        "beat",
        "busy",
        "owner",
        "path",
        "reset",
        "rewrite",
        "slot",
        "stage",
        "store",
        "wait",
        "waited",
    )

    def __init__(
        self,
        store: Claiming,
        path: str,
        stage: bool = False,
        rewrite: bool | str = False,
        wait: bool = True,
    ) -> None:
        self.store = store
        self.path = path
        self.stage = stage
        self.rewrite = rewrite
        self.wait = wait
        self.owner: str | None = None
        #: Whether the block got ``False`` after this runner found another's claim (and so
        #: waited for it); else the target was found written with no other runner seen.
        self.waited = False
        #: Without ``wait``: the holder (owner record, last heartbeat) of the claim another
        #: runner holds, when that is why the block got ``False``.
        self.busy: tuple[str, float] | None = None

    def __enter__(self) -> bool:
        store, path = self.store, self.path
        section = _section() if store.exclusive_claims else False
        if not (section.get("enabled", True) if isinstance(section, dict) else section):
            # pipex.claims.enabled: false (or pipex.claims: false, set with dask.config.set)
            return True
        seconds = timeout(section)
        owner = new_owner()
        slot = Slot(store, path, len(owner.encode()), seconds) if self.stage else None
        self.slot = slot
        self.reset = _staging.set(slot) if slot is not None else None
        try:
            self.owner, self.waited, self.busy = _take(
                store, path, owner, seconds, self.rewrite, self.wait
            )
        finally:
            if self.owner is None and slot is not None:
                slot.close()
                if self.reset is not None:  # it is whenever there is a slot
                    _staging.reset(self.reset)
        if self.owner is None:
            return False
        self.beat = heartbeat()
        self.beat.add(store, path, self.owner, seconds / 3)
        return True

    def __exit__(self, *exc: object) -> None:
        owner = self.owner
        if owner is None:
            return
        slot = self.slot
        consumed = slot is not None and _staging.get() is None  # committed, or discarded
        if slot is not None:
            slot.close()  # the save did not take it (it failed before)
            if self.reset is not None:  # it is whenever there is a slot
                _staging.reset(self.reset)
        self.beat.remove(self.store, self.path)
        if not consumed:
            self.store.release(self.path, owner)


def _section() -> Any:
    """The ``pipex.claims`` setting, read from dask's configuration by the shortest way
    (once per task)."""
    section = dask.config.config.get("pipex")
    value = section.get("claims") if isinstance(section, dict) else None
    return value if value is not None else settings.get("claims")


_staging: contextvars.ContextVar[Slot | None] = contextvars.ContextVar(
    "pipex_claim_staging", default=None
)


def keep(store: Any, path: str, descriptor: int, file: str) -> bool:
    """Whether the save this context is about to run may write into the claim just made on
    ``path``: it then keeps ``descriptor`` (open on the claim, the local ``file``) for
    :func:`staged_in_claim` (one open and close of the claim fewer per task)."""
    slot = _staging.get()
    if slot is None or slot.path != path or slot.store != store or slot.descriptor is not None:
        return False
    slot.descriptor = descriptor
    slot.file = file
    slot.made = time.monotonic()
    return True


def staged_in_claim(store: Any, path: str, kept: bool = False) -> Slot | None:
    """The claim this context holds on ``path`` when the save under way may write into it
    (once: it becomes the staged file, and its commit is the release); its descriptor is
    then the caller's to close. With ``kept``: only a claim whose descriptor :func:`keep`
    kept (a claim file whose owner stays readable while data is written into it).

    A store whose claim is a file beside the target (``FileStore``) saves one file
    creation per task this way.
    """
    current = _staging.get()
    if (
        current is None
        or current.path != path
        or current.store != store
        or (kept and current.descriptor is None)
    ):
        return None
    _staging.set(None)
    return current


def _take(
    store: Claiming,
    path: str,
    owner: str,
    seconds: float,
    rewrite: bool | str,
    wait: bool = True,
) -> tuple[str | None, bool, tuple[str, float] | None]:
    """Claim ``path`` (waiting while another live runner holds it, if ``wait``): ``owner``,
    or ``None`` once the target exists (unless it is to be rewritten); whether another
    runner's claim on it was found on the way; and, without ``wait``, the holder of the live
    claim that stopped this runner (then the first is ``None``)."""
    pause = POLL_FIRST
    other = False
    since = said = 0.0
    while True:
        if store.claim(path, owner):
            try:
                done = written(store, path, rewrite)  # by another runner just now
            except BaseException:
                store.release(path, owner)
                raise
            if done:
                slot = _staging.get()
                if slot is not None:
                    slot.close()
                store.release(path, owner)
                return None, other, None
            return owner, other, None
        other = True
        if rewrite is not True and written(store, path, rewrite):
            return None, other, None
        holder = store.claim_holder(path)
        if holder is None:
            continue  # released meanwhile without a target (its task failed): try again
        if expired(holder, seconds):
            logger.warning(
                "pipex: taking over the claim on %s: %s", path, why_expired(holder, seconds)
            )
            store.release(path, holder[0])
            for staged in abandoned_staged(path):  # what its runner staged here, if it did
                discard(staged)
            continue
        if not wait:
            logger.debug("pipex: %s is claimed by %s: coming back to it", path, shown(holder[0]))
            return None, other, holder
        now = time.monotonic()
        if not since:
            since = said = now
            logger.debug("pipex: %s is claimed by %s: waiting for it", path, shown(holder[0]))
        elif now - said >= SAY_EVERY:
            said = now
            logger.warning(
                "pipex: still waiting for %s, claimed by another runner: %s; waiting "
                "since %.0f s (a stopped or dead runner's claim is taken over once its "
                "heartbeat is older than pipex.claims.timeout, %g s)",
                path,
                described(holder),
                now - since,
                seconds,
            )
        time.sleep(pause)
        pause = min(pause * 1.5, POLL_LONGEST, seconds / 4)


def written(store: Any, path: str, rewrite: bool | str = False) -> bool:
    """Whether the target at ``path`` counts as written by now: it exists; for a stale
    target (``rewrite``, its stamp as resolution saw it), its stamp changed since. A stale
    target of unknown stamp (``True``) never does."""
    if rewrite is True:
        return False
    if rewrite is False:
        return bool(store.exists(path))
    stamp = store.stamp(path)
    return stamp is not None and stamp != rewrite
