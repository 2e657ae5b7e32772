"""ADOR end to end on real flows: extract tokens + objects, train ADOR, scan a fresh output root (the scan
extracts what the model needs), and a clear refusal when features lack ADOR's inputs."""

import json
import shutil

import pytest

from tests.conftest import EXTRACTOR, FAST, vad

OBJECTS = ["--tokens", "--objects", "--object-mode", "proposals", "--max-objects", "8"]
DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn-random0-top8-c16s16-320"
MODEL_ID = f"ador-w16-{EXTRACTOR}"


@pytest.fixture(scope="module")
def ador_model(prefect_api, small_archive, tmp_path_factory):
    archive = tmp_path_factory.mktemp("ador-archive")
    shutil.copytree(small_archive / "videos", archive, dirs_exist_ok=True)
    out = tmp_path_factory.mktemp("ador-out")
    result = vad("extract", "--archive", archive, "--out", out, *FAST, *OBJECTS)
    assert result.exit_code == 3, result.output  # the corrupted video
    assert (out / "objects" / DETECTOR / "Explosion" / "000.mp4.parquet").exists()
    result = vad(
        "train",
        "--model",
        "ador",
        "--features",
        out / "features" / EXTRACTOR,
        "--objects",
        out / "objects" / DETECTOR,
        "--annotations",
        small_archive / "annotations.json",
        "--out",
        out,
        "--epochs",
        5,
        "--window",
        16,
        "--lr",
        "1e-3",
        "--model-options",
        json.dumps({"dim": 32, "heads": 4, "depth": 2, "stages": 2}),
    )
    assert result.exit_code == 0, result.output
    return archive, out / "models" / MODEL_ID


def test_train_and_scan_with_ador(ador_model, tmp_path):
    archive, model = ador_model
    config = json.loads((model / "config.json").read_text())
    assert config["model"] == "ador" and config["detector_id"] == DETECTOR and config["needs_tokens"]
    result = vad("scan", "--archive", archive, "--model", model, "--out", tmp_path)
    assert result.exit_code == 3, result.output
    assert (tmp_path / "objects" / DETECTOR / "Normal" / "002.mp4.parquet").exists()  # the scan extracted objects
    report = json.loads((tmp_path / "reports" / MODEL_ID / "Fighting" / "001.mp4.json").read_text())
    assert report["model_id"] == MODEL_ID and len(report["clip_scores"]) > 0


def test_scoring_without_tokens_or_objects_fails_clearly(ador_model, extracted):
    _, model = ador_model
    _, out, _ = extracted  # r3d_18 features at 64 px without tokens
    result = vad("score", "--features", out / "features" / EXTRACTOR, "--model", model, "--out", out)
    assert result.exit_code == 1
    assert "needs spatial tokens" in " ".join(result.output.split())
