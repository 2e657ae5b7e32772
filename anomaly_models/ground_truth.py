"""Frame-level ground truth and frame scores, with the conventions that make published numbers disagree written
down and checked.

- Segments are half-open frame ranges [start, end) here. UCF-Crime's `Temporal_Anomaly_Annotation.txt` gives the
  first and last abnormal frame, both included (`Abuse028_x264 Abuse 165 240 -1 -1` labels frames 165..240, 76
  frames), so its end becomes end + 1; -1 -1 marks no segment. Seconds (V2 JSON, CSV) become frames by rounding
  start * fps and end * fps ([start, end)). Ranges past the video's end are clipped to it.
- Snippet features (16 frames each, the public I3D/C3D sets) of an n-frame video number floor(n / 16) when the
  partial last snippet is dropped, ceil(n / 16) when it is kept. Scores are expanded to frames by repeating each
  snippet's score over its 16 frames; the result is cut to n frames (ceil) or the frames of the dropped partial
  snippet take the last snippet's score (floor). Any other count is refused naming the video and both lengths: it
  is the classic off-by-one-snippet error (or the features of another video), which silently shifts every label.
- Clips of any length and stride (this pipeline's tables) expand the same way: each frame takes the score of the
  last clip that starts at or before it (its own clip; the later one where clips overlap; the last clip for frames
  after it, as with a dropped partial snippet). Scores that claim frames
  past the video's end, or leave a whole clip's worth of frames at its end unscored, are refused the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import RefusedJob

SNIPPET = 16


class LengthMismatch(RefusedJob):
    """Scores and ground truth of one video do not have lengths that fit each other; names the video and both."""


def frame_labels(ranges: Sequence[tuple[int, int]], n_frames: int) -> np.ndarray:
    """0/1 per frame of an n-frame video, 1 inside any [start, end) range (clipped to the video)."""
    labels = np.zeros(n_frames, dtype=np.int64)
    for start, end in ranges:
        labels[max(int(start), 0) : min(int(end), n_frames)] = 1
    return labels


def inclusive_to_ranges(segments: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """UCF-Crime txt segments (first, last frame, both included) as [start, end) ranges."""
    return [(int(s), int(e) + 1) for s, e in segments]


def snippet_counts(n_frames: int, snippet: int = SNIPPET) -> tuple[int, int]:
    """The snippet counts an n-frame video may have: floor (partial last snippet dropped) and ceil (kept)."""
    return n_frames // snippet, -(-n_frames // snippet)


def expand_snippets(scores, n_frames: int, snippet: int = SNIPPET, video: str = "") -> np.ndarray:
    """Per-snippet scores -> per-frame scores of an n-frame video (module docstring); LengthMismatch otherwise."""
    values = np.asarray(scores, dtype=np.float64).ravel()
    allowed = snippet_counts(n_frames, snippet)
    if len(values) not in allowed or not len(values):
        counts = " or ".join(str(c) for c in sorted(set(allowed)))
        raise LengthMismatch(
            f"{video or 'video'}: {len(values)} snippet scores ({len(values) * snippet} frames) but the ground truth "
            f"has {n_frames} frames, i.e. {counts} snippets of {snippet}: scores of another video, or an off-by-one "
            "snippet"
        )
    frames = np.repeat(values, snippet)[:n_frames]
    return np.r_[frames, np.full(n_frames - len(frames), values[-1])]


def clip_frame_scores(values, start_frames, end_frames, n_frames: int, video: str = "") -> np.ndarray:
    """Per-clip scores with their [start, end) frames -> per-frame scores of an n-frame video (module docstring)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    starts, ends = np.asarray(start_frames, np.int64).ravel(), np.asarray(end_frames, np.int64).ravel()
    if not len(values):
        raise LengthMismatch(f"{video or 'video'}: no clip scores for a video of {n_frames} frames")
    last_end = int(ends.max())
    longest = int(max((ends - starts).max(), np.diff(starts).max(initial=0)))
    if last_end > n_frames or n_frames - last_end >= max(longest, 1):
        raise LengthMismatch(
            f"{video or 'video'}: scores cover frames 0..{last_end} ({len(values)} clips of up to {longest} frames) "
            f"but the ground truth has {n_frames} frames: scores of another video, or clips lost at its end"
        )
    order = np.argsort(starts, kind="stable")
    owner = np.searchsorted(starts[order], np.arange(n_frames), side="right") - 1
    return values[order][np.maximum(owner, 0)]
