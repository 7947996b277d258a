"""Owner records of claims: who holds a claim, and whether it still holds.

An owner record is JSON naming a host, a process id and that process's start time, and an
id of its own (:func:`new_owner`). An owner on this host holds its claim while its process
runs (a process that holds the GIL stops its heartbeat, not its work); one that is stopped
(``kill -STOP``, Ctrl-Z) or a zombie holds it while its heartbeat is younger than the
timeout, as does any owner on another host (:func:`expired`).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import time
import uuid
import zlib
from typing import Any

import psutil

#: The owner of a claim whose record cannot be read (missing, partial, overwritten).
UNREADABLE = ""
#: Seconds after which a claim without a readable owner is an orphan (expired): its owner
#: writes its record right after creating it.
ORPHAN_AGE = 5.0


def new_owner() -> str:
    """A fresh owner record, JSON: this host, process and its start time, and an id."""
    prefix = _owners.get(os.getpid())
    if prefix is None:
        record = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "start": psutil.Process().create_time(),
            "id": uuid.uuid4().hex,
        }
        prefix = _owners[os.getpid()] = json.dumps(record)[:-2]  # without its closing '"}'
        short = f"{_hash(record['host'])} {record['pid']} {record['start']!r}".encode()
        _marks[os.getpid()] = (prefix, short)
    return f'{prefix}-{next(_counter)}"}}'


_owners: dict[int, str] = {}  # process id -> the start of its owner records
_marks: dict[int, tuple[str, bytes]] = {}  # process id -> that start, and its mark
_counter = itertools.count()


def readable(raw: bytes) -> str:
    """The owner record ``raw`` as text, or :data:`UNREADABLE` when it is not a whole
    record (empty, cut short, or data written over it)."""
    if raw[:1] == b"{" and raw[-1:] == b"}":
        try:
            record = json.loads(raw)
        except ValueError:  # UnicodeDecodeError included
            return UNREADABLE
        if isinstance(record, dict) and "id" in record:
            return raw.decode()
    return UNREADABLE


def mark(owner: str) -> bytes:
    """A short form of ``owner`` that tells whether it still runs: its host (a hash of its
    name), process id and start time; ``b""`` for an owner of another form. Short enough
    (about 30 bytes) that ext4 keeps it inside the file's inode as an extended attribute,
    where setting and removing it cost microseconds (a longer one takes a disk block)."""
    own = _marks.get(os.getpid())
    if own is not None and owner.startswith(own[0]):
        return own[1]
    try:
        record = json.loads(owner)
        host, pid, start = record["host"], int(record["pid"]), float(record.get("start", 0))
    except (ValueError, TypeError, KeyError):
        return b""
    return f"{_hash(host)} {pid} {start!r}".encode()


def from_mark(raw: bytes) -> str:
    """The owner record a :func:`mark` stands for (host hash, process id, start time), or
    :data:`UNREADABLE`."""
    try:
        host, pid, start = raw.decode().split(" ")
        return json.dumps({"host_hash": host, "pid": int(pid), "start": float(start)})
    except ValueError:  # UnicodeDecodeError included
        return UNREADABLE


def _hash(host: str) -> str:
    return f"{zlib.crc32(host.encode()):08x}"


def shown(owner: str) -> str:
    """``owner`` as messages show it (never a claim's raw bytes)."""
    return owner if owner != UNREADABLE else "an unreadable owner record"


def expired(holder: tuple[str, float], seconds: float, now: float | None = None) -> bool:
    """Whether the claim of ``holder`` (owner, last heartbeat) no longer holds.

    An owner that is a process of this host holds it while that process runs (whatever the
    heartbeat's age) and loses it at once when the process is gone; a process of this host
    that cannot run (stopped, a zombie: :data:`IDLE`) loses it when its heartbeat is older
    than ``seconds``, as any owner on another host does (clocks of hosts sharing a store
    must agree to well within that); an unreadable one after :data:`ORPHAN_AGE` seconds.
    """
    owner, beat = holder
    age = (time.time() if now is None else now) - beat
    if owner == UNREADABLE:
        return age > ORPHAN_AGE
    process = _local_process(owner)
    if process is not None:
        status = state(*process)
        if status == GONE:
            return True
        if status not in IDLE:
            return False
    return age > seconds


def _local_process(owner: str) -> tuple[int, Any] | None:
    """The process id and start time of ``owner`` when it is a process of this host."""
    try:
        record: Any = json.loads(owner)
    except ValueError:
        return None  # not a record pipex wrote: the heartbeat decides
    if isinstance(record, dict) and (
        record.get("host") == socket.gethostname()
        or record.get("host_hash") == _hash(socket.gethostname())
    ):
        pid = record.get("pid")
        if isinstance(pid, int):
            return pid, record.get("start")
    return None


#: What :func:`state` says of a process that is not there (or whose id was reused).
GONE = "gone"
#: The states of a process that exists but cannot run: its claims go with its heartbeat.
IDLE = frozenset({psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP, psutil.STATUS_ZOMBIE})


def state(pid: int, start: Any = None) -> str:
    """The state of process ``pid`` of this host as psutil names it (``"running"``,
    ``"sleeping"``, ``"stopped"``, ``"zombie"``...), or :data:`GONE` when there is none
    (started at ``start``, when given: else the id was reused by a new process)."""
    try:
        process = psutil.Process(pid)
        if isinstance(start, int | float) and abs(process.create_time() - start) >= 0.01:
            return GONE
        return str(process.status())
    except psutil.Error:
        return GONE


def running(pid: int, start: Any = None) -> bool:
    """Whether process ``pid`` of this host runs (started at ``start``, when given: else the
    id was reused by a new process)."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return not isinstance(start, int | float) or abs(process.create_time() - start) < 0.01
    except psutil.Error:
        return False


def why_expired(holder: tuple[str, float], seconds: float) -> str:
    """Why the expired claim of ``holder`` is taken over, for the warning that says so."""
    owner, beat = holder
    age = time.time() - beat
    if owner == UNREADABLE:
        return (
            f"it holds {shown(owner)}, unchanged for {age:.0f} s: its runner was killed "
            "while making it"
        )
    process = _local_process(owner)
    if process is not None:
        status = state(*process)
        if status == GONE:
            return f"its owner, process {process[0]} on this host, is gone ({owner})"
        return (
            f"its owner, process {process[0]} on this host, is {status} and renewed it "
            f"{age:.0f} s ago, longer than pipex.claims.timeout ({seconds:g} s) ({owner})"
        )
    return (
        f"its owner {owner} renewed it {age:.0f} s ago, longer than pipex.claims.timeout "
        f"({seconds:g} s), so its runner on another host is taken for dead. A task there that "
        "holds Python's GIL longer than that stops its heartbeat too: if so, raise "
        "pipex.claims.timeout"
    )


def described(holder: tuple[str, float], now: float | None = None) -> str:
    """Who holds a claim, for the messages of a runner that waits for it: host, process,
    its state (on this host) and the age of its heartbeat."""
    owner, beat = holder
    age = (time.time() if now is None else now) - beat
    if owner == UNREADABLE:
        return f"an unreadable owner record (made {age:.0f} s ago)"
    try:
        record: Any = json.loads(owner)
    except ValueError:
        return f"{owner} (heartbeat {age:.0f} s ago)"
    if not isinstance(record, dict):
        return f"{owner} (heartbeat {age:.0f} s ago)"
    host = record.get("host") or f"host {record.get('host_hash', '?')}"
    process = _local_process(owner)
    status = f", {state(*process)}" if process is not None else ""
    return f"{host} pid {record.get('pid', '?')}{status} (heartbeat {age:.0f} s ago)"
