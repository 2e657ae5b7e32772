"""Temporal annotation readers and matching to video ids.

Formats:
  - UCF-Crime `Temporal_Anomaly_Annotation.txt`: `name class s1 e1 s2 e2` in frames, -1 = none (end inclusive);
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


class AnnotationError(UsageError):
    """An annotation file that cannot be read; the message names the file (and line or key)."""


@dataclass
class VideoAnnotation:
    name: str
    label_class: str
    segments: list[tuple[float, float]] = field(default_factory=list)
    unit: str = "seconds"  # or "frames" (end inclusive, UCF-Crime txt)

    def frame_ranges(self, fps: float) -> list[tuple[int, int]]:
        """Segments as [start, end) frame ranges."""
        if self.unit == "frames":
            return [(int(s), int(e) + 1) for s, e in self.segments]
        return [(int(round(s * fps)), int(round(e * fps))) for s, e in self.segments]

    def frame_labels(self, n_frames: int, fps: float) -> np.ndarray:
        labels = np.zeros(n_frames, dtype=np.int64)
        for s, e in self.frame_ranges(fps):
            labels[max(s, 0) : min(e, n_frames)] = 1
        return labels

    def clip_labels(self, start_frames, end_frames, n_frames: int, fps: float) -> np.ndarray:
        """A clip is abnormal when most of its frames lie inside an annotated segment."""
        frames = self.frame_labels(max(n_frames, int(np.max(end_frames, initial=0))), fps)
        return np.array(
            [1.0 if frames[s:e].mean() > 0.5 else 0.0 for s, e in zip(start_frames, end_frames)], dtype=np.float32
        )


def read_ucf_txt(path: str) -> dict[str, VideoAnnotation]:
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 6:
                raise AnnotationError(f"{path}: expected 'name class s1 e1 s2 e2', got {line.strip()!r}")
            name, cls, *nums = parts
            s1, e1, s2, e2 = (int(n) for n in nums)
            segs: list[tuple[float, float]] = [(s, e) for s, e in ((s1, e1), (s2, e2)) if s >= 0 and e >= 0]
            out[name] = VideoAnnotation(name, cls, segs, "frames")
    return out


def _class_of(name: str) -> str:
    head = name.split("/")[0] if "/" in name else ""
    return "Normal" if "normal" in head.lower() else (head or "Unknown")


def read_v2_json(path: str) -> dict[str, VideoAnnotation]:
    with open(path) as f:
        data = json.load(f)
    return {
        name: VideoAnnotation(name, _class_of(name), [(float(s["start"]), float(s["end"])) for s in segs])
        for name, segs in data.items()
    }


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
                    ann.segments.append((float(start), float(end)))
                except ValueError:
                    raise AnnotationError(
                        f"{path}:{line}: start_s/end_s must be numbers, got {start!r}, {end!r}"
                    ) from None
    return out


def load_annotations(paths: str) -> dict[str, VideoAnnotation]:
    """One file, or several joined by commas (e.g. abnormal/test.json,normal/test.json). A name annotated
    differently in two files is an error."""
    out: dict[str, VideoAnnotation] = {}
    for path in [p.strip() for p in paths.split(",") if p.strip()]:
        if not os.path.isfile(path):
            raise AnnotationError(f"annotations: file not found: {path}")
        if path.endswith(".json"):
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


def _stem(p: str) -> str:
    return posixpath.splitext(posixpath.basename(p))[0]


def match_annotations(annotations: dict[str, VideoAnnotation], video_ids) -> Matching:
    ids = list(video_ids)
    by_noext: dict[str, list[str]] = {}
    by_stem: dict[str, list[str]] = {}
    for vid in ids:
        by_noext.setdefault(posixpath.splitext(vid)[0], []).append(vid)
        by_stem.setdefault(_stem(vid), []).append(vid)
    matched, unmatched, ambiguous = {}, [], []
    for name, ann in annotations.items():
        if name in ids:
            candidates = [name]
        else:
            candidates = by_noext.get(posixpath.splitext(name)[0]) or by_stem.get(_stem(name)) or []
        if len(candidates) == 1:
            matched[candidates[0]] = ann
        elif candidates:
            ambiguous.append(name)
        else:
            unmatched.append(name)
    return Matching(matched, sorted(unmatched), sorted(ambiguous), sorted(set(ids) - set(matched)))
