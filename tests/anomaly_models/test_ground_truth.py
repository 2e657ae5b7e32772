"""Ground-truth conventions: inclusive UCF-Crime ends, snippet expansion (floor and ceil counts), clip expansion,
and the length checks that refuse the off-by-one-snippet error with the video and both lengths."""

import numpy as np
import pytest

from anomaly_models.errors import RefusedJob
from anomaly_models.ground_truth import (
    LengthMismatch,
    clip_frame_scores,
    expand_snippets,
    frame_labels,
    inclusive_to_ranges,
    snippet_counts,
)


def test_inclusive_ends_label_the_last_frame():
    labels = frame_labels(inclusive_to_ranges([(2, 4), (8, 8)]), 10)
    assert labels.tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 1, 0]  # 8..8 is a one-frame segment
    assert frame_labels([(7, 40)], 10).tolist() == [0] * 7 + [1] * 3  # clipped to the video
    assert frame_labels([], 3).tolist() == [0, 0, 0]


def test_snippet_counts_floor_and_ceil():
    assert snippet_counts(200) == (12, 13)
    assert snippet_counts(192) == (12, 12)
    assert snippet_counts(5) == (0, 1)


def test_expand_snippets_both_conventions():
    kept = expand_snippets(np.arange(13) / 10, 200)  # ceil: the 13th snippet covers frames 192..199
    assert len(kept) == 200 and kept[191] == pytest.approx(1.1) and kept[192] == pytest.approx(1.2)
    dropped = expand_snippets(np.arange(12) / 10, 200)  # floor: frames 192..199 take the last snippet's score
    assert len(dropped) == 200 and dropped[0:16].tolist() == [0.0] * 16 and set(dropped[176:]) == {1.1}


@pytest.mark.parametrize("count", [0, 11, 14])
def test_snippet_count_mismatch_is_refused_with_both_lengths(count):
    with pytest.raises(LengthMismatch) as err:
        expand_snippets(np.zeros(count), 200, video="Arson011_x264")
    message = str(err.value)
    assert "Arson011_x264" in message and f"{count} snippet scores" in message and "200 frames" in message
    assert "12 or 13 snippets" in message and isinstance(err.value, RefusedJob)


def test_clip_expansion_overlaps_tail_and_refusals():
    # clips of 8 frames every 4 (overlapping): each frame takes the last clip starting at or before it
    frames = clip_frame_scores([0.1, 0.2, 0.3], [0, 4, 8], [8, 12, 16], 18)
    assert frames.tolist() == pytest.approx([0.1] * 4 + [0.2] * 4 + [0.3] * 10)
    with pytest.raises(LengthMismatch, match=r"v\.mp4: scores cover frames 0\.\.16 .* ground truth has 40 frames"):
        clip_frame_scores([0.1, 0.2], [0, 8], [8, 16], 40, "v.mp4")  # whole clips missing at the end
    with pytest.raises(LengthMismatch, match="ground truth has 12 frames"):
        clip_frame_scores([0.1, 0.2], [0, 8], [8, 16], 12, "v.mp4")  # scores past the end
    with pytest.raises(LengthMismatch, match="no clip scores"):
        clip_frame_scores([], [], [], 12, "v.mp4")
