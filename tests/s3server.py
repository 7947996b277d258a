"""A real S3-protocol server for tests and benchmarks: moto's standalone server on 127.0.0.1.

``moto_server()`` starts ``python -m moto.server`` (from ``moto[server]``) on a free port,
waits until it answers, and stops it when the block exits. The server logs one line per
HTTP request, so :meth:`S3Server.requests` counts what clients really sent.
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KEY = SECRET = "testing"  # moto accepts any credentials
_REQUEST = re.compile(rb'"(GET|PUT|HEAD|POST|DELETE) ')


@dataclass(frozen=True)
class S3Server:
    """A running server: its endpoint, and the log it writes each request to."""

    endpoint: str
    log: Path

    @property
    def options(self) -> dict[str, str]:
        """s3fs options reaching this server (for ``pipex.FsspecStore(url, **options)``)."""
        return {"endpoint_url": self.endpoint, "key": KEY, "secret": SECRET}

    @property
    def environment(self) -> dict[str, str]:
        """fsspec's environment configuration reaching this server."""
        return {
            "FSSPEC_S3_ENDPOINT_URL": self.endpoint,
            "FSSPEC_S3_KEY": KEY,
            "FSSPEC_S3_SECRET": SECRET,
        }

    def requests(self) -> int:
        """How many HTTP requests the server has answered so far."""
        return len(_REQUEST.findall(self.log.read_bytes()))

    def new_bucket(self) -> str:
        """Create an empty bucket with a fresh name; return the name."""
        import s3fs

        name = f"pipex-{uuid.uuid4().hex[:12]}"
        s3fs.S3FileSystem(**self.options).mkdir(name)
        return name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def moto_server(folder: Path, timeout: float = 60) -> Iterator[S3Server]:
    """Run moto's S3 server on 127.0.0.1 while the block runs; its log goes in ``folder``."""
    port = _free_port()
    log = folder / "moto.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = S3Server(f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited:\n{log.read_text()}")
            try:
                urllib.request.urlopen(f"{server.endpoint}/moto-api/", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"moto_server did not answer in {timeout} s") from None
                time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
