"""The thesis's features end to end on the shared sample videos: `vad extract --backbone i3d --crops 10 --tokens`
(with centre-frame objects), then ADNet and ADOR train on them and scan with them.

I3D is random-initialised and run at 32 px with stride 32 to keep 10-crop extraction to seconds on 2 cores: the
test is about the pipeline, not the features' quality."""

import json
import os
import shutil

import pytest

from tests.conftest import VIDEOS, vad

EXTRACTOR = "i3d-random0-c16s32-32-x10"
DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn-random0-top8-c16s32-320"
EXTRACT = ["--backbone", "i3d", "--size", "32", "--stride", "32", "--crops", "10", "--tokens",
           "--objects", "--object-mode", "proposals", "--max-objects", "8"]  # fmt: skip


@pytest.fixture(scope="module")
def i3d_features(prefect_api, tmp_path_factory):
    archive = tmp_path_factory.mktemp("i3d-archive")
    for name in ("v_GGSY1Qvo990.mp4", "v_ZNVhz7ctTq0.mp4"):
        shutil.copy(os.path.join(VIDEOS, name), archive / name)
    annotations = archive.parent / "i3d-annotations.csv"
    annotations.write_text("video_id,start_s,end_s\nv_GGSY1Qvo990.mp4,5.0,10.0\nv_ZNVhz7ctTq0.mp4,,\n")
    out = tmp_path_factory.mktemp("i3d-out")
    result = vad("extract", "--archive", archive, "--out", out, *EXTRACT)
    assert result.exit_code == 0, result.output
    return archive, annotations, out


def test_ten_crop_i3d_features_with_tokens(i3d_features):
    from tasks.store.output import OutputStore

    _, _, out = i3d_features
    store = OutputStore(str(out))
    table = store.read_table(store.features(EXTRACTOR, "v_GGSY1Qvo990.mp4"))
    rows = table.table.num_rows
    assert rows == 11  # 355 frames, 16-frame clips every 32 frames
    assert table.crop_features.shape == (rows, 10, 1024) and table.tokens.shape == (rows, 1, 1024)
    assert json.loads(table.metadata["extractor_spec"])["crops"] == 10


@pytest.mark.parametrize(
    "model, options",
    [("adnet", {"hidden": 16, "stages": 2}), ("ador", {"dim": 32, "heads": 4, "depth": 1, "stages": 2})],
)
def test_adnet_and_ador_train_and_scan_on_i3d_features(i3d_features, model, options):
    archive, annotations, out = i3d_features
    args = ["train", "--model", model, "--features", out / "features" / EXTRACTOR, "--annotations", annotations,
            "--out", out, "--epochs", 3, "--window", 8, "--model-options", json.dumps(options)]  # fmt: skip
    if model == "ador":
        args += ["--objects", out / "objects" / DETECTOR]
    trained = vad(*args)
    assert trained.exit_code == 0, trained.output
    model_id = f"{model}-w8-{EXTRACTOR}"
    card = json.loads((out / "models" / model_id / "config.json").read_text())
    assert card["extractor"]["backbone"] == "i3d" and card["extractor"]["crops"] == 10
    assert card["training"]["random_crops"] is (model == "adnet")  # ADOR reads the centre crop's tokens
    scanned = vad("scan", "--archive", archive, "--model", out / "models" / model_id, "--out", out)
    assert scanned.exit_code == 0, scanned.output
    for video in ("v_GGSY1Qvo990.mp4", "v_ZNVhz7ctTq0.mp4"):
        report = json.loads((out / "reports" / model_id / f"{video}.json").read_text())
        assert report["model_id"] == model_id and len(report["clip_scores"]) > 0
