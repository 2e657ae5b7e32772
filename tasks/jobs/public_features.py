"""The public UCF-Crime / XD-Violence feature sets, in and out of this project's feature Parquet.

Layouts (one NumPy file per video, or per video and crop; 16-frame non-overlapping clips, snippet i = frames
[16 i, 16 i + 16)):

- `rtfm`: `<name>_i3d.npy`, float32 [T, K, D] (K crops, e.g. the 10-crop I3D-ResNet50 sets of RTFM/MGFN, D = 2048)
  or [T, D];
- `deepmil`: `<name>__<k>.npy`, float32 [T, D] per crop k = 0..K-1 (the Inception-I3D sets of DeepMIL/UR-DMU,
  K = 10, D = 1024; XD-Violence: K = 5).

Import makes one feature table per video (`feature` = the crop mean, `crop_features` = each crop) whose video id
is the file's path below the folder without the suffix (`Abuse028_x264`, `Explosion/000`); annotation names
match it without their extension. fps and frame counts come from the videos when a folder of them is given, else
from a stated fps (default 30) and 16 frames per snippet. The extractor id names the imported source, unless the
features are declared to come from one of this project's extractors (`as_extractor`), which lets a model trained
on them scan new footage with that extractor. Export writes a store's features in either layout, plus a list
file of the paths written, so other research code can read them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from anomaly_models.errors import NotFound, UsageError
from anomaly_models.ground_truth import SNIPPET, snippet_counts

from ..media.specs import ExtractorSpec, check_spec
from ..store.names import safe_name, safe_relpath
from ..store.output import OutputStore
from ..store.storage import filesystem
from ..store.tables import feature_table

LAYOUTS = ("rtfm", "deepmil")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v")
_RTFM = re.compile(r"^(?P<name>.+)_i3d\.npy$")
_DEEPMIL = re.compile(r"^(?P<name>.+)__(?P<crop>\d+)\.npy$")


class FeatureFileError(UsageError):
    """A public feature file that cannot be imported as it is; the message names the file."""


@dataclass(frozen=True)
class VideoTiming:
    fps: float
    frame_count: int


@dataclass
class ImportResult:
    extractor_id: str
    videos: list[str]
    crops: int
    dim: int
    features_dir: str


def _load(fs, path: str) -> np.ndarray:
    with fs.open(path, "rb") as f:
        try:
            return np.load(io.BytesIO(f.read()), allow_pickle=False)
        except ValueError as exc:
            raise FeatureFileError(f"{path}: not a plain NumPy array file ({exc})") from None


def _checked(path: str, array: np.ndarray, ndims: tuple[int, ...]) -> np.ndarray:
    if array.ndim not in ndims or array.shape[0] == 0:
        raise FeatureFileError(f"{path}: expected a float array of shape {' or '.join(_shape(n) for n in ndims)}, "
                               f"got {list(array.shape)}")  # fmt: skip
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        raise FeatureFileError(f"{path}: holds NaN or infinite values")
    return array


def _shape(ndim: int) -> str:
    return "[T, D]" if ndim == 2 else "[T, K, D]"


def read_layout(source: str, layout: str, storage_options=None, listed: list[str] | None = None):
    """{video name: (first file, [T, K, D] float32)} of a folder in a public layout; `listed`: only these files
    (paths or names from a list file)."""
    if layout not in LAYOUTS:
        raise UsageError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    fs, root = filesystem(source, storage_options)
    root = root.rstrip("/")
    if not fs.exists(root):
        raise NotFound(f"no feature folder at {source}")
    files = sorted(p for p in fs.find(root) if p.endswith(".npy"))
    if listed is not None:
        wanted = {posixpath.basename(p.strip()) for p in listed if p.strip()}
        files = [p for p in files if posixpath.basename(p) in wanted]
        missing = wanted - {posixpath.basename(p) for p in files}
        if missing:
            raise NotFound(f"listed feature files not under {source}: {sorted(missing)[:5]}")
    pattern = _RTFM if layout == "rtfm" else _DEEPMIL
    groups: dict[str, dict[int, str]] = defaultdict(dict)
    for path in files:
        rel = path[len(root) + 1 :]
        match = pattern.match(posixpath.basename(rel))
        if not match:
            continue
        name = posixpath.join(posixpath.dirname(rel), match["name"])
        groups[name][int(match["crop"]) if layout == "deepmil" else 0] = path
    if not groups:
        suffix = "<name>_i3d.npy" if layout == "rtfm" else "<name>__<k>.npy"
        raise NotFound(f"no {layout} feature files ({suffix}) under {source}")
    videos = {}
    for name, by_crop in sorted(groups.items()):
        safe_relpath(name, "video id")
        if layout == "rtfm":
            path = by_crop[0]
            array = _checked(path, _load(fs, path), (2, 3))
            videos[name] = (path, array if array.ndim == 3 else array[:, None])
            continue
        if sorted(by_crop) != list(range(len(by_crop))):
            raise FeatureFileError(f"{by_crop[min(by_crop)]}: crops of {name} are {sorted(by_crop)}, expected 0..K-1")
        crops = [_checked(p, _load(fs, p), (2,)) for _, p in sorted(by_crop.items())]
        for k, arr in enumerate(crops[1:], 1):
            if arr.shape != crops[0].shape:
                raise FeatureFileError(
                    f"{by_crop[k]}: shape {list(arr.shape)} differs from crop 0's {list(crops[0].shape)}"
                )
        videos[name] = (by_crop[0], np.stack(crops, 1))
    first_path, first = next(iter(videos.values()))
    for path, array in videos.values():
        if array.shape[1:] != first.shape[1:]:
            raise FeatureFileError(
                f"{path}: {array.shape[1]} crops of {array.shape[2]} values per snippet, but {first_path} has "
                f"{first.shape[1]} of {first.shape[2]}: one import holds one feature set"
            )
    return videos


def video_timings(videos_url: str, names: list[str], storage_options=None) -> dict[str, VideoTiming]:
    """fps and decodable frame counts of the videos named like the feature files (path without extension)."""
    from ..media.video import VideoSource
    from ..store.archive import Archive

    archive = Archive(videos_url, storage_options)
    entries = {posixpath.splitext(e.video_id)[0]: e for e in archive.videos()}
    timings = {}
    for name in names:
        entry = entries.get(name)
        if entry is None:
            continue
        with archive.local_copy(entry) as path:
            source = VideoSource(path, entry.video_id)
            timings[name] = VideoTiming(source.fps, source.n_frames)
    return timings


def check_snippets(path: str, snippets: int, frames: int) -> None:
    """A video of n frames has floor(n / 16) full snippets, ceil(n / 16) when the last partial one is kept; any
    other count is the classic off-by-one-snippet (or wrong video) error, refused with both lengths."""
    allowed = set(snippet_counts(frames, SNIPPET))
    if snippets not in allowed:
        raise FeatureFileError(
            f"{path}: {snippets} snippets ({snippets * SNIPPET} frames) but its video has {frames} frames, i.e. "
            f"{' or '.join(str(n) for n in sorted(allowed))} snippets of {SNIPPET}: features of another video, or "
            "an off-by-one snippet"
        )


def import_features(
    source: str,
    out: OutputStore,
    layout: str,
    name: str | None = None,
    fps: float = 30.0,
    videos_url: str | None = None,
    listed: list[str] | None = None,
    as_extractor: ExtractorSpec | None = None,
    storage_options=None,
    on_video: Callable[[str], None] | None = None,
) -> ImportResult:
    """Every video of a public feature folder -> `<out>/features/<extractor_id>/<video id>.parquet`."""
    if fps <= 0:
        raise UsageError(f"fps: must be positive, got {fps}")
    videos = read_layout(source, layout, storage_options, listed)
    _, (_, sample) = next(iter(videos.items()))
    crops, dim = sample.shape[1], sample.shape[2]
    if as_extractor is not None:
        spec = dataclasses.replace(as_extractor, clip_len=SNIPPET, stride=SNIPPET, crops=crops)
        check_spec(spec)
        extractor_id, spec_json = spec.extractor_id, json.dumps(dataclasses.asdict(spec))
    else:
        tag = safe_name(name or f"{layout}-import", "name")
        extractor_id, spec_json = f"{tag}-c{SNIPPET}s{SNIPPET}" + (f"-x{crops}" if crops > 1 else ""), None
    timings = video_timings(videos_url, list(videos), storage_options) if videos_url else {}
    for vid, (path, array) in videos.items():
        t = len(array)
        timing = timings.get(vid, VideoTiming(fps, t * SNIPPET))
        check_snippets(path, t, timing.frame_count)
        starts = np.arange(t, dtype=np.int64) * SNIPPET
        frame_count = max(timing.frame_count, t * SNIPPET)
        meta = {
            "extractor_id": extractor_id,
            "fps": timing.fps,
            "frame_count": frame_count,
            "fingerprint": "sha256:" + hashlib.sha256(array.tobytes()).hexdigest()[:16],
            "video_id": vid,
            "source_url": "",
            "imported_from": path,
            "import_layout": layout,
            "weights": "imported",
            **({"extractor_spec": spec_json} if spec_json else {}),
        }
        table = feature_table(vid, starts, starts + SNIPPET, starts + SNIPPET // 2, timing.fps, array.mean(1), meta,
                              crops=array if crops > 1 else None)  # fmt: skip
        out.write_table(out.features(extractor_id, vid), table)
        if on_video:
            on_video(vid)
    return ImportResult(extractor_id, list(videos), crops, dim, out.features_dir(extractor_id))


def export_features(
    store: OutputStore, extractor_id: str, target: str, layout: str, storage_options=None
) -> tuple[list[str], str]:
    """The features of one extractor in a public layout under `target` (a video id's folders kept, its extension
    dropped), plus `<extractor_id>.list` naming every file written. Returns (files, list file)."""
    if layout not in LAYOUTS:
        raise UsageError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
    ids = store.video_ids(store.features_dir(extractor_id))
    if not ids:
        raise NotFound(f"no feature tables under {store.features_dir(extractor_id)}")
    fs, root = filesystem(target, storage_options)
    root = root.rstrip("/")
    written = []
    for vid in ids:
        table = store.read_table(store.features(extractor_id, vid))
        starts, ends = table.column("start_frame"), table.column("end_frame")
        if len(starts) and not (
            np.array_equal(starts, np.arange(len(starts)) * SNIPPET) and (ends - starts == SNIPPET).all()
        ):
            raise UsageError(
                f"features of {vid} are not 16-frame non-overlapping clips from frame 0, which the {layout} layout "
                "means; extract with --clip-len 16 --stride 16"
            )
        crops = table.crop_features
        per_crop = crops if crops is not None else table.features[:, None]
        stem = posixpath.splitext(vid)[0] if posixpath.splitext(vid)[1].lower() in VIDEO_SUFFIXES else vid
        outputs = (
            [(f"{stem}_i3d.npy", per_crop if crops is not None else table.features)]
            if layout == "rtfm"
            else [(f"{stem}__{k}.npy", per_crop[:, k]) for k in range(per_crop.shape[1])]
        )
        for rel, array in outputs:
            path = f"{root}/{rel}"
            fs.makedirs(posixpath.dirname(path), exist_ok=True)
            buf = io.BytesIO()
            np.save(buf, np.ascontiguousarray(array, np.float32))
            with fs.open(path, "wb") as f:
                f.write(buf.getvalue())
            written.append(path)
    list_file = f"{root}/{extractor_id}.list"
    with fs.open(list_file, "wb") as f:
        f.write(("\n".join(written) + "\n").encode())
    return written, list_file
