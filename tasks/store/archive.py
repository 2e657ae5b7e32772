"""The video archive: video files under any fsspec URL, their ids (POSIX path relative to the root) and
fingerprints (size + mtime or ETag) that decide whether a stored result is stale."""

from __future__ import annotations

import fnmatch
import logging
import os
import posixpath
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from anomaly_models.errors import UsageError

from .names import InvalidName, safe_relpath
from .storage import UnusableArchive, describe, filesystem, is_local, local_path

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp")


class InvalidVideoId(InvalidName):
    pass


class ArchiveNotFound(UsageError):
    """The archive root does not exist (a wrong --archive): bad usage, exit 2."""


@dataclass(frozen=True)
class VideoEntry:
    video_id: str
    url: str
    size: int
    fingerprint: str
    part: tuple[int, int] | None = None  # (k, n): the k-th of n clip ranges (a long file split across tasks)
    split_id: str = ""  # names one split: only parts of the same split are merged together


def validate_video_id(video_id: str) -> str:
    """Ids are relative POSIX paths inside the archive: no absolute paths, no '..', no empty parts."""
    try:
        return safe_relpath(video_id, "video id")
    except InvalidName as exc:
        raise InvalidVideoId(str(exc)) from None


def fingerprint(info: Mapping[str, Any]) -> str:
    stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
    return f"{int(info.get('size') or 0)}-{str(stamp).strip(chr(34))}"


@dataclass(frozen=True)
class Archive:
    """An archive root URL and the storage options to read it (never shown in its repr)."""

    root: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def videos(self, include: tuple[str, ...] = (), extensions: tuple[str, ...] = VIDEO_EXTENSIONS) -> list[VideoEntry]:
        """All videos under the root, sorted by id; with `include`, only ids matching one of the globs (fnmatch,
        e.g. 'cam07/2026-11-*/*'). Files that cannot be taken are left out (`listing` says why)."""
        return self.listing(include, extensions)[0]

    def listing(
        self, include: tuple[str, ...] = (), extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    ) -> tuple[list[VideoEntry], dict[str, str]]:
        """(videos, skipped): `skipped` maps a file's path under the root to why it was not taken (a name that is
        not a safe id, a symlink that leaves the archive). One odd file never hides the rest of the archive."""
        fs, root = filesystem(self.root, self.storage_options)
        fs.invalidate_cache()
        try:
            listed = fs.isdir(root) and sorted(fs.find(root, detail=True).items())
        except Exception as exc:  # refused credentials, unreachable endpoint, missing bucket: one line naming the URL
            raise UnusableArchive(f"storage: cannot list the archive {self.root}: {describe(exc)}") from None
        if listed is False:
            raise ArchiveNotFound(f"archive: not found or not a folder: {self.root}")
        root = root.rstrip("/")
        base = self.root.rstrip("/")
        local = is_local(self.root)
        real_root = os.path.realpath(root) if local else ""
        entries, skipped = [], {}
        for path, info in listed:
            if not path.lower().endswith(extensions) or info.get("type") == "directory":
                continue
            rel = posixpath.relpath(path, root)
            try:
                video_id = validate_video_id(rel)
            except InvalidVideoId as exc:
                skipped[rel] = str(exc)
                continue
            if include and not any(fnmatch.fnmatchcase(video_id, g) for g in include):
                continue
            if local and not os.path.realpath(path).startswith(real_root + os.sep):
                skipped[rel] = "a symlink that leads outside the archive"
                continue
            url = posixpath.join(root if local else base, video_id)
            entries.append(VideoEntry(video_id, url, int(info.get("size") or 0), fingerprint(info)))
        for rel, reason in skipped.items():
            log.warning("skipping %r: %s", rel, reason)
        return entries, skipped

    def entry(self, video_id: str) -> VideoEntry:
        """One video by its id, without listing the archive (`vad score VIDEO`)."""
        video_id = validate_video_id(video_id)
        url = posixpath.join(self.root.rstrip("/"), video_id)
        fs, path = filesystem(url, self.storage_options)
        try:
            info = fs.info(path)
        except FileNotFoundError:
            raise ArchiveNotFound(f"video: not found: {url}") from None
        if info.get("type") == "directory":
            raise ArchiveNotFound(f"video: {url} is a folder, not a video file")
        return VideoEntry(video_id, url, int(info.get("size") or 0), fingerprint(info))

    @contextmanager
    def local_copy(self, entry: VideoEntry) -> Iterator[str]:
        """A local file for the video: itself when local, else a temporary download removed afterwards."""
        with local_path(entry.url, self.storage_options, suffix=posixpath.splitext(entry.url)[1]) as path:
            yield path


def discover_videos(archive: Archive | str, include: tuple[str, ...] = ()) -> list[VideoEntry]:
    return (archive if isinstance(archive, Archive) else Archive(archive)).videos(include)
