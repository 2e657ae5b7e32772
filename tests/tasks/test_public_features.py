"""Public feature sets (RTFM and DeepMIL layouts) in and out of the feature Parquet; train, score and evaluate on
imported features with the real UCF-Crime annotation file."""

import json
import os
import shutil

import numpy as np
import pytest

from anomaly_models.errors import UsageError
from tasks.jobs.public_features import FeatureFileError, export_features, import_features
from tasks.media.specs import ExtractorSpec
from tasks.store.output import OutputStore
from tests.conftest import ANNOTATIONS, VIDEOS, vad

UCF = os.path.join(ANNOTATIONS, "Temporal_Anomaly_Annotation.txt")
# names and abnormal frame ranges of the real annotation file (the normal videos have none)
VIDEOS_AND_EVENTS = {
    "Abuse028_x264": (165, 240),
    "Abuse030_x264": (1275, 1360),
    "Explosion004_x264": (75, 225),
    "Explosion008_x264": (1005, 1245),
    "Normal_Videos_003_x264": None,
    "Normal_Videos_006_x264": None,
}


def planted(name: str, crops: int, dim: int, seed: int) -> np.ndarray:
    """[T, K, D] snippet features with the annotated event planted in dimension 0 of every crop."""
    rng = np.random.default_rng(seed)
    event = VIDEOS_AND_EVENTS[name]
    t = 100 if event is None else max(event[1] // 16 + 20, 60)
    x = rng.standard_normal((t, crops, dim)).astype(np.float32) * 0.3
    if event:
        x[event[0] // 16 : event[1] // 16 + 1, :, 0] += 3.0
    return x


def rtfm_folder(root, crops=10, dim=64, flat=False):
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, name in enumerate(VIDEOS_AND_EVENTS):
        x = planted(name, crops, dim, i)
        arrays[name] = x
        np.save(root / f"{name}_i3d.npy", x[:, 0] if flat else x)
    return arrays


def deepmil_folder(root, crops=10, dim=32):
    root.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for i, name in enumerate(VIDEOS_AND_EVENTS):
        x = planted(name, crops, dim, i)
        arrays[name] = x
        for k in range(crops):
            np.save(root / f"{name}__{k}.npy", x[:, k])
    return arrays


def test_rtfm_ten_crop_folder_imports_with_the_crop_mean_and_each_crop(tmp_path):
    arrays = rtfm_folder(tmp_path / "rtfm")
    store = OutputStore(str(tmp_path / "out"))
    result = import_features(str(tmp_path / "rtfm"), store, "rtfm", name="ucf-i3d-rtfm")
    assert result.extractor_id == "ucf-i3d-rtfm-c16s16-x10" and (result.crops, result.dim) == (10, 64)
    assert sorted(result.videos) == sorted(VIDEOS_AND_EVENTS)
    table = store.read_table(store.features(result.extractor_id, "Abuse028_x264"))
    np.testing.assert_array_equal(table.crop_features, arrays["Abuse028_x264"])
    np.testing.assert_allclose(table.features, arrays["Abuse028_x264"].mean(1), rtol=1e-6)
    t = len(arrays["Abuse028_x264"])
    assert table.column("start_frame").tolist() == list(range(0, 16 * t, 16))
    assert (table.column("end_frame") - table.column("start_frame") == 16).all()
    assert table.metadata["fps"] == "30.0" and table.metadata["frame_count"] == str(16 * t)


def test_single_crop_and_deepmil_and_xd_violence_folders_import(tmp_path):
    store = OutputStore(str(tmp_path / "out"))
    flat = rtfm_folder(tmp_path / "flat", crops=1, flat=True)
    one = import_features(str(tmp_path / "flat"), store, "rtfm")
    assert one.extractor_id == "rtfm-import-c16s16" and one.crops == 1
    table = store.read_table(store.features(one.extractor_id, "Abuse030_x264"))
    assert table.crop_features is None
    np.testing.assert_array_equal(table.features, flat["Abuse030_x264"][:, 0])
    for crops in (10, 5):  # UCF-Crime Inception-I3D sets, XD-Violence
        arrays = deepmil_folder(tmp_path / f"deepmil{crops}", crops=crops)
        result = import_features(str(tmp_path / f"deepmil{crops}"), store, "deepmil", name=f"d{crops}")
        assert result.extractor_id == f"d{crops}-c16s16-x{crops}"
        table = store.read_table(store.features(result.extractor_id, "Normal_Videos_006_x264"))
        np.testing.assert_array_equal(table.crop_features, arrays["Normal_Videos_006_x264"])


def test_broken_folders_are_refused_naming_the_file(tmp_path):
    store = OutputStore(str(tmp_path / "out"))
    rtfm_folder(tmp_path / "nan")
    bad = np.load(tmp_path / "nan" / "Abuse030_x264_i3d.npy")
    bad[3, 2, 1] = np.nan
    np.save(tmp_path / "nan" / "Abuse030_x264_i3d.npy", bad)
    with pytest.raises(FeatureFileError, match=r"Abuse030_x264_i3d\.npy: holds NaN"):
        import_features(str(tmp_path / "nan"), store, "rtfm")
    deepmil_folder(tmp_path / "crops")
    os.remove(tmp_path / "crops" / "Explosion004_x264__9.npy")  # one video with 9 crops
    with pytest.raises(FeatureFileError, match="9 crops of 32 values per snippet.*one import holds one feature set"):
        import_features(str(tmp_path / "crops"), store, "deepmil")
    deepmil_folder(tmp_path / "gap")
    os.remove(tmp_path / "gap" / "Abuse028_x264__3.npy")
    with pytest.raises(FeatureFileError, match=r"Abuse028_x264.*expected 0\.\.K-1"):
        import_features(str(tmp_path / "gap"), store, "deepmil")
    (tmp_path / "shape").mkdir()
    np.save(tmp_path / "shape" / "odd_i3d.npy", np.zeros(16, np.float32))
    with pytest.raises(FeatureFileError, match=r"odd_i3d\.npy: expected a float array of shape"):
        import_features(str(tmp_path / "shape"), store, "rtfm")
    with pytest.raises(UsageError, match="layout"):
        import_features(str(tmp_path / "shape"), store, "c3d")


def test_export_then_import_round_trips_bit_exactly_in_both_layouts(tmp_path):
    store = OutputStore(str(tmp_path / "out"))
    rtfm_folder(tmp_path / "src")
    first = import_features(str(tmp_path / "src"), store, "rtfm", name="a")
    for layout in ("rtfm", "deepmil"):
        files, list_file = export_features(store, first.extractor_id, str(tmp_path / layout), layout)
        assert len(files) == len(VIDEOS_AND_EVENTS) * (1 if layout == "rtfm" else 10)
        assert open(list_file).read().split() == files
        again = import_features(str(tmp_path / layout), store, layout, name=f"back-{layout}")
        for vid in VIDEOS_AND_EVENTS:
            a = store.read_table(store.features(first.extractor_id, vid))
            b = store.read_table(store.features(again.extractor_id, vid))
            np.testing.assert_array_equal(a.crop_features, b.crop_features)
            np.testing.assert_array_equal(a.features, b.features)
    listed = [f"{tmp_path}/rtfm/Abuse028_x264_i3d.npy", "Normal_Videos_003_x264_i3d.npy"]
    some = import_features(str(tmp_path / "rtfm"), store, "rtfm", name="listed", listed=listed)
    assert sorted(some.videos) == ["Abuse028_x264", "Normal_Videos_003_x264"]


def test_fps_and_frames_come_from_the_videos_and_the_extractor_can_be_declared(tmp_path):
    feats = tmp_path / "feats"
    feats.mkdir()
    np.save(feats / "cam1_i3d.npy", np.ones((22, 10, 16), np.float32))
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), videos / "cam1.mp4")  # 355 frames at 19.62 fps
    store = OutputStore(str(tmp_path / "out"))
    spec = ExtractorSpec("i3d")
    result = import_features(str(feats), store, "rtfm", videos_url=str(videos), as_extractor=spec)
    assert result.extractor_id == "i3d-random0-c16s16-224-x10"
    table = store.read_table(store.features(result.extractor_id, "cam1"))
    assert float(table.metadata["fps"]) == pytest.approx(19.62, abs=0.01) and table.metadata["frame_count"] == "355"
    assert json.loads(table.metadata["extractor_spec"])["crops"] == 10
    np.save(feats / "cam1_i3d.npy", np.ones((24, 10, 16), np.float32))  # 355 frames: 22 snippets, or 23 kept
    with pytest.raises(
        FeatureFileError, match=r"cam1_i3d\.npy: 24 snippets \(384 frames\) but its video has 355 frames"
    ):
        import_features(str(feats), store, "rtfm", videos_url=str(videos))


