"""`vad calibrate`: on generated validation scores with a known best threshold, every criterion picks it, and the
card keeps the curve and the previous threshold."""

import numpy as np
import pytest

from anomaly_models.errors import RefusedJob, UsageError
from tasks.jobs.annotations import load_annotations
from tasks.jobs.calibrate import calibrate, choose, threshold_curve
from tasks.jobs.evaluate import evaluate_scores
from tasks.media.specs import ExtractorSpec
from tasks.models.card import ModelCard, TrainingRecord
from tasks.models.repository import read_card, write_card
from tasks.store.output import OutputStore
from tasks.store.tables import ClipTable, decode_metadata, feature_table, scores_table

FPS, CLIPS = 16.0, 20  # one 16-frame clip per second


def clip_scores(abnormal: bool, spike: bool) -> np.ndarray:
    """0.3 everywhere; an event at clips 8-11 scored 0.8; a normal video may have one clip scored 0.6."""
    scores = np.full(CLIPS, 0.3, np.float32)
    if abnormal:
        scores[8:12] = 0.8
    if spike:
        scores[3] = 0.6
    return scores


VIDEOS = {f"abnormal{i}.mp4": clip_scores(True, False) for i in range(4)} | {
    f"normal{i}.mp4": clip_scores(False, i < 2) for i in range(4)
}
# the best threshold is 0.6: above it exactly the events (F1 100, no false alarm, all segments found); at 0.3 the
# spikes are false alarms, at 0.8 nothing is found


def write_scores(store: OutputStore, model_id: str) -> None:
    starts = np.arange(CLIPS) * 16
    for vid, scores in VIDEOS.items():
        features = feature_table(vid, starts, starts + 16, starts + 8, FPS, np.zeros((CLIPS, 2)), {"fps": FPS})
        clips = ClipTable(features, decode_metadata(features.schema.metadata))
        meta = {"fps": FPS, "frame_count": CLIPS * 16, "threshold": 0.5, "model_id": model_id}
        store.write_table(store.scores(model_id, vid), scores_table(clips, vid, scores, meta))


@pytest.fixture
def validation(tmp_path):
    store = OutputStore(str(tmp_path / "out"))
    spec = ExtractorSpec(size=64)
    card = ModelCard("adnet-val", "adnet", {"in_dim": 2}, spec.extractor_id, spec, 16, 0.5,
                     TrainingRecord(epochs=1, lr=1e-3, loss="mse", seed=123))  # fmt: skip
    write_card(store, card)
    write_scores(store, card.model_id)
    path = tmp_path / "validation.csv"
    rows = [f"{v},8.0,12.0" if v.startswith("abnormal") else f"{v},," for v in VIDEOS]
    path.write_text("video_id,start_s,end_s\n" + "\n".join(rows) + "\n")
    return store, card, str(path)


@pytest.mark.parametrize("criterion, target", [("f1", None), ("far", 0.0), ("recall", 100.0)])
def test_every_criterion_picks_the_known_best_threshold(validation, criterion, target):
    store, card, annotations = validation
    updated = calibrate(store, card, store, load_annotations(annotations), annotations, criterion, 0.25, target)
    # f1: the middle of [0.6, 0.8), where it is best; far/recall: the candidate 0.6 itself (a float32 score)
    best = (float(np.float32(0.6)) + float(np.float32(0.8))) / 2 if criterion == "f1" else float(np.float32(0.6))
    assert updated.threshold == best
    stored = read_card(store, card.model_id)
    assert stored.threshold == best and stored.calibration.criterion == criterion
    assert stored.threshold_history == [
        {"threshold": 0.5, "source": "training", "replaced": stored.calibration.created}
    ]
    point = max(
        (p for p in stored.calibration.curve if p["threshold"] <= stored.threshold), key=lambda p: p["threshold"]
    )
    assert (point["f1"], point["far"], point["recall"]) == (100.0, 0.0, 100.0)
    # and evaluating at the stored threshold gives what the curve promised (a rounded 0.6 used to flag the 0.6 spikes)
    evaluated = evaluate_scores(store, card.model_id, load_annotations(annotations), resamples=0)
    assert evaluated["threshold"] == best and evaluated["f1"]["abnormal"]["25"] == 100.0 and evaluated["far"] == 0.0
    again = calibrate(store, stored, store, load_annotations(annotations), annotations, "f1", 0.25)
    assert [h["source"] for h in again.threshold_history] == ["training", "calibration"]


def test_curve_points_and_refusals():
    scores = [np.repeat(clip_scores(a, s), 16) for a, s in ((True, False), (False, True))]
    targets = [np.repeat(clip_scores(a, False) > 0.5, 16).astype(int) for a in (True, False)]
    curve = {round(p["threshold"], 2): p for p in threshold_curve(scores, targets, 0.25)}
    assert set(curve) == {0.0, 0.3, 0.6, 0.8}
    assert curve[0.3]["far"] == pytest.approx(100 * 16 / 320) and curve[0.3]["f1"] == pytest.approx(200 / 3)
    assert curve[0.8]["recall"] == 0.0
    with pytest.raises(UsageError, match="needs --target"):
        choose(list(curve.values()), "far")
    with pytest.raises(RefusedJob, match="recall"):
        choose([{**p, "recall": None} for p in curve.values()], "recall", 50.0)
    with pytest.raises(UsageError, match="by: expected one of"):
        choose(list(curve.values()), "auc")


def test_f1_takes_the_middle_of_a_plateau():
    curve = [{"threshold": t, "f1": f, "far": 0.0, "recall": 100.0} for t, f in
             ((0.0, 90.0), (0.05, 40.0), (0.1, 50.0), (0.2, 90.0), (0.3, 90.0), (0.31, 90.0), (0.7, 90.0),
              (0.9, 10.0))]  # fmt: skip
    assert choose(curve, "f1") == pytest.approx(0.55)  # best F1 from 0.2 until the next candidate, 0.9
    assert choose(curve[:-1], "f1") == pytest.approx(0.6)  # ... or until 1.0 after the last candidate
