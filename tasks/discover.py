"""Archive discovery: video files under any fsspec URL, their ids (POSIX path relative to the root) and
fingerprints (size + mtime or ETag) that decide whether a stored result is stale."""
from __future__ import annotations

import fnmatch
import logging
import posixpath
from dataclasses import dataclass

from .storage import filesystem, is_local

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".flv", ".wmv", ".3gp")


class InvalidVideoId(ValueError):
    pass


@dataclass(frozen=True)
class VideoEntry:
    video_id: str
    url: str
    size: int
    fingerprint: str


def validate_video_id(video_id: str) -> str:
    """Ids are relative POSIX paths inside the archive: no absolute paths, no '..', no empty parts."""
    if not video_id or video_id.startswith("/") or "\\" in video_id:
        raise InvalidVideoId(f"invalid video id {video_id!r}: must be a relative POSIX path")
    parts = video_id.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise InvalidVideoId(f"invalid video id {video_id!r}: empty, '.' or '..' path parts escape the archive")
    return video_id


def fingerprint(info: dict) -> str:
    stamp = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
    return f"{int(info.get('size') or 0)}-{str(stamp).strip(chr(34))}"


def discover_videos(archive_url: str, storage_options: dict | None = None,
                    extensions: tuple[str, ...] = VIDEO_EXTENSIONS, include: tuple[str, ...] = ()) -> list[VideoEntry]:
    """All videos under the archive root, sorted by id; with `include`, only ids matching one of the globs
    (fnmatch, e.g. 'cam07/2026-11-*/*')."""
    fs, root = filesystem(archive_url, storage_options)
    fs.invalidate_cache()
    if not fs.isdir(root):
        raise FileNotFoundError(f"archive not found or not a folder: {archive_url}")
    root = root.rstrip("/")
    base = archive_url.rstrip("/")
    entries = []
    for path, info in sorted(fs.find(root, detail=True).items()):
        if not path.lower().endswith(extensions) or info.get("type") == "directory":
            continue
        try:
            video_id = validate_video_id(posixpath.relpath(path, root))
        except InvalidVideoId as exc:  # one odd name must not hide the rest of the archive
            log.warning("skipping %s", exc)
            continue
        if include and not any(fnmatch.fnmatchcase(video_id, g) for g in include):
            continue
        url = posixpath.join(base, video_id) if not is_local(archive_url) else posixpath.join(root, video_id)
        entries.append(VideoEntry(video_id, url, int(info.get("size") or 0), fingerprint(info)))
    return entries