def test_train_score_and_evaluate_on_imported_features(prefect_api, tmp_path):
    rtfm_folder(tmp_path / "rtfm", crops=10, dim=32)
    out = tmp_path / "out"
    result = vad("import-features", "--from", tmp_path / "rtfm", "--layout", "rtfm", "--name", "ucf", "--out", out)
    assert result.exit_code == 0, result.output
    assert "imported 6 videos (10 crops x 32 values per snippet) as ucf-c16s16-x10" in result.output
    features = out / "features" / "ucf-c16s16-x10"
    small = json.dumps({"hidden": 32, "stages": 2})  # AUC > 99.9 and F1@25 100 for training seeds 1-3 and 123
    trained = vad("train", "--features", features, "--annotations", UCF, "--out", out, "--window", 16,
                  "--epochs", 40, "--model-id", "adnet-ucf", "--model-options", small)  # fmt: skip
    assert trained.exit_code == 0, trained.output
    card = json.loads((out / "models" / "adnet-ucf" / "config.json").read_text())
    assert card["training"]["random_crops"] is True and card["training"]["videos"] == 6
    scored = vad("score", "--features", features, "--model", out / "models" / "adnet-ucf", "--out", out)
    assert scored.exit_code == 0, scored.output
    evaluated = vad("evaluate", "--scores", out / "scores" / "adnet-ucf", "--annotations", UCF)
    assert evaluated.exit_code == 0, evaluated.output
    evaluation = json.loads((out / "scores" / "adnet-ucf" / "evaluation.json").read_text())
    assert evaluation["videos"] == 6 and evaluation["auc"] >= 90, evaluation
    assert evaluation["f1"]["abnormal"]["25"] >= 80, evaluation


def test_training_is_reproducible_whatever_ran_before(tmp_path):
    """The initial weights follow the training seed: two trainings with other global RNG states give the same
    checkpoint."""
    import torch

    from tasks.jobs.annotations import load_annotations
    from tasks.jobs.train import train_from_features
    from tasks.models.inputs import InputSource

    rtfm_folder(tmp_path / "rtfm", crops=10, dim=8)
    store = OutputStore(str(tmp_path / "out"))
    result = import_features(str(tmp_path / "rtfm"), store, "rtfm", name="ucf")
    source, annotations = InputSource(store, "adnet", result.extractor_id), load_annotations(UCF)
    small = {"hidden": 8, "stages": 1}
    hashes = []
    for state in (1, 2):
        torch.manual_seed(state)
        card = train_from_features(source, annotations, store, 16, 2, model_id=f"m{state}", model_options=small)
        hashes.append(card.checkpoint_sha256)
    assert hashes[0] == hashes[1]
