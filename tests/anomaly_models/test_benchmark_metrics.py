import numpy as np
import pytest
from sklearn.metrics import auc, average_precision_score, precision_recall_curve

from anomaly_models.benchmark_metrics import (
    abnormal_video_auc,
    average_precision,
    bootstrap_interval,
    detection_map,
    false_alarm_rate,
    per_class,
    pr_auc_trapezoid,
)
from anomaly_models.metrics import frame_auc, roc_auc

# ---------------------------------------------------------------- average precision / trapezoidal PR area


def test_trapezoid_and_average_precision_differ_hand_worked():
    labels, scores = [1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6]
    # thresholds .9 .8 .7 .6 -> (R, P) = (.5, 1), (.5, 1/2), (1, 2/3), (1, 1/2); plus (0, 1)
    # AP = .5 * 1 + 0 * 1/2 + .5 * 2/3 + 0 * 1/2 = 5/6
    # trapezoid: (0,1)-(.5,1): .5; (.5,1)-(.5,.5): 0; (.5,.5)-(1,2/3): .5 * (1/2 + 2/3) / 2 = 7/24; (1,2/3)-(1,1/2): 0
    #            = 12/24 + 7/24 = 19/24
    assert average_precision(labels, scores) == pytest.approx(5 / 6, abs=1e-12)
    assert pr_auc_trapezoid(labels, scores) == pytest.approx(19 / 24, abs=1e-12)


