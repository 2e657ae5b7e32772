"""Scoring several videos together: the same scores as one at a time, fewer and fuller forward passes, and
videos whose inputs cannot share a batch are scored alone."""

import numpy as np
import torch

from anomaly_models.adnet import ADNet
from anomaly_models.training import predict, predict_many


def test_windows_of_several_videos_share_batches_and_give_the_same_scores():
    torch.manual_seed(0)
    model = ADNet(in_dim=8, hidden=16, stages=2, layers=3).eval()
    rng = np.random.default_rng(1)
    videos = [rng.normal(size=(n, 8)).astype(np.float32) for n in (5, 40, 17, 3)]
    calls = []
    model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    together = predict_many(model, videos, window=16, batch_size=32)
    batched_calls = list(calls)
    calls.clear()
    alone = [predict(model, v, window=16, batch_size=32) for v in videos]
    assert [len(s) for s in together] == [5, 40, 17, 3]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert len(batched_calls) == 1 and len(calls) == 4  # 1 + 4 + 2 + 1 windows in one pass instead of four


def test_inputs_of_other_shapes_are_scored_alone():
    torch.manual_seed(0)
    model = ADNet(in_dim=8, hidden=8, stages=1, layers=2).eval()
    rng = np.random.default_rng(2)
    tokens = np.zeros((4, 2, 3), np.float32)  # only the second video has them: the two cannot share a batch
    videos = [{"features": rng.normal(size=(6, 8)).astype(np.float32)},
              {"features": rng.normal(size=(4, 8)).astype(np.float32), "tokens": tokens}]  # fmt: skip
    scores = predict_many(model, videos, window=4)
    assert [len(s) for s in scores] == [6, 4]
    np.testing.assert_allclose(scores[1], predict(model, videos[1], window=4), rtol=1e-6)
