"""fsspec access to any URL (local folders, s3://, any fsspec URL): atomic writes and local copies.

Storage options (credentials, endpoints) are passed in, never read from or written to logs. Object stores get
them; the local filesystem does not (it accepts no such options). Only `OutputStore` and `Archive` call this.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fsspec.core import url_to_fs

from anomaly_models.errors import UsageError, VadError

T = TypeVar("T")


class StorageError(VadError):
    """A storage operation that failed for good: transient errors retried until the budget ran out, or an error
    that retrying cannot fix (a full disk, a missing bucket, refused credentials). Its message starts 'storage:'."""


class UnusableOutput(StorageError, UsageError):
    """The output cannot be written at all when a run starts (missing bucket, refused credentials, unreachable
    endpoint, full disk): a configuration to fix, exit 2."""


class UnusableArchive(StorageError, UsageError):
    """The archive cannot be listed at all (refused credentials, unreachable endpoint, missing bucket): a
    configuration to fix, exit 2."""


# connection-level failures and throttling: worth retrying (botocore and aiohttp name them; s3fs passes them on)
TRANSIENT_TYPES = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                   "ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "ServerTimeoutError",
                   "ClientPayloadError", "ConnectionError", "TimeoutError"}  # fmt: skip
TRANSIENT_TEXT = ("SlowDown", "Throttl", "RequestTimeout", "ServiceUnavailable", "InternalError", "reduce your request")


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if {cls.__name__ for cls in type(exc).__mro__} & TRANSIENT_TYPES:
        return True
    return any(text in str(exc) for text in TRANSIENT_TEXT)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for transient storage errors, within a bounded budget."""

    attempts: int = 6
    first_delay_s: float = 0.5
    max_delay_s: float = 8.0
    budget_s: float = 60.0


RETRY = RetryPolicy()


def describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text[:300]}"


def retrying(fn: Callable[[], T], what: str, policy: RetryPolicy = RETRY) -> T:
    """fn(), retried with backoff while it fails transiently; then a StorageError naming what failed. Other errors
    pass through unchanged (a missing file stays a FileNotFoundError)."""
    started, delay = time.monotonic(), policy.first_delay_s
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            elapsed = time.monotonic() - started
            if attempt >= policy.attempts or elapsed + delay > policy.budget_s:
                raise StorageError(
                    f"storage: {what}: {describe(exc)} (gave up after {attempt} attempts, {elapsed:.0f} s)"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, policy.max_delay_s)


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def filesystem(url: str, storage_options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """(fs, path) for a URL; storage_options only reach remote filesystems."""
    return url_to_fs(url, **({} if is_local(url) else dict(storage_options or {})))


def join(root: str, *parts: str) -> str:
    root = root.rstrip("/")
    return posixpath.join(root, *[p.strip("/") for p in parts if p])


def write_bytes_atomic(url: str, data: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """A reader never sees half a file: local writes go to a hidden temp file (a short name, whatever the target's
    length) renamed into place, removed again if the write fails; an object store PUT is atomic by itself."""
    fs, path = filesystem(url, storage_options)
    if not is_local(url):
        fs.pipe_file(path, data)
        return
    parent = posixpath.dirname(path)
    os.makedirs(parent, exist_ok=True)
    tmp = posixpath.join(parent, f".vad-{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def read_bytes(url: str, storage_options: Mapping[str, Any] | None = None) -> bytes:
    fs, path = filesystem(url, storage_options)
    return fs.cat_file(path)


@contextmanager
def local_path(url: str, storage_options: Mapping[str, Any] | None = None, suffix: str = "") -> Iterator[str]:
    """A local filename for a URL: the file itself when local, else a temporary download removed afterwards."""
    if is_local(url):
        yield url[len("file://") :] if url.startswith("file://") else url
        return
    fs, path = filesystem(url, storage_options)
    with tempfile.TemporaryDirectory(prefix="vad-") as tmp:
        target = os.path.join(tmp, "input" + suffix)
        retrying(lambda: fs.get_file(path, target), f"downloading {url}")
        yield target
