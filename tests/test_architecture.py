"""The architecture's contracts: imports run one way, errors survive pickling, every model has one registry entry,
the model card round-trips, and the CLI reports unexpected exceptions as bugs."""

import ast
import pathlib
import pickle

import pytest

from anomaly_models.checkpoint import CheckpointError
from anomaly_models.errors import NotFound, RefusedJob, UsageError, VadError, VideoError
from anomaly_models.registry import MODELS, input_names, model_entry

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = {"anomaly_models": set(), "tasks": {"anomaly_models"}, "flows": {"tasks", "anomaly_models"}}


def _imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_imports_run_one_way(package):
    forbidden = set(LAYERS) - LAYERS[package] - {package}
    if package == "anomaly_models":
        forbidden |= {"prefect", "dask", "distributed", "fsspec", "s3fs"}
    for path in (ROOT / package).rglob("*.py"):
        bad = _imports(path) & forbidden
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_prefect_task_wrappers_live_in_flows_only():
    for path in (ROOT / "tasks").rglob("*.py"):
        assert "prefect" not in _imports(path), f"{path.relative_to(ROOT)} imports prefect"


@pytest.mark.parametrize(
    "error",
    [
        VadError("x"),
        UsageError("bad flag"),
        RefusedJob("no"),
        NotFound("gone"),
        CheckpointError("other extractor"),
        VideoError("cam/a.mp4", "timed out"),
    ],
)
def test_every_project_error_survives_pickling(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error)
    from tblib import pickling_support  # how distributed pickles exceptions with their tracebacks

    pickling_support.install(error)
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error) and str(back) == str(error)


def test_decode_error_survives_pickling_with_its_reason():
    from tasks.media.video import VideoDecodeError

    back = pickle.loads(pickle.dumps(VideoDecodeError("cam/[x].mp4", "DECORDError: [bad] data")))
    assert back.video == "cam/[x].mp4" and back.reason == "DECORDError: [bad] data"
    assert str(back) == "cannot decode cam/[x].mp4: DECORDError: [bad] data"


def test_exit_codes_follow_the_error_class():
    assert (UsageError.exit_code, RefusedJob.exit_code, CheckpointError.exit_code) == (2, 1, 1)


def test_every_model_has_one_entry_that_derives_its_config():
    shapes = {
        "features": (40, 32),
        "tokens": (40, 4, 16),
        "objects": (40, 6, 24),
        "boxes": (40, 6, 4),
        "object_mask": (40, 6),
    }
    for name, entry in MODELS.items():
        config = entry.config_for(
            {k: shapes[k] for k in (*entry.inputs, "features")},
            window=64,
            options={"hidden": 8} if name == "adnet" else None,
        )
        model = entry.cls(**config)
        assert model.config == {**model.config, **config}
    assert model_entry("ador").needs_objects and model_entry("ador").needs_tokens
    assert not model_entry("adnet").needs_objects and MODELS["adnet"].config_for(shapes, 64)["layers"] == 6
    with pytest.raises(UsageError, match="unknown model"):
        model_entry("resnet")


def test_model_card_round_trips_and_refuses_unsafe_ids():
    from tasks.media.backbones import ExtractorSpec
    from tasks.media.detectors import DetectorSpec
    from tasks.models.card import ModelCard, TrainingRecord

    spec = ExtractorSpec(size=64)
    card = ModelCard(
        "ador-w16-x",
        "ador",
        {"token_dim": 512},
        spec.extractor_id,
        spec,
        16,
        0.4,
        TrainingRecord(epochs=2, lr=1e-3, loss="bce", seed=123, history=[0.5, 0.4]),
        detector_id=DetectorSpec(mode="proposals").detector_id,
        detector=DetectorSpec(mode="proposals"),
        checkpoint_sha256="ab",
    )
    data = card.to_json()
    assert data["schema_version"] == 1 and data["needs_tokens"] and data["extractor_id"] == spec.extractor_id
    assert ModelCard.from_json(data) == card
    with pytest.raises(UsageError, match="model id"):
        ModelCard.from_json({**data, "model_id": "../../../x"})
    with pytest.raises(CheckpointError, match=f"{spec.extractor_id}.*mc3_18-random0"):
        card.require_features("mc3_18-random0-c16s16-64")


def test_cards_written_before_the_schema_still_load():
    from tasks.models.card import ModelCard

    old = {
        "model_id": "adnet-w16-e",
        "model": "adnet",
        "model_config": {"in_dim": 8},
        "extractor_id": "e",
        "extractor_spec": {"backbone": "r3d_18", "size": 64},
        "window": 16,
        "threshold": 0.5,
        "epochs": 3,
        "lr": 5e-4,
        "seed": 123,
        "history": [1.0],
        "needs_tokens": False,
        "max_objects": 36,
        "detector_id": None,
        "detector_spec": None,
        "videos": 2,
        "clips": 10,
        "abnormal_clips": 3,
        "trained_videos": ["a", "b"],
        "unmatched_annotations": [],
        "unannotated_videos": [],
        "created": "x",
        "checkpoint_sha256": "cd",
    }
    card = ModelCard.from_json(old)
    assert card.extractor.size == 64 and card.training.loss == "mse" and card.annotations.trained_videos == ["a", "b"]


def test_cli_reports_an_unexpected_exception_as_a_bug(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import tasks.jobs.report_index as report_index
    from flows.cli import app

    def broken(*args, **kwargs):
        raise TypeError("a real bug")

    monkeypatch.setattr(report_index, "rebuild_index", broken)
    result = CliRunner().invoke(app, ["report", "--model-id", "m", "--out", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, TypeError)
    assert "internal error (a bug in vad" in result.output and "a real bug" in result.output


def test_registry_and_catalog_entries_name_real_classes():
    from tasks.media.backbones import ActionBackbone, backbone_class
    from tasks.media.specs import BACKBONES

    for entry in MODELS.values():
        assert entry.inputs == input_names(entry.cls), entry.name  # declared without torch, checked against it
    for name in BACKBONES:
        assert issubclass(backbone_class(name), ActionBackbone), name


def test_specs_registry_and_planning_import_no_torch():
    """What a scan with nothing new runs: checked in a fresh interpreter (this one has torch loaded)."""
    import subprocess
    import sys

    modules = "tasks.media.specs, anomaly_models.registry, tasks.models.card, flows.scan_plan, flows.settings"
    code = f"import sys, {modules}; print(sorted(m for m in ('torch', 'torchvision', 'prefect') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
