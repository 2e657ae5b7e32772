"""fsspec access to any URL (local folders, s3://, any fsspec URL): atomic writes and local copies.

Storage options (credentials, endpoints) are passed in, never read from or written to logs. Object stores get
them; the local filesystem does not (it accepts no such options). Only `OutputStore` and `Archive` call this.
"""

from __future__ import annotations

import os
import posixpath
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from fsspec.core import url_to_fs


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
        fs.get_file(path, target)
        yield target
