"""``FsspecStore``: targets under any URL fsspec knows (``s3://``, ``gs://``, ``az://``, ...).

One store for every protocol: fsspec picks the filesystem, pipex adds no per-service code.
fsspec itself is imported when a store is first made, not with pipex.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import threading
from collections.abc import Iterator, Sequence
from typing import IO, Any

from pipex.exceptions import StoreError
from pipex.redact import redact, scrub
from pipex.stores import claims
from pipex.stores.atomic import local_stage, require_file
from pipex.stores.base import Store, by_folder
from pipex.stores.claims import claim_path, is_claim, target_of
from pipex.stores.owners import expired, readable

#: The pipex extra that installs each fsspec implementation package.
EXTRAS = {"s3fs": "s3", "gcsfs": "gcs", "adlfs": "azure"}
#: Object stores whose fsspec filesystem never reads credentials from a URL: it takes
#: ``key:secret@bucket`` as the bucket's name (and quotes it in its errors).
NO_URL_CREDENTIALS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl"})
#: Protocols whose filesystem creates an object only if none exists (``mode="create"``:
#: ``If-None-Match: *`` on S3). On any other, claims are granted to every runner.
EXCLUSIVE_CREATE = frozenset({"s3", "s3a", "memory"})
logger = logging.getLogger(__name__)
#: fsspec's memory filesystem checks and creates in two steps: claims take turns on this.
_MEMORY_CLAIMS = threading.Lock()


class FsspecStore(Store):
    """Targets as objects under ``url``, on the filesystem fsspec has for its protocol.

    ``options`` (``key=``, ``secret=``, ``endpoint_url=``, ...) go to that filesystem as
    they are; without them fsspec's own configuration applies (its config files and
    ``FSSPEC_<PROTOCOL>_<OPTION>`` environment variables, e.g. ``FSSPEC_S3_ENDPOINT_URL``).
    The store shows its URL (credentials in it as ``***``) and the names of its options,
    never their values.

    Existence is one listing per folder (paginated by the filesystem). A write goes to a
    local temporary file, uploaded in one ``put`` once complete: object stores publish an
    object only when its upload completes, so a killed writer leaves nothing behind.
    Claims are hidden sibling objects, created with a conditional PUT on S3 (and in memory);
    other protocols grant every claim (:data:`EXCLUSIVE_CREATE`).
    """

    __slots__ = ("_fs", "_hash", "_prefix", "options", "protocol", "url")

    def __init__(self, url: str, **options: Any) -> None:
        protocol, separator, rest = url.partition("://")
        if not separator or not protocol:
            raise StoreError(f"{url!r} is not a URL: give a location such as 's3://bucket/root'")
        filesystem_class(protocol, url)
        _no_credentials_in(protocol, rest)
        self.protocol = protocol
        self.url = f"{protocol}://{rest.strip('/')}"
        self._prefix = self.url if self.url.endswith("://") else self.url + "/"
        self.options = options
        self._hash = hash((type(self), self.url, tuple(sorted(options))))
        self._fs: Any = None

    def __repr__(self) -> str:
        shown = f", options={sorted(self.options)}" if self.options else ""
        return f"{type(self).__name__}({redact(self.url)!r}{shown})"

    def __eq__(self, other: object) -> bool:
        return (
            type(other) is type(self) and other.url == self.url and other.options == self.options
        )

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.url, self.options))

    # -- where things are ----------------------------------------------------------------------

    def location(self, path: str) -> str:
        return self._prefix + path.lstrip("/")

    def relative(self, url: str) -> str | None:
        return url[len(self._prefix) :] if url.startswith(self._prefix) else None

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem (made on first use in each process; fsspec caches it)."""
        if self._fs is None:
            from fsspec.core import url_to_fs

            self._fs = url_to_fs(self.url, **self.options)[0]
        return self._fs

    # -- primitives ----------------------------------------------------------------------------

    def exists_many(self, paths: Sequence[str]) -> list[bool]:
        """One listing per folder holding any of ``paths`` (the filesystem pages through it)."""
        fs = self.filesystem
        found = [False] * len(paths)
        for folder, entries in by_folder(paths).items():
            full = self.location(folder)
            fs.invalidate_cache(full)  # another process may have written since the last look
            try:
                listed = fs.ls(full, detail=False)
            except (FileNotFoundError, NotADirectoryError):
                continue
            except Exception as exc:
                raise StoreError(
                    f"cannot list {self.location(folder)} to check targets: "
                    f"{type(exc).__name__}: {exc}. Check the credentials and endpoint in "
                    "fsspec's configuration or in the store's options."
                ) from scrub(exc, self.url)
            present = {posixpath.basename(name.rstrip("/")) for name in listed}
            for index, name in entries:
                found[index] = name in present
            self._left_claims(folder, present)
        return found

    def _left_claims(self, folder: str, present: set[str]) -> None:
        """Remove the expired claims beside targets that exist (a runner killed between
        uploading a target and removing its claim), seen in a listing of ``folder``."""
        for name in present:
            if not is_claim(name) or target_of(name) not in present:
                continue
            path = posixpath.join(folder, target_of(name)) if folder else target_of(name)
            holder = self.claim_holder(path)
            if holder is not None and expired(holder, claims.timeout()):
                self.release(path, holder[0])

    @contextlib.contextmanager
    def open(self, path: str) -> Iterator[IO[bytes]]:
        """The object, streamed (read ahead in blocks) as the serializer reads it."""
        with self.filesystem.open(self.location(path), "rb") as file:
            yield file

    def stage(self, path: str) -> tuple[str, IO[bytes]]:
        return local_stage(path)

    def commit(self, staged: str, path: str) -> None:
        """Upload the finished local file in one ``put``, then remove it."""
        require_file(staged, self.location(path))
        try:
            self.filesystem.put_file(staged, self.location(path))
        except Exception as exc:
            raise StoreError(
                f"cannot write target {self.location(path)}: {type(exc).__name__}: {exc}. "
                "Check that the bucket exists and that the credentials may write to it."
            ) from scrub(exc, self.url)
        os.remove(staged)

    def delete(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filesystem.rm(self.location(path), recursive=True)

    def exists(self, path: str) -> bool:
        """Whether ``path`` holds a finished target: one request (``HEAD`` on S3)."""
        full = self.location(path)
        self.filesystem.invalidate_cache(full)
        return bool(self.filesystem.isfile(full))

    def stamp(self, path: str) -> str | None:
        """Its ETag (S3, GCS, Azure), modification time and size, as the filesystem gives
        them; one request."""
        full = self.location(path)
        self.filesystem.invalidate_cache(full)
        try:
            info = self.filesystem.info(full)
        except (FileNotFoundError, OSError):
            return None
        marks = [str(info[key]) for key in _STAMPED if info.get(key) is not None]
        return ":".join([*marks, str(info.get("size"))]) if marks else None

    def glob(self, pattern: str) -> list[str]:
        """The objects under the store's URL whose path matches ``pattern``, sorted (an
        optional listing, as :meth:`pipex.FileStore.glob`: ``pipex clean`` uses it)."""
        fs = self.filesystem
        root = fs._strip_protocol(self.url).rstrip("/")
        full = f"{root}/{pattern}" if root else pattern
        fs.invalidate_cache(posixpath.dirname(full))
        found = fs.glob(full, detail=True)
        prefix = f"{root}/" if root else ""
        return sorted(
            name[len(prefix) :]
            for name, info in found.items()
            if info.get("type") == "file" and name.startswith(prefix)
        )

    # -- claims --------------------------------------------------------------------------------

    @property
    def exclusive_claims(self) -> bool:  # type: ignore[override]
        return self.protocol in EXCLUSIVE_CREATE

    def claim(self, path: str, owner: str) -> bool:
        if not self.exclusive_claims:
            return True
        full = self.location(claim_path(path))
        lock = _MEMORY_CLAIMS if self.protocol == "memory" else contextlib.nullcontext()
        try:
            with lock:
                self.filesystem.pipe_file(full, owner.encode(), mode="create")
        except FileExistsError:
            return False
        except OSError as exc:
            if "PreconditionFailed" in str(exc) or "412" in str(exc):
                return False  # an If-None-Match the filesystem did not translate
        except Exception as exc:  # a server without conditional writes: claims are granted
            logger.warning(
                "pipex: cannot claim %s (%s: %s); computing it without a claim",
                redact(self.location(path)),
                type(exc).__name__,
                redact(str(exc)),
            )
        return True

    def claim_holder(self, path: str) -> tuple[str, float] | None:
        fs, full = self.filesystem, self.location(claim_path(path))
        fs.invalidate_cache(full)
        try:
            owner = readable(fs.cat_file(full))
            return owner, fs.modified(full).timestamp()
        except FileNotFoundError:
            return None

    def refresh_claim(self, path: str, owner: str) -> None:
        holder = self.claim_holder(path)
        if holder is not None and holder[0] == owner:
            self.filesystem.pipe_file(self.location(claim_path(path)), owner.encode())

    def release(self, path: str, owner: str) -> None:
        """Remove the claim if ``owner`` holds it.

        A look, then a delete: not one step. For this runner's own claim that is enough
        (no one else removes a live claim). Taking over an expired claim (of another
        owner), several runners may look at once: only the one that creates the takeover
        claim (a claim on the claim, made with the same conditional create) looks again and
        deletes it, so no runner deletes a claim another made after taking over."""
        holder = self.claim_holder(path)
        if holder is None or holder[0] != owner:
            return
        full = self.location(claim_path(path))
        if not (self.exclusive_claims and expired(holder, claims.timeout())):
            with contextlib.suppress(FileNotFoundError):
                self.filesystem.rm_file(full)
            return
        claims.take_over(self, path, owner, self._delete_claim)

    def _delete_claim(self, path: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.filesystem.rm_file(self.location(claim_path(path)))


#: What a stamp is made of, of what a filesystem's ``info`` gives (the size is added).
_STAMPED = ("ETag", "etag", "md5Hash", "LastModified", "last_modified", "mtime", "created", "ino")


def _rebuild(cls: type[FsspecStore], url: str, options: dict[str, Any]) -> FsspecStore:
    return cls(url, **options)


def filesystem_class(protocol: str, url: str) -> type:
    """The fsspec filesystem class for ``protocol``; :class:`StoreError` naming what to install."""
    import fsspec
    from fsspec.registry import known_implementations

    try:
        return fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise StoreError(
            f"no pipex store serves {protocol}:// locations ({url!r}): fsspec knows no such "
            "protocol. Use a local folder, a URL fsspec knows (s3://, gs://, az://, "
            "memory://, ...), or pass a Store object as store=."
        ) from None
    except ImportError as exc:
        package = known_implementations[protocol]["class"].partition(".")[0]
        extra = EXTRAS.get(package)
        hint = f" (or pip install 'dask-pipex[{extra}]')" if extra else ""
        raise StoreError(
            f"{protocol}:// locations ({url!r}) need the package {package}, which is not "
            f"installed: pip install {package}{hint}"
        ) from exc


def _no_credentials_in(protocol: str, rest: str) -> None:
    """A :class:`StoreError` for credentials in an object store's URL, which its fsspec
    filesystem would take as part of the bucket's name: say where they go instead."""
    bucket = rest.split("/", 1)[0]
    if protocol in NO_URL_CREDENTIALS and "@" in bucket:
        name = bucket.rsplit("@", 1)[1]
        raise StoreError(
            f"{protocol}://***@{name}: {protocol}:// URLs cannot carry credentials: fsspec's "
            f"filesystem for them never reads credentials from a URL (it would take "
            f"'***@{name}' as the bucket's name). Give the location without them "
            f"({protocol}://{name}/...) and the credentials as the store's options "
            f"(FsspecStore('{protocol}://{name}', key=..., secret=...)), in fsspec's "
            "configuration, or in the environment (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY for S3)."
        )
