"""Temporal annotation readers and matching to video ids.

Formats:
  - UCF-Crime `Temporal_Anomaly_Annotation.txt`: `name class s1 e1 s2 e2` in frames, -1 = none (end inclusive);
    conventions: `anomaly_models.ground_truth`;
  - UCF-Crime V2 JSON: {"Class/Video.mp4": [{"start": s, "end": e}, ...]} in seconds ([] = normal);
  - CSV: `video_id,start_s,end_s` with a header; a row with empty start/end marks a normal video.
Matching names to video ids is explicit: exact id, then id without extension, then file stem; names that match no
video or more than one are reported, never silently dropped.
"""

from __future__ import annotations

import csv
import json
import os
import posixpath
from dataclasses import dataclass, field

import numpy as np

from anomaly_models.errors import UsageError
from anomaly_models.ground_truth import frame_labels, inclusive_to_ranges


class AnnotationError(UsageError):
    """An annotation file that cannot be read; the message names the file (and line or key)."""


@dataclass
class VideoAnnotation:
    name: str
    label_class: str
    segments: list[tuple[float, float]] = field(default_factory=list)
    unit: str = "seconds"  # or "frames" (end inclusive, UCF-Crime txt)
    problems: list[str] = field(default_factory=list)  # invalid segments: the video cannot be labelled

    def add(self, start: float, end: float, where: str) -> None:
        self.segments.append((start, end))
        problem = segment_problem(start, end, where)
        if problem:
            self.problems.append(problem)

    def frame_ranges(self, fps: float) -> list[tuple[int, int]]:
        """Segments as [start, end) frame ranges."""
        if self.unit == "frames":
            return inclusive_to_ranges([(int(s), int(e)) for s, e in self.segments])
        return [(int(round(s * fps)), int(round(e * fps))) for s, e in self.segments]

    def frame_labels(self, n_frames: int, fps: float) -> np.ndarray:
        return frame_labels(self.frame_ranges(fps), n_frames)

    def clip_labels(self, start_frames, end_frames, n_frames: int, fps: float) -> np.ndarray:
        """A clip is abnormal when most of its frames lie inside an annotated segment."""
        frames = self.frame_labels(max(n_frames, int(np.max(end_frames, initial=0))), fps)
        return np.array(
            [1.0 if frames[s:e].mean() > 0.5 else 0.0 for s, e in zip(start_frames, end_frames)], dtype=np.float32
        )


def read_ucf_txt(path: str) -> dict[str, VideoAnnotation]:
    out: dict[str, VideoAnnotation] = {}
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            where = f"{path}:{number}"
            if len(parts) != 6:
                raise AnnotationError(f"{where}: expected 'name class s1 e1 s2 e2', got {line.strip()!r}")
            name, cls, *nums = parts
            try:
                s1, e1, s2, e2 = (int(n) for n in nums)
            except ValueError:
                raise AnnotationError(f"{where}: frame numbers must be integers, got {nums}") from None
            ann = out[name] = VideoAnnotation(name, cls, unit="frames")
            for s, e in ((s1, e1), (s2, e2)):
                if (s, e) != (-1, -1):  # -1 -1: no segment; frames, end inclusive (a one-frame segment has e == s)
                    ann.add(s, e, where)
    return out


def _class_of(name: str) -> str:
    head = name.split("/")[0] if "/" in name else ""
    return "Normal" if "normal" in head.lower() else (head or "Unknown")


def segment_problem(start: float, end: float, where: str) -> str | None:
    """Why a segment is invalid (negative, or ending before it starts), naming where it is; None when valid.
    Zero-length segments are valid (the public UCF-Crime V2 files hold some; they label no frame), and segments
    past a video's end are clipped to it when labels are made, so annotations in seconds need not know exact
    durations. A video with an invalid segment is left out of training and evaluation and reported (`Matching.
    invalid`): labelling it anyway would teach or score the wrong thing, silently."""
    if start < 0 or end < 0:
        return f"{where}: negative time in segment ({start:g}, {end:g})"
    if end < start:
        return f"{where}: segment ends before it starts ({start:g}, {end:g})"
    return None


