"""fsspec access to archives and the output root (local folders, s3://, any fsspec URL).

Storage options (credentials, endpoints) are passed in, never read from or written to logs. Object stores get
them; the local filesystem does not (it accepts no such options).
"""
from __future__ import annotations

import os
import posixpath
import uuid
from contextlib import contextmanager

import fsspec
from fsspec.core import url_to_fs


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def filesystem(url: str, storage_options: dict | None = None):
    """(fs, path) for a URL; storage_options only reach remote filesystems."""
    fs, path = url_to_fs(url, **({} if is_local(url) else dict(storage_options or {})))
    return fs, path


def join(root: str, *parts: str) -> str:
    root = root.rstrip("/")
    return posixpath.join(root, *[p.strip("/") for p in parts if p])


def write_bytes_atomic(url: str, data: bytes, storage_options: dict | None = None) -> None:
    """A reader never sees half a file: local writes go to a hidden temp file renamed into place; an object
    store PUT is atomic by itself."""
    fs, path = filesystem(url, storage_options)
    parent = posixpath.dirname(path)
    if is_local(url):
        os.makedirs(parent, exist_ok=True)
        tmp = posixpath.join(parent, f".{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, data)


def read_bytes(url: str, storage_options: dict | None = None) -> bytes:
    fs, path = filesystem(url, storage_options)
    return fs.cat_file(path)


def exists(url: str, storage_options: dict | None = None) -> bool:
    fs, path = filesystem(url, storage_options)
    fs.invalidate_cache(posixpath.dirname(path))
    return fs.exists(path)


@contextmanager
def local_path(url: str, storage_options: dict | None = None, suffix: str = ""):
    """A local filename for a URL: the file itself when local, else a temporary download removed afterwards."""
    if is_local(url):
        yield url[len("file://"):] if url.startswith("file://") else url
        return
    import tempfile

    fs, path = filesystem(url, storage_options)
    with tempfile.TemporaryDirectory(prefix="vad-") as tmp:
        target = os.path.join(tmp, "input" + suffix)
        fs.get_file(path, target)
        yield target


def open_file(url: str, mode: str = "rb", storage_options: dict | None = None):
    return fsspec.open(url, mode, **({} if is_local(url) else dict(storage_options or {})))
