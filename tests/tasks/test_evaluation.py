"""The evaluation job's bootstrap: intervals computed together from per-video counts equal the definition."""

import numpy as np
import pytest

from anomaly_models.benchmark_metrics import bootstrap_interval
from anomaly_models.metrics import f1_at_k, frame_auc
from tasks.jobs.evaluate import headline, intervals, markdown_table


def per_video_rows(n: int = 12, seed: int = 4) -> list:
    """(class, prediction, target, frame scores, threshold) per video, as `evaluate_scores` builds them."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        target = np.zeros(200, int)
        if i % 2:
            start = int(rng.integers(20, 150))
            target[start : start + 30] = 1
        scores = np.clip(0.6 * target + rng.normal(0.3, 0.2, 200), 0, 1)
        rows.append(("Abuse" if i % 2 else "Normal", (scores > 0.5).astype(int), target, scores, 0.5))
    return rows


def test_intervals_equal_the_bootstrap_of_each_metric_on_its_own():
    rows = per_video_rows()
    found = intervals(rows, (0.1, 0.5), 0.5, resamples=200)
    for k in (0.1, 0.5):
        own = bootstrap_interval(lambda r, k=k: f1_at_k([x[1] for x in r], [x[2] for x in r], (k,))["abnormal"][k],
                                 rows, 200, 0)  # fmt: skip
        assert found[f"f1_abnormal@{int(k * 100)}"] == [round(v, 2) for v in own]
    auc = bootstrap_interval(lambda r: frame_auc([x[3] for x in r], [x[2] for x in r]), rows, 200, 0)
    assert found["auc"] == [round(v, 2) for v in auc]
    point = headline([x[3] for x in rows], [x[2] for x in rows], 0.5)
    for name in ("auc", "ap", "ap_trapezoid", "far"):
        low, high = found[name]
        assert low <= point[name] + 1e-9 and point[name] <= high + 1e-9, name
    assert intervals(rows, (0.1,), 0.5, resamples=50) == intervals(rows, (0.1,), 0.5, resamples=50)


def test_the_table_reports_auc_both_aps_and_the_false_alarm_rate():
    rows = per_video_rows()
    result = {"model_id": "m", "overlaps": [10], "f1": {v: {"10": 50.0} for v in ("abnormal", "normal", "all")},
              **headline([x[3] for x in rows], [x[2] for x in rows], 0.5), "per_class": {},
              "intervals": intervals(rows, (0.1,), 0.5, 20), "bootstrap": {"resamples": 20}}  # fmt: skip
    table = markdown_table([result])
    assert "| AUC | AP | AP (trapezoid) | FAR % |" in table and "95% intervals" in table
    assert result["ap"] != pytest.approx(result["ap_trapezoid"])  # the two AP conventions, both reported


def test_scores_that_do_not_fit_their_video_are_refused_naming_it(tmp_path):
    from anomaly_models.ground_truth import LengthMismatch
    from tasks.jobs.annotations import load_annotations
    from tasks.jobs.evaluate import evaluate_scores
    from tasks.store.output import OutputStore
    from tests.tasks.test_calibration import CLIPS, VIDEOS, write_scores

    store = OutputStore(str(tmp_path / "out"))
    write_scores(store, "m")
    path = tmp_path / "gt.csv"
    path.write_text("video_id,start_s,end_s\n" + "".join(f"{v},8,12\n" for v in VIDEOS))
    annotations = load_annotations(str(path))
    assert evaluate_scores(store, "m", annotations, resamples=0)["videos"] == len(VIDEOS)
    table = store.read_table(store.scores("m", "normal1.mp4"))  # frame_count one snippet too long
    meta = {k.decode(): v.decode() for k, v in table.table.schema.metadata.items()}
    meta["frame_count"] = str((CLIPS + 1) * 16)
    store.write_table(store.scores("m", "normal1.mp4"), table.table.replace_schema_metadata(meta))
    with pytest.raises(
        LengthMismatch, match=rf"normal1\.mp4: scores cover frames 0\.\.{CLIPS * 16} .* {(CLIPS + 1) * 16} frames"
    ):
        evaluate_scores(store, "m", annotations, resamples=0)
