"""The output store: the one object that knows the output tree, reads it and writes it atomically.

```
<root>/
  features/<extractor_id>/<video_id>.parquet          one row per clip
  features/<extractor_id>/_quarantine/<video_id>.json  videos that failed to decode (fingerprint + reason)
  objects/<detector_id>/<video_id>.parquet            one row per clip (its centre frame)
  scores/<model_id>/<video_id>.parquet                one row per clip
  scores/<model_id>/evaluation.json  .md  .html       evaluation (and evaluation.html at the root: models compared)
  reports/<model_id>/<video_id>.json  .html           per-video segment report
  reports/<model_id>/<video_id>.events/<n>.mp4  .jpg  event n's clip and poster frame
  reports/<model_id>/alerts-<run_id>.html             one run's events across cameras, ranked, with filters
  reports/<model_id>/index.html  index-<run_id>[-pN].html   the index pages (all time; one run's videos)
  index/<model_id>/videos|segments/<part>.parquet     the index data, one part per run (tasks/jobs/report_index.py)
  index/<model_id>/pending/<run_id>.json              a run's planned reports until its part is written
  reviews/<model_id>/<part>.parquet                   analysts' verdicts on events, one part per save (append only)
  runs/<run_id>/started.json  manifest.parquet  summary.json  [traceback.txt]   one row per video
  runs/lease.json                                     the run holding the output now (tasks/store/lease.py)
  models/<model_id>/checkpoint.pt  config.json        trained models (config.json = the model card)
```

Frozen and picklable (it travels to Dask workers); the storage options it carries are never shown in its repr.
Every name from outside is validated (`names`) before it becomes a path. Nothing else builds output paths.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from anomaly_models.errors import UsageError

from .names import safe_name, safe_relpath
from .storage import (
    UnusableOutput,
    describe,
    filesystem,
    is_local,
    join,
    local_path,
    read_bytes,
    retrying,
    write_bytes_atomic,
)
from .tables import ClipTable, decode_metadata, json_bytes, table_bytes

KINDS = ("features", "objects", "scores", "reports", "runs", "models", "reviews")
QUARANTINE = "_quarantine"


@dataclass(frozen=True)
class OutputStore:
    root: str
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.root:
            raise UsageError("out: the output root URL is empty")
        root = self.root.rstrip("/") or "/"
        if is_local(root) and not root.startswith("file://"):
            root = posixpath.abspath(root)
        object.__setattr__(self, "root", root)

    @classmethod
    def locate(cls, url: str, kind: str, storage_options: Mapping[str, Any] | None = None) -> tuple[OutputStore, str]:
        """`<root>/<kind>/<id>` (what users pass: --features, --model, --scores) -> (the store at <root>, <id>).
        The one place that reads the tree backwards; anything else is an error naming the expected shape."""
        path = url.rstrip("/")
        if kind == "models":
            path = path.removesuffix("/checkpoint.pt").removesuffix("/config.json")
        parent, producer = posixpath.split(path)
        root, found = posixpath.split(parent)
        if found != kind or not producer:
            raise UsageError(f"{kind}: expected a folder like <out>/{kind}/<id>, got {url!r}")
        return cls(root or ".", storage_options or {}), safe_name(producer, f"{kind} id")

    def _url(self, *parts: str) -> str:
        return join(self.root, *parts)

    # ---- paths: the only place that builds them
    def features_dir(self, extractor_id: str) -> str:
        return self._url("features", safe_name(extractor_id, "extractor id"))

    def features(self, extractor_id: str, video_id: str) -> str:
        return join(self.features_dir(extractor_id), safe_relpath(video_id) + ".parquet")

    def part_file(self, table_url: str, k: int, n: int) -> str:
        """Part k of n of a per-video table (a long file extracted by several tasks, merged by the last one):
        hidden (a leading dot) beside the table, so listings never take it for a video."""
        folder, name = posixpath.split(table_url)
        return join(folder, f".{name.removesuffix('.parquet')}.part-{int(k)}-of-{int(n)}.parquet")

    def part_files(self, table_url: str) -> list[str]:
        """Every part file of a table, of any split (stale ones from earlier runs included)."""
        folder, name = posixpath.split(table_url)
        fs, path = filesystem(folder, self.storage_options)
        pattern = f"{path.rstrip('/')}/.{name.removesuffix('.parquet')}.part-*-of-*.parquet"
        found = retrying(lambda: fs.glob(pattern), f"listing {folder}")
        return sorted(join(folder, posixpath.basename(p)) for p in found)

    def quarantine(self, extractor_id: str, video_id: str) -> str:
        return join(self.features_dir(extractor_id), QUARANTINE, safe_relpath(video_id) + ".json")

    def objects_dir(self, detector_id: str) -> str:
        return self._url("objects", safe_name(detector_id, "detector id"))

    def objects(self, detector_id: str, video_id: str) -> str:
        return join(self.objects_dir(detector_id), safe_relpath(video_id) + ".parquet")

    def scores_dir(self, model_id: str) -> str:
        return self._url("scores", safe_name(model_id, "model id"))

    def scores(self, model_id: str, video_id: str) -> str:
        return join(self.scores_dir(model_id), safe_relpath(video_id) + ".parquet")

    def evaluation(self, model_id: str, suffix: str) -> str:
        return join(self.scores_dir(model_id), "evaluation" + suffix)

    def comparison(self) -> str:
        """The page comparing the models last evaluated together (`vad evaluate` with several scores folders)."""
        return self._url("evaluation.html")

    def reports_dir(self, model_id: str) -> str:
        return self._url("reports", safe_name(model_id, "model id"))

    def report(self, model_id: str, video_id: str, suffix: str) -> str:
        return join(self.reports_dir(model_id), safe_relpath(video_id) + suffix)

    def report_models(self) -> list[str]:
        """Model ids with a reports folder (what `vad review` lists)."""
        fs, path = filesystem(self._url("reports"), self.storage_options)
        fs.invalidate_cache()
        if not retrying(lambda: fs.exists(path), f"listing {path}"):
            return []
        found = retrying(lambda: fs.ls(path, detail=True), f"listing {path}")
        return sorted(posixpath.basename(i["name"].rstrip("/")) for i in found if i["type"] == "directory")

    def event_media_name(self, video_id: str, n: int, suffix: str) -> str:
        """Event n's clip (.mp4) or poster (.jpg), relative to reports/<model_id>/ (pages link to it)."""
        return f"{safe_relpath(video_id)}.events/{int(n)}{suffix}"

    def event_media(self, model_id: str, video_id: str, n: int, suffix: str) -> str:
        return join(self.reports_dir(model_id), self.event_media_name(video_id, n, suffix))

    def index(self, model_id: str) -> str:
        return join(self.reports_dir(model_id), "index.html")

    def alerts_page(self, model_id: str, run_id: str) -> str:
        """One run's events across cameras, ranked (tasks/jobs/alerts_page.py)."""
        return join(self.reports_dir(model_id), f"alerts-{safe_name(run_id, 'run id')}.html")

    def reviews_dir(self, model_id: str) -> str:
        return self._url("reviews", safe_name(model_id, "model id"))

    def review_part(self, model_id: str, part: str) -> str:
        return join(self.reviews_dir(model_id), safe_name(part, "review part") + ".parquet")

    def run_page(self, model_id: str, run_id: str, page: int = 1) -> str:
        name = f"index-{safe_name(run_id, 'run id')}" + (f"-p{page}" if page > 1 else "")
        return join(self.reports_dir(model_id), name + ".html")

    def index_dir(self, model_id: str) -> str:
        return self._url("index", safe_name(model_id, "model id"))

    def index_part(self, model_id: str, kind: str, part: str) -> str:
        """`kind` is "videos" or "segments"; `part` a run id (or a compacted part named after one)."""
        return join(self.index_dir(model_id), kind, safe_name(part, "index part") + ".parquet")

    def index_pending(self, model_id: str, run_id: str) -> str:
        return join(self.index_dir(model_id), "pending", safe_name(run_id, "run id") + ".json")

    def lease_file(self) -> str:
        return self._url("runs", "lease.json")

    def run_file(self, run_id: str, name: str) -> str:
        return self._url("runs", safe_name(run_id, "run id"), name)

    def run_ids(self) -> list[str]:
        """Ids of the runs recorded under `runs/` (its folders: the lease file beside them is no run), sorted, so
        oldest first (run ids start with their UTC start time). Hidden names and names that are no safe id are left
        out: they are not runs, and listing must not fail on them."""
        fs, path = filesystem(self._url("runs"), self.storage_options)
        fs.invalidate_cache()
        if not retrying(lambda: fs.exists(path), f"listing {path}"):
            return []
        found = retrying(lambda: fs.ls(path, detail=True), f"listing {path}")
        names = (posixpath.basename(i["name"].rstrip("/")) for i in found if i["type"] == "directory")
        return sorted(n for n in names if not n.startswith(".") and _is_safe_name(n))

    def lock_file(self) -> str:
        """The local lock the lease is checked and written under (hidden, at the root: `runs/` lists runs)."""
        return self._url(".lease.lock")

    def delete_run(self, run_id: str) -> None:
        """A run's folder and everything in it (a refused or abandoned run leaves no trace)."""
        fs, path = filesystem(self._url("runs", safe_name(run_id, "run id")), self.storage_options)
        if retrying(lambda: fs.exists(path), f"checking {path}"):
            retrying(lambda: fs.rm(path, recursive=True), f"deleting {path}")

    def model_dir(self, model_id: str) -> str:
        return self._url("models", safe_name(model_id, "model id"))

    def model_file(self, model_id: str, name: str) -> str:
        return join(self.model_dir(model_id), name)

    # ---- reads and atomic writes (transient storage errors are retried, see storage.retrying)
    def read_bytes(self, url: str) -> bytes:
        return retrying(lambda: read_bytes(url, self.storage_options), f"reading {url}")

    def write_bytes(self, url: str, data: bytes) -> str:
        retrying(lambda: write_bytes_atomic(url, data, self.storage_options), f"writing {url}")
        return url

    def size(self, url: str) -> int:
        """Bytes in one file (FileNotFoundError when it does not exist; folders count as missing)."""
        fs, path = filesystem(url, self.storage_options)
        info = retrying(lambda: fs.info(path), f"reading {url}")
        if info.get("type") == "directory":
            raise FileNotFoundError(url)
        return int(info.get("size") or 0)

    def read_range(self, url: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of one file (a ranged GET on object storage)."""
        fs, path = filesystem(url, self.storage_options)
        return retrying(lambda: fs.cat_file(path, start=start, end=end), f"reading {url}")

    def read_json(self, url: str) -> Any:
        return json.loads(self.read_bytes(url))

    def write_json(self, url: str, obj: Any) -> str:
        return self.write_bytes(url, json_bytes(obj))

    def read_table(self, url: str) -> ClipTable:
        table = self.read_arrow(url)
        return ClipTable(table, decode_metadata(table.schema.metadata))

    def read_arrow(self, url: str) -> pa.Table:
        """A plain Parquet table (not a clip table)."""

        def read() -> pa.Table:
            fs, path = filesystem(url, self.storage_options)
            with fs.open(path, "rb") as f:
                return pq.read_table(f)

        return retrying(read, f"reading {url}")

    def write_table(self, url: str, table: pa.Table) -> str:
        return self.write_bytes(url, table_bytes(table))

    def read_metadata(self, url: str) -> dict[str, str] | None:
        """Only a Parquet footer's key/value metadata, or None when the object does not exist or is not a readable
        table (a partial or foreign file is never current). Unreachable storage is an error, never 'missing'."""

        def read() -> dict[str, str] | None:
            fs, path = filesystem(url, self.storage_options)
            try:
                with fs.open(path, "rb") as f:
                    return decode_metadata(pq.read_schema(f).metadata)
            except (FileNotFoundError, pa.ArrowInvalid):
                return None

        return retrying(read, f"reading {url}")

    def delete(self, url: str) -> None:
        fs, path = filesystem(url, self.storage_options)
        retrying(lambda: fs.rm_file(path), f"deleting {url}")

    def exists(self, url: str) -> bool:
        fs, path = filesystem(url, self.storage_options)
        return bool(retrying(lambda: fs.exists(path), f"checking {url}"))

    def current_metadata(
        self, url: str, expected: Mapping[str, str], required: Iterable[str] = ()
    ) -> dict[str, str] | None:
        """The one freshness check: the stored table's metadata when it matches every expected value (e.g. the
        source fingerprint and the producer id) and has every required key; else None (missing or stale)."""
        meta = self.read_metadata(url)
        if not meta or any(meta.get(k) != str(v) for k, v in expected.items()) or any(k not in meta for k in required):
            return None
        return meta

    def is_current(self, url: str, expected: Mapping[str, str], required: Iterable[str] = ()) -> bool:
        return self.current_metadata(url, expected, required) is not None

    def video_ids(self, folder: str, suffix: str = ".parquet") -> list[str]:
        """Video ids of every `<video_id><suffix>` under one producer folder (hidden temp files and the quarantine
        folder excluded). Note: pyarrow dataset readers skip paths starting with '_' or '.'; this does not."""
        return sorted(self.modified_times(folder, suffix))

    def modified_times(self, folder: str, suffix: str = ".parquet") -> dict[str, float]:
        """{video_id: last-modified POSIX time} of every `<video_id><suffix>` under a folder, in one listing."""
        fs, root = filesystem(folder, self.storage_options)
        fs.invalidate_cache()
        if not retrying(lambda: fs.exists(root), f"listing {folder}"):
            return {}
        root = root.rstrip("/")
        found = {}
        for path, info in retrying(lambda: fs.find(root, detail=True), f"listing {folder}").items():
            rel = path[len(root) + 1 :]
            parts = rel.split("/")
            if rel.endswith(suffix) and parts[0] != QUARANTINE and not parts[-1].startswith("."):
                found[rel[: -len(suffix)]] = _modified(info)
        return found

    def modified_time(self, url: str) -> float | None:
        """Last-modified POSIX time of one file; None when it does not exist."""
        fs, path = filesystem(url, self.storage_options)
        try:
            return _modified(retrying(lambda: fs.info(path), f"reading {url}"))
        except FileNotFoundError:
            return None

    def check_writable(self, run_id: str, info: Mapping[str, Any]) -> str:
        """Before any work: write the run's `started.json` (who, what, when). An output that cannot be written
        (missing bucket, refused credentials, unreachable endpoint, full disk) is one clear StorageError."""
        url = self.run_file(run_id, "started.json")
        try:
            return self.write_json(url, dict(info))
        except Exception as exc:
            raise UnusableOutput(f"storage: cannot write to the output {self.root}: {describe(exc)}") from None

    def probe_writable(self) -> str:
        """`vad doctor`: write a small hidden object under `runs/` (no run: `run_ids` lists folders only), read it
        back and delete it; returns the root. An output that refuses any of the three is one StorageError."""
        url = self._url("runs", f".doctor-{uuid.uuid4().hex[:12]}.probe")
        data = b"vad doctor: write probe\n"
        try:
            self.write_bytes(url, data)
            try:
                if self.read_bytes(url) != data:
                    raise UnusableOutput(f"storage: the output {self.root} returned other bytes than were written")
            finally:
                self.delete(url)
        except UnusableOutput:
            raise
        except Exception as exc:
            raise UnusableOutput(f"storage: cannot write to the output {self.root}: {describe(exc)}") from None
        return self.root

    @contextmanager
    def local_copy(self, url: str) -> Iterator[str]:
        """A local file for a source video named in stored metadata (reports' thumbnails), with this store's
        storage options."""
        with local_path(url, self.storage_options, suffix=posixpath.splitext(url)[1]) as path:
            yield path


def _is_safe_name(name: str) -> bool:
    try:
        safe_name(name)
    except UsageError:
        return False
    return True


def _modified(info: Mapping[str, Any]) -> float:
    """fsspec's last-modified time: `mtime` on local disks, `LastModified` (a datetime) on S3."""
    value = info.get("mtime", info.get("LastModified", info.get("last_modified", 0.0)))
    return float(value.timestamp() if hasattr(value, "timestamp") else value)
