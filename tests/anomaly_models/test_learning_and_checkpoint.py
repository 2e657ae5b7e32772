import time

import pytest
import torch

from anomaly_models import ADNet, CheckpointError, TrainConfig, load_checkpoint, predict, save_checkpoint, train
from anomaly_models.checkpoint import require_extractor
from anomaly_models.metrics import f1_at_k
from anomaly_models.synthetic import generated_sequences


def test_adnet_learns_generated_anomalies_within_a_minute():
    feats, labels = generated_sequences(40, dim=32, seed=1)
    test_feats, test_labels = generated_sequences(16, dim=32, seed=2)
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model = ADNet(32)  # the thesis defaults: hidden 64, 5 stages, 6 layers
    result = train(model, feats, labels, TrainConfig(window=64, epochs=20, batch_size=8))
    preds = [(predict(model, x, 64) > 0.5).astype(int) for x in test_feats]
    wall = time.perf_counter() - t0
    f1 = f1_at_k(preds, [y.astype(int) for y in test_labels])
    print(f"learning test: abnormal F1@25={f1['abnormal'][0.25]:.2f} F1@50={f1['abnormal'][0.5]:.2f} wall={wall:.1f}s")
    assert result.history[-1] < result.history[0]
    assert f1["abnormal"][0.25] >= 80
    assert wall < 90


def test_checkpoint_round_trip(tmp_path):
    model = ADNet(16, hidden=8, stages=2, layers=3)
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, model, "adnet", "r3d_18-random-c16s16-112", extra={"window": 64})
    loaded, payload = load_checkpoint(path)
    assert payload["extractor_id"] == "r3d_18-random-c16s16-112" and payload["extra"]["window"] == 64
    x, m = torch.randn(1, 10, 16), torch.ones(1, 10, dtype=torch.bool)
    torch.testing.assert_close(model.eval()(x, m), loaded(x, m))
    require_extractor(payload, "r3d_18-random-c16s16-112")
    with pytest.raises(CheckpointError, match="r3d_18-random-c16s16-112.*mc3_18-random-c16s16-112"):
        require_extractor(payload, "mc3_18-random-c16s16-112")


class Evil:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_checkpoint_with_pickled_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "vad-checkpoint-1", "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(path)


def test_multi_crop_training_feeds_one_random_crop_per_window():
    """With `crops`, the windows train on crop features, never on `features` (NaN here): the loss stays finite,
    differs from training on one fixed crop, and repeats exactly with the same seed."""
    import numpy as np

    feats, labels = generated_sequences(6, dim=8, seed=3)
    rng = np.random.default_rng(0)
    crops = [np.stack([f + 0.5 * rng.standard_normal(f.shape).astype(np.float32) for _ in range(10)], 1) for f in feats]
    videos = [{"features": np.full_like(f, np.nan), "crops": c} for f, c in zip(feats, crops)]
    config = TrainConfig(window=16, epochs=3, batch_size=4)

    def history(inputs):
        torch.manual_seed(0)  # the same initial model each time
        return train(ADNet(8, hidden=8, stages=2, layers=3), inputs, labels, config).history

    first = history(videos)
    assert np.isfinite(first).all() and first == history(videos)
    assert history([{"features": np.full_like(f, np.nan), "crops": c[:, :1]} for f, c in zip(feats, crops)]) != first