def read_v2_json(path: str) -> dict[str, VideoAnnotation]:
    with open(path) as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise AnnotationError(f'{path}: expected an object {{"Class/Video.mp4": [{{"start": s, "end": e}}]}}')
    out = {}
    for name, segs in data.items():
        where = f"{path}: {name!r}"
        if not isinstance(segs, list):
            raise AnnotationError(f'{where}: expected a list of {{"start": s, "end": e}}, got {segs!r}')
        ann = out[name] = VideoAnnotation(name, _class_of(name))
        for seg in segs:
            if not isinstance(seg, dict) or not {"start", "end"} <= set(seg):
                raise AnnotationError(f"{where}: each segment needs 'start' and 'end' (seconds), got {seg!r}")
            try:
                start, end = float(seg["start"]), float(seg["end"])
            except (TypeError, ValueError):
                raise AnnotationError(f"{where}: 'start' and 'end' must be numbers, got {seg!r}") from None
            ann.add(start, end, where)
    return out


def read_csv(path: str) -> dict[str, VideoAnnotation]:
    out: dict[str, VideoAnnotation] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"video_id", "start_s", "end_s"} - set(reader.fieldnames or [])
        if missing:
            raise AnnotationError(f"{path}: CSV header needs video_id,start_s,end_s; missing {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            vid = (row["video_id"] or "").strip()
            ann = out.setdefault(vid, VideoAnnotation(vid, row.get("class") or _class_of(vid)))
            start, end = (row["start_s"] or "").strip(), (row["end_s"] or "").strip()
            if start or end:
                try:
                    segment = float(start), float(end)
                except ValueError:
                    raise AnnotationError(
                        f"{path}:{line}: start_s/end_s must be numbers, got {start!r}, {end!r}"
                    ) from None
                ann.add(*segment, where=f"{path}:{line}")
    return out


def load_annotations(paths: str, storage_options: dict | None = None) -> dict[str, VideoAnnotation]:
    """One file, or several joined by commas (e.g. abnormal/test.json,normal/test.json), or analysts' reviews: a
    folder `<out>/reviews/<model_id>` (local or remote; tasks/jobs/reviews.py). A name annotated differently in two
    files is an error."""
    out: dict[str, VideoAnnotation] = {}
    for path in [p.strip() for p in paths.split(",") if p.strip()]:
        if posixpath.basename(posixpath.dirname(path.rstrip("/"))) == "reviews":
            from ..store.output import OutputStore
            from .reviews import review_annotations

            store, model_id = OutputStore.locate(path, "reviews", storage_options)
            anns = review_annotations(store, model_id)
        elif not os.path.isfile(path):
            raise AnnotationError(f"annotations: file not found: {path}")
        elif path.endswith(".json"):
            try:
                anns = read_v2_json(path)
            except json.JSONDecodeError as exc:
                raise AnnotationError(f"{path}: not valid JSON ({exc})") from None
        elif path.endswith(".csv"):
            anns = read_csv(path)
        elif path.endswith(".txt"):
            anns = read_ucf_txt(path)
        else:
            raise AnnotationError(f"annotations: unknown annotation format: {path} (expected .txt, .json or .csv)")
        for name, ann in anns.items():
            if name in out and out[name].segments != ann.segments:
                raise AnnotationError(f"{name} is annotated differently in {path} and an earlier file")
            out[name] = ann
    return out


@dataclass
class Matching:
    matched: dict[str, VideoAnnotation]  # video_id -> annotation
    unmatched_names: list[str]  # annotation names with no video
    ambiguous_names: list[str]  # annotation names matching several videos
    unannotated_ids: list[str]  # videos with no annotation
    invalid: dict[str, list[str]] = field(default_factory=dict)  # video_id -> its annotation's problems (left out)


def _stem(p: str) -> str:
    return posixpath.splitext(posixpath.basename(p))[0]


def match_annotations(annotations: dict[str, VideoAnnotation], video_ids) -> Matching:
    ids = list(video_ids)
    by_noext: dict[str, list[str]] = {}
    by_stem: dict[str, list[str]] = {}
    for vid in ids:
        by_noext.setdefault(posixpath.splitext(vid)[0], []).append(vid)
        by_stem.setdefault(_stem(vid), []).append(vid)
    matched, unmatched, ambiguous, invalid = {}, [], [], {}
    for name, ann in annotations.items():
        if name in ids:
            candidates = [name]
        else:
            candidates = by_noext.get(posixpath.splitext(name)[0]) or by_stem.get(_stem(name)) or []
        if len(candidates) == 1 and ann.problems:
            invalid[candidates[0]] = ann.problems
        elif len(candidates) == 1:
            matched[candidates[0]] = ann
        elif candidates:
            ambiguous.append(name)
        else:
            unmatched.append(name)
    unannotated = sorted(set(ids) - set(matched) - set(invalid))
    return Matching(matched, sorted(unmatched), sorted(ambiguous), unannotated, invalid)
