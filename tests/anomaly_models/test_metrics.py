import numpy as np
import pytest

from anomaly_models.ground_truth import clip_frame_scores
from anomaly_models.metrics import f1_at_k, frame_auc, score_segments, segment_counts


def test_hand_worked_case_both_classes():
    gt = [0, 0, 1, 1, 1, 1]
    pred = [0, 0, 1, 0, 1, 1]
    assert segment_counts(pred, gt, 0.25, (0, 1)) == (2, 2, 0)
    result = f1_at_k([pred], [gt], overlaps=(0.25,))
    assert result["all"][0.25] == pytest.approx(66.6667, abs=1e-3)
    # abnormal only: pred abnormal segments [2,3) IoU .25 -> TP, [4,6) best gt already used -> FP
    assert segment_counts(pred, gt, 0.25, (1,)) == (1, 1, 0)
    assert result["abnormal"][0.25] == pytest.approx(200 * 0.5 * 1 / 1.5)
    # at 0.5 the short prediction (IoU .25) is an FP and frees the gt segment for [4,6) (IoU .5)
    assert segment_counts(pred, gt, 0.5, (1,)) == (1, 1, 0)


def test_empty_predictions_give_zero():
    gt = [0, 0, 1, 1, 0]
    pred = [0, 0, 0, 0, 0]
    result = f1_at_k([pred], [gt])
    assert result["abnormal"][0.1] == 0.0
    assert segment_counts(pred, gt, 0.1, (1,)) == (0, 0, 1)
    # the normal view: one long predicted normal segment matches one of two gt normal segments
    assert segment_counts(pred, gt, 0.1, (0,)) == (1, 0, 1)


def test_video_without_abnormal_ground_truth_makes_predictions_false_positives():
    gt = [0] * 8
    pred = [0, 1, 1, 0, 0, 1, 0, 0]
    assert segment_counts(pred, gt, 0.1, (1,)) == (0, 2, 0)
    both = f1_at_k([pred, [0, 1, 1, 0]], [gt, [0, 1, 1, 0]], overlaps=(0.1,))
    # TP 1 (second video), FP 2, FN 0 -> P=1/3, R=1 -> F1=50
    assert both["abnormal"][0.1] == pytest.approx(50.0)


def test_counts_sum_over_videos_before_f1():
    r = f1_at_k([[1, 1, 0], [0, 0, 0]], [[1, 1, 0], [0, 1, 1]], overlaps=(0.5,))
    # abnormal: video1 TP1; video2 FN1 -> P=1, R=.5 -> 66.67
    assert r["abnormal"][0.5] == pytest.approx(66.6667, abs=1e-3)


def test_odd_overlaps_round_trip_into_tables():
    from tasks.jobs.evaluate import markdown_table

    r = f1_at_k([[0, 1, 1]], [[0, 1, 1]], overlaps=(0.29, 0.57))
    assert set(r["abnormal"]) == {0.29, 0.57}
    result = {
        "model_id": "m",
        "overlaps": [int(round(k * 100)) for k in (0.29, 0.57)],
        "auc": None,
        "per_class": {},
        "f1": {v: {str(int(round(k * 100))): x for k, x in row.items()} for v, row in r.items()},
    }
    assert "abnormal F1@29" in markdown_table([result])


def test_frame_auc_and_expansion_and_segments():
    frames = clip_frame_scores([0.1, 0.9, 0.2], [0, 4, 8], [4, 8, 12], 12)
    assert frames.tolist() == pytest.approx([0.1] * 4 + [0.9] * 4 + [0.2] * 4)
    assert frame_auc([frames], [[0] * 4 + [1] * 4 + [0] * 4]) == pytest.approx(100.0)
    assert frame_auc([frames], [[0] * 12]) is None
    assert score_segments([0.1, 0.6, 0.7, 0.5, 0.9], 0.5) == [(1, 3), (4, 5)]


def test_roc_auc_hand_cases_and_ties():
    from anomaly_models.metrics import average_ranks, roc_auc

    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5  # a tie counts one half
    # positives 0.4 and 0.9 against negatives 0.4 and 0.1: pairs won 1 + 1 + 1, tied 1 -> 3.5 / 4
    assert roc_auc([1, 0, 1, 0], [0.4, 0.4, 0.9, 0.1]) == 0.875
    assert roc_auc([1, 1], [0.2, 0.3]) is None and roc_auc([0, 0], [0.2, 0.3]) is None


def test_roc_auc_equals_scikit_learn_on_tied_scores():
    from sklearn.metrics import roc_auc_score

    from anomaly_models.metrics import roc_auc

    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 2, 500)
        s = np.round(rng.random(500) + 0.3 * y, 1)  # coarse scores: many ties
        assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