def test_tied_scores_enter_together():
    labels, scores = [1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1]
    # thresholds .9 .5 .1 -> (R, P) = (.5, 1), (1, 2/3), (1, 1/2): the tied positive and negative enter together
    # AP = .5 * 1 + .5 * 2/3 = 5/6 (1.0 if the tied positive were ranked first)
    # trapezoid: (0,1)-(.5,1): .5; (.5,1)-(1,2/3): .5 * (1 + 2/3) / 2 = 5/12 -> 11/12
    assert average_precision(labels, scores) == pytest.approx(5 / 6, abs=1e-12)
    assert pr_auc_trapezoid(labels, scores) == pytest.approx(11 / 12, abs=1e-12)
    # order of the tied samples in the input does not matter
    assert average_precision([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(5 / 6, abs=1e-12)


def test_all_scores_equal():
    # one threshold: (R, P) = (1, 1/2); AP = 1/2; trapezoid (0,1)-(1,1/2) = 3/4
    assert average_precision([1, 0, 0, 1], [0.5] * 4) == pytest.approx(0.5)
    assert pr_auc_trapezoid([1, 0, 0, 1], [0.5] * 4) == pytest.approx(0.75)


def test_all_abnormal_and_all_normal():
    assert average_precision([1, 1, 1], [0.1, 0.2, 0.3]) == pytest.approx(1.0)
    assert pr_auc_trapezoid([1, 1, 1], [0.1, 0.2, 0.3]) == pytest.approx(1.0)
    assert average_precision([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert pr_auc_trapezoid([0, 0, 0], [0.1, 0.2, 0.3]) is None
    assert average_precision([], []) is None
    # perfect and worst rankings
    assert average_precision([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(1.0)
    # worst: thresholds .4 .3 .2 .1 -> (R, P) = (0, 0), (0, 0), (1/2, 1/3), (1, 1/2); AP = .5/3 + .5/2 = 5/12
    assert average_precision([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == pytest.approx(5 / 12)


def test_length_mismatch_raises():
    with pytest.raises(ValueError):
        average_precision([1, 0], [0.1])


@pytest.mark.parametrize("seed", range(20))
def test_matches_sklearn_with_many_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 80))
    scores = np.round(rng.random(n), 1)  # at most 11 distinct values: many ties
    labels = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
    labels[int(rng.integers(n))] = 1  # at least one positive
    if seed % 5 == 0:
        scores = rng.integers(0, 3, n).astype(float)  # only 3 levels
    assert average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    precision, recall, _ = precision_recall_curve(labels, scores)
    assert pr_auc_trapezoid(labels, scores) == pytest.approx(auc(recall, precision), abs=1e-12)


# ---------------------------------------------------------------- false alarm rate


def test_false_alarm_rate_hand_case():
    # 0.6 and 0.7 are above 0.5; 0.5 itself is not (strictly greater) -> 2 of 5 frames
    assert false_alarm_rate([[0.1, 0.6, 0.7], np.array([0.5, 0.2])], threshold=0.5) == pytest.approx(0.4)
    assert false_alarm_rate([[0.1, 0.6, 0.7], [0.5, 0.2]], threshold=0.05) == pytest.approx(1.0)
    assert false_alarm_rate([[0.1, 0.6, 0.7], [0.5, 0.2]], threshold=0.9) == 0.0


def test_false_alarm_rate_without_frames_is_none():
    assert false_alarm_rate([]) is None
    assert false_alarm_rate([[], np.array([])]) is None


# ---------------------------------------------------------------- detection mAP


def test_detection_map_two_videos_iou_04():
    # video A: GT [0, 4), prediction [2, 5) with confidence .9: IoU = 2 / 5 = 0.4
    # video B: GT [2, 6), prediction [2, 6) with confidence .8: IoU = 1
    targets = [np.r_[np.ones(4), np.zeros(6)], np.r_[np.zeros(2), np.ones(4), np.zeros(4)]]
    predictions = [np.full(10, 0.1), np.full(10, 0.1)]
    predictions[0][2:5] = 0.9
    predictions[1][2:6] = 0.8
    result = detection_map(predictions, targets, threshold=0.5)
    # t <= 0.4: ranks A (TP, P=1/1), B (TP, P=2/2) -> AP = (1 + 1) / 2 = 100%
    for t in (0.1, 0.2, 0.3, 0.4):
        assert result[t] == pytest.approx(100.0)
    # t = 0.5: A is an FP, B a TP at rank 2 (P = 1/2) -> AP = (1/2) / 2 = 25%
    assert result[0.5] == pytest.approx(25.0)
    assert result["mean"] == pytest.approx((4 * 100 + 25) / 5)
    # ranking matters: with A less confident than B, B is TP at rank 1 -> AP at .5 = 1 / 2 = 50%
    predictions[0] = np.where(predictions[0] > 0.5, 0.7, 0.1)
    assert detection_map(predictions, targets, threshold=0.5)[0.5] == pytest.approx(50.0)


def test_detection_map_confidence_is_mean_frame_score():
    # video 0 has no GT (its segment is an FP), video 1's segment matches its GT exactly (TP)
    targets = [np.zeros(4), np.array([1, 1, 0, 0])]
    predictions = [np.array([0.65, 0.55, 0, 0]), np.array([0.7, 0.7, 0, 0])]
    # means .6 < .7: the TP ranks first -> AP = 1 / 1
    assert detection_map(predictions, targets, iou_thresholds=(0.5,))[0.5] == pytest.approx(100.0)
    predictions = [np.array([0.95, 0.55, 0, 0]), np.array([0.74, 0.74, 0, 0])]
    # video 0: max .95, mean .75; video 1: max .74, mean .74 -> by mean the FP ranks first: AP = 1/2 / 1 = 50%
    assert detection_map(predictions, targets, iou_thresholds=(0.5,))[0.5] == pytest.approx(50.0)


def test_detection_map_ties_in_confidence_are_stable():
    # equal confidences keep video order: the FP in video 0 ranks before the TP in video 1
    targets = [np.zeros(4), np.array([0, 1, 1, 0])]
    predictions = [np.array([0, 0.8, 0.8, 0]), np.array([0, 0.8, 0.8, 0])]
    assert detection_map(predictions, targets, iou_thresholds=(0.5,))[0.5] == pytest.approx(50.0)
    assert detection_map(predictions[::-1], targets[::-1], iou_thresholds=(0.5,))[0.5] == pytest.approx(100.0)


def test_detection_map_matches_best_unmatched_ground_truth_once():
    # GT G1 = [0, 6), G2 = [7, 20); predictions p1 = [0, 3) conf .9, p2 = [4, 9) conf .6
    # p1: IoU(G1) = 3/6 = .5 -> TP, G1 used.  p2: IoU(G1) = 2/9 = .222, IoU(G2) = 2/16 = .125
    # p2's best GT (G1) is used, so it is matched with the best unmatched one, G2, when .125 >= t
    target = np.r_[np.ones(6), 0, np.ones(13)]
    scores = np.full(20, 0.1)
    scores[0:3] = 0.9
    scores[4:9] = 0.6
    result = detection_map([scores], [target], iou_thresholds=(0.1, 0.2, 0.5, 0.6))
    assert result[0.1] == pytest.approx(100.0)  # (1/1 + 2/2) / 2
    assert result[0.2] == pytest.approx(50.0)  # p1 TP (1/1), p2 FP -> 1 / 2
    assert result[0.5] == pytest.approx(50.0)
    assert result[0.6] == pytest.approx(0.0)
    assert result["mean"] == pytest.approx(50.0)
    # a second prediction on an already matched GT segment is an FP
    result = detection_map([np.array([0.9, 0.9, 0.1, 0.7])], [np.ones(4)], iou_thresholds=(0.1,))
    # p1 [0, 2) IoU .5 TP (P 1/1), p2 [3, 4) IoU .25 but GT used -> FP; AP = 1 / 1
    assert result[0.1] == pytest.approx(100.0)


def test_detection_map_empty_predictions_give_zero():
    targets = [np.array([0, 0, 1, 1, 0])]
    result = detection_map([np.full(5, 0.2)], targets, threshold=0.5)
    assert all(result[t] == 0.0 for t in (0.1, 0.2, 0.3, 0.4, 0.5))
    assert result["mean"] == 0.0
    # a score equal to the threshold is not above it
    assert detection_map([np.full(5, 0.5)], targets, threshold=0.5)["mean"] == 0.0


def test_detection_map_all_normal_is_none_and_all_abnormal_is_perfect():
    result = detection_map([np.full(5, 0.9), np.zeros(3)], [np.zeros(5), np.zeros(3)])
    assert set(result) == {0.1, 0.2, 0.3, 0.4, 0.5, "mean"}
    assert all(v is None for v in result.values())
    result = detection_map([np.full(5, 0.9)], [np.ones(5)])
    assert all(v == pytest.approx(100.0) for v in result.values())
    # all abnormal but scores below the threshold -> 0
    assert detection_map([np.full(5, 0.1)], [np.ones(5)])["mean"] == 0.0


def test_detection_map_length_mismatch_raises():
    with pytest.raises(ValueError):
        detection_map([np.zeros(3)], [])
    with pytest.raises(ValueError):
        detection_map([np.zeros(3)], [np.zeros(4)])


# ---------------------------------------------------------------- bootstrap


def _videos(seed=0, n=40):
    rng = np.random.default_rng(seed)
    videos = []
    for _ in range(n):
        length = int(rng.integers(20, 60))
        target = np.zeros(length, dtype=int)
        if rng.random() < 0.5:
            start = int(rng.integers(0, length - 10))
            target[start : start + 10] = 1
        scores = np.clip(0.3 * target + rng.normal(0.4, 0.2, length), 0, 1)
        videos.append((scores, target))
    return videos


def _pooled_auc(items):
    return frame_auc([s for s, _ in items], [t for _, t in items])


def test_bootstrap_contains_point_estimate_and_is_reproducible():
    videos = _videos()
    point = _pooled_auc(videos)
    assert point is not None
    low, high = bootstrap_interval(_pooled_auc, videos, resamples=200, seed=0)
    assert low is not None and high is not None
    assert low <= point <= high
    assert bootstrap_interval(_pooled_auc, videos, resamples=200, seed=0) == (low, high)
    assert bootstrap_interval(_pooled_auc, videos, resamples=200, seed=1) != (low, high)
    narrow = bootstrap_interval(_pooled_auc, videos, resamples=200, seed=0, level=0.5)
    assert narrow[0] is not None and narrow[1] is not None
    assert low <= narrow[0] <= narrow[1] <= high


def test_bootstrap_definition_and_none_skipping():
    items = [1.0, 2.0, 3.0, 4.0, 5.0]
    rng = np.random.default_rng(7)
    means = [np.mean([items[i] for i in rng.integers(0, 5, size=5)]) for _ in range(50)]
    expected = np.percentile(means, [5.0, 95.0])
    got = bootstrap_interval(lambda xs: float(np.mean(xs)), items, resamples=50, seed=7, level=0.9)
    assert got == pytest.approx(tuple(expected), abs=1e-12)
    # None results are skipped: only resamples containing item 5.0 count, so the low end is >= mean with one 5
    low, _ = bootstrap_interval(lambda xs: float(np.mean(xs)) if 5.0 in xs else None, items, resamples=200)
    assert low is not None and low >= (1 * 4 + 5) / 5
    assert bootstrap_interval(lambda xs: None, items, resamples=10) == (None, None)
    assert bootstrap_interval(lambda xs: 1.0, [], resamples=10) == (None, None)
    assert bootstrap_interval(lambda xs: 3.0, items, resamples=10) == (3.0, 3.0)


# ---------------------------------------------------------------- per class, abnormal-video AUC


def test_per_class():
    items = {
        "Fighting": [(1, 0.9), (0, 0.1)],
        "Shooting": [(1, 0.2), (0, 0.8)],
        "Normal": [(0, 0.5)],
    }
    result = per_class(lambda xs: roc_auc([y for y, _ in xs], [s for _, s in xs]), items)
    assert result == {"Fighting": 1.0, "Shooting": 0.0, "Normal": None}
    assert per_class(len, {}) == {}


def test_abnormal_video_auc_ignores_normal_videos():
    scores = [np.array([0.9, 0.9]), np.array([0.1, 0.8, 0.7, 0.2])]
    targets = [np.array([0, 0]), np.array([0, 1, 1, 0])]
    assert abnormal_video_auc(scores, targets) == pytest.approx(100.0)
    # pooled over all videos the normal video's high scores count: 4 of 8 pairs ordered -> 50%
    assert frame_auc(scores, targets) == pytest.approx(50.0)


def test_abnormal_video_auc_ties_and_degenerate_inputs():
    # all equal scores: every pair ties -> 50%
    assert abnormal_video_auc([np.full(4, 0.5)], [np.array([0, 1, 1, 0])]) == pytest.approx(50.0)
    # tie between one positive and one negative: pairs (.8 > .1), (.8 = .8 -> 1/2), (.5 > .1), (.5 < .8) -> 2.5/4
    assert abnormal_video_auc([np.array([0.1, 0.8, 0.5, 0.8])], [np.array([0, 1, 1, 0])]) == pytest.approx(62.5)
    assert abnormal_video_auc([np.full(3, 0.5)], [np.zeros(3)]) is None  # all normal
    assert abnormal_video_auc([np.array([0.1, 0.9])], [np.ones(2)]) is None  # all abnormal frames
    assert abnormal_video_auc([], []) is None
    with pytest.raises(ValueError):
        abnormal_video_auc([np.zeros(2)], [])


@pytest.mark.parametrize("seed", range(5))
def test_roc_points_equal_scikit_learn_and_their_area_is_the_auc(seed):
    from sklearn.metrics import roc_curve

    from anomaly_models.benchmark_metrics import roc_points, thin
    from anomaly_models.metrics import roc_auc

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = rng.integers(0, 20, 300) / 20.0  # many ties
    fpr, tpr = roc_points(y, s)
    want_fpr, want_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, want_fpr)
    np.testing.assert_allclose(tpr, want_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(y, s))
    assert roc_points(np.ones(4), np.arange(4)) is None
    xs, ys = thin(fpr, tpr, 5)
    assert len(xs) == 5 and (xs[0], ys[0]) == (0.0, 0.0) and (xs[-1], ys[-1]) == (1.0, 1.0)
