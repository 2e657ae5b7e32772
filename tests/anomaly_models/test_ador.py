import math
import time

import torch

from anomaly_models import ADOR, EDTCN, MLP, ADNet, TrainConfig, predict, train
from anomaly_models.ador import GeometryBias, relative_geometry
from anomaly_models.metrics import f1_at_k
from anomaly_models.synthetic import generated_relation_sequences


def small_ador():
    return ADOR(16, 16, dim=32, heads=4, depth=2, stages=2, layers=5, hidden=32)


def inputs(b=2, t=12, m=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    boxes = torch.rand(b, t, m, 2, generator=g) * 0.5
    boxes = torch.cat([boxes, boxes + 0.2 + torch.rand(b, t, m, 2, generator=g) * 0.2], -1)
    return (
        torch.randn(b, t, 4, 16, generator=g),
        torch.randn(b, t, m, 16, generator=g),
        boxes,
        torch.ones(b, t, m, dtype=torch.bool),
    )


def test_ador_padded_clips_and_missing_objects_do_not_change_valid_outputs():
    torch.manual_seed(0)
    model = small_ador().eval()
    tokens, objects, boxes, omask = inputs()
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[:, 8:] = False
    omask[:, :, 3:] = False
    out = model(tokens, objects, boxes, omask, mask)
    assert out.shape == (2, 2, 12) and torch.all(out[:, :, 8:] == 0)
    t2, o2, b2 = tokens.clone(), objects.clone(), boxes.clone()
    t2[:, 8:] = torch.randn_like(t2[:, 8:]) * 50  # padded clips
    o2[:, :, 3:] = torch.randn_like(o2[:, :, 3:]) * 50  # missing objects
    b2[:, :, 3:] = torch.rand_like(b2[:, :, 3:])
    torch.testing.assert_close(out, model(t2, o2, b2, omask, mask), rtol=0, atol=1e-5)
    # a clip with no objects at all is still scored (the CLS token is always there)
    omask[0, 0] = False
    assert torch.isfinite(model(tokens, objects, boxes, omask, mask)).all()


def test_relative_geometry_hand_sized_case_and_no_geometry_for_cls():
    boxes = torch.tensor([[[0.0, 0.0, 0.2, 0.2], [0.4, 0.0, 0.6, 0.4]]])
    g = relative_geometry(boxes)[0, 0, 1]
    torch.testing.assert_close(g, torch.tensor([math.log(2.0), math.log(0.5), 0.0, math.log(2.0)]))
    bias = GeometryBias(heads=3)(boxes)
    assert bias.shape == (1, 3, 3, 3)
    assert torch.all(bias[:, :, 0, :] == 0) and torch.all(bias[:, :, :, 0] == 0)
    assert torch.any(bias[:, :, 1:, 1:] != 0)


def test_baselines_shapes_and_masking():
    x, mask = torch.randn(2, 30, 8), torch.ones(2, 30, dtype=torch.bool)
    mask[1, 20:] = False
    for model in (MLP(8, hidden=32), EDTCN(8, channels=(8, 12))):
        out = model.eval()(x, mask)
        assert out.shape == (1, 2, 30) and torch.all(out[:, 1, 20:] == 0)
        x2 = x.clone()
        x2[1, 20:] = 99.0  # padded clips must not reach valid ones
        torch.testing.assert_close(out, model(x2, mask), rtol=0, atol=1e-6)


def _fit(model, train_set, labels, test_set, test_labels, key=None, **cfg):
    pick = (lambda v: v[key]) if key else (lambda v: v)
    train(model, [pick(v) for v in train_set], labels, TrainConfig(**cfg))
    preds = [(predict(model, pick(v), cfg["window"]) > 0.5).astype(int) for v in test_set]
    return f1_at_k(preds, [y.astype(int) for y in test_labels])["abnormal"][0.25]


def test_ador_learns_object_relation_anomalies_that_adnet_cannot_see():
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    tr, trl = generated_relation_sequences(30, "relation", seed=1)
    te, tel = generated_relation_sequences(12, "relation", seed=2)
    ador = _fit(small_ador(), tr, trl, te, tel, window=32, epochs=15, lr=1e-3, loss="bce")
    adnet = _fit(ADNet(16, hidden=32, stages=3, layers=5), tr, trl, te, tel, key="features", window=32, epochs=20)
    print(f"relation anomalies: ADOR F1@25={ador:.1f} ADNet F1@25={adnet:.1f} ({time.perf_counter() - t0:.0f}s)")
    assert ador >= 70 and adnet < 40


def test_ador_not_worse_than_adnet_on_action_anomalies():
    torch.set_num_threads(2)
    tr, trl = generated_relation_sequences(20, "action", seed=3)
    te, tel = generated_relation_sequences(10, "action", seed=4)
    ador = _fit(small_ador(), tr, trl, te, tel, window=32, epochs=10, lr=1e-3, loss="bce")
    adnet = _fit(ADNet(16, hidden=32, stages=3, layers=5), tr, trl, te, tel, key="features", window=32, epochs=20)
    print(f"action anomalies: ADOR F1@25={ador:.1f} ADNet F1@25={adnet:.1f}")
    assert ador >= adnet - 5
