import numpy as np
import pytest

from anomaly_models.windows import make_windows, stitch, window_starts


@pytest.mark.parametrize("length", [1, 5, 8, 9, 17, 100])
def test_every_clip_covered(length):
    wins = make_windows(np.arange(length, dtype=np.float32)[:, None], 8)
    covered = np.zeros(length, int)
    for s, m, f in zip(wins.starts, wins.mask, wins.features):
        n = int(m.sum())
        covered[s : s + n] += 1
        np.testing.assert_array_equal(f[:n, 0], np.arange(s, s + n))
        assert np.all(f[n:] == 0)
    assert covered.min() >= 1


def test_short_video_is_one_padded_window():
    wins = make_windows(np.ones((3, 2), np.float32), 8)
    assert wins.features.shape == (1, 8, 2) and wins.mask[0].tolist() == [True] * 3 + [False] * 5
    wins1 = make_windows(np.ones((1, 2), np.float32), 8)
    assert wins1.features.shape == (1, 8, 2) and wins1.mask.sum() == 1


def test_stitch_hand_computed_averages():
    # T=6, W=4, stride 2: windows at 0 and 2 -> clips 2,3 covered twice
    assert window_starts(6, 4) == [0, 2]
    scores = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]])
    out = stitch(scores, np.array([0, 2]), 6)
    np.testing.assert_allclose(out, [0.1, 0.2, 0.4, 0.5, 0.7, 0.8], rtol=1e-6)


def test_stitch_ignores_padding_of_tail_window():
    # T=5, W=4: windows at 0 and 2 (2 covers 2,3,4 + one padded slot)
    assert window_starts(5, 4) == [0, 2]
    out = stitch(np.array([[1.0, 1, 1, 1], [0.0, 0, 0, 9]]), np.array([0, 2]), 5)
    np.testing.assert_allclose(out, [1, 1, 0.5, 0.5, 0])
