"""`vad extract` end to end on real Prefect flows and a real Dask LocalCluster."""

import json
import os

import numpy as np
import pandas as pd
import pytest

from flows.cli import EXIT_SOME_FAILED
from tasks.store.output import OutputStore
from tests.conftest import EXTRACTOR, FAST, vad


def latest_summary(out):
    runs = sorted(r for r in os.listdir(os.path.join(out, "runs")) if "-extract-" in r)
    with open(os.path.join(out, "runs", runs[-1], "summary.json")) as f:
        return json.load(f), os.path.join(out, "runs", runs[-1])


@pytest.fixture(scope="module")
def local_run(extracted):
    archive, out, result = extracted
    return archive, str(out), result


def test_corrupted_video_is_failed_with_reason_and_others_done(local_run):
    archive, out, result = local_run
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert "random-initialised" in result.output
    summary, run_dir = latest_summary(out)
    assert summary["counts"]["done"] == 4 and summary["counts"]["failed"] == 1
    manifest = pd.read_parquet(os.path.join(run_dir, "manifest.parquet")).set_index("video_id")
    assert manifest.loc["corrupted.mp4", "status"] == "failed"
    assert "DECORDError" in manifest.loc["corrupted.mp4", "error"]
    done = manifest[manifest.status == "done"]
    assert len(done) == 4 and (done.clips > 0).all()
    table = OutputStore(out).read_table(os.path.join(out, "features", EXTRACTOR, "Normal", "003.mp4.parquet"))
    assert table.metadata["extractor_id"] == EXTRACTOR and float(table.metadata["fps"]) == 16.0
    assert table.features.shape[1] == 512
    assert not os.path.exists(os.path.join(out, "features", EXTRACTOR, "corrupted.mp4.parquet"))


def test_rerun_extracts_nothing_and_touch_reextracts_only_that_video(local_run):
    archive, out, _ = local_run
    result = vad("extract", "--archive", str(archive), "--out", out, *FAST)
    assert result.exit_code == 0, result.output
    summary, _ = latest_summary(out)
    assert summary["counts"] == {"done": 0, "skipped": 4, "failed": 0, "quarantined": 1}
    target = archive / "Fighting" / "001.mp4"
    os.utime(target, (os.path.getmtime(target) + 100, os.path.getmtime(target) + 100))
    result = vad("extract", "--archive", str(archive), "--out", out, *FAST)
    summary, run_dir = latest_summary(out)
    assert summary["counts"]["done"] == 1 and summary["counts"]["skipped"] == 3
    manifest = pd.read_parquet(os.path.join(run_dir, "manifest.parquet"))
    assert manifest[manifest.status == "done"].video_id.tolist() == ["Fighting/001.mp4"]


def test_s3_archive_and_output_identical_to_local(local_run, s3_endpoint, monkeypatch):
    import s3fs

    archive, out, _ = local_run
    fs = s3fs.S3FileSystem(**s3_endpoint)
    fs.put(str(archive) + "/", "vad-test/archive/", recursive=True)
    monkeypatch.setenv("VAD_STORAGE_OPTIONS", json.dumps(s3_endpoint))
    result = vad("extract", "--archive", "s3://vad-test/archive", "--out", "s3://vad-test/out", *FAST)
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert s3_endpoint["secret"] not in result.output
    s3_ids = sorted(
        p.split(f"{EXTRACTOR}/")[1] for p in fs.find(f"vad-test/out/features/{EXTRACTOR}") if p.endswith(".parquet")
    )
    assert s3_ids == [
        "Explosion/000.mp4.parquet",
        "Fighting/001.mp4.parquet",
        "Normal/002.mp4.parquet",
        "Normal/003.mp4.parquet",
    ]
    remote_store, local_store = OutputStore("s3://vad-test/out", s3_endpoint), OutputStore(out)
    for rel in s3_ids:
        remote = remote_store.read_table(f"s3://vad-test/out/features/{EXTRACTOR}/{rel}")
        local = local_store.read_table(os.path.join(out, "features", EXTRACTOR, rel))
        np.testing.assert_allclose(remote.features, local.features, rtol=1e-5, atol=1e-5)
        for col in ("clip_index", "start_frame", "end_frame", "center_frame", "start_s", "end_s"):
            np.testing.assert_array_equal(remote.column(col), local.column(col))
    runs = fs.ls("vad-test/out/runs")
    assert len(runs) == 1 and fs.exists(runs[0] + "/manifest.parquet")


def test_a_file_larger_than_a_task_is_split_across_two_workers_and_merged(prefect_api, tmp_path, monkeypatch):
    """`extractor.task_mb` 1 and two LocalCluster workers: the 1.25 MB sample video becomes two parts extracted by
    two tasks; the run reports one video with all its clips in one Parquet, the same as one task makes."""
    import shutil

    from tests.conftest import VIDEOS

    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copy(os.path.join(VIDEOS, "v_ZNVhz7ctTq0.mp4"), archive / "long.mp4")
    monkeypatch.setenv("VAD_TASK_MB", "1")
    args = ["--archive", str(archive), "--size", "32", "--stride", "32"]
    result = vad("extract", *args, "--out", tmp_path / "split", "--workers", 2)
    assert result.exit_code == 0, result.output
    assert "long.mp4: larger than a task (1 MB), extracted in 2 parts by 2 tasks" in " ".join(result.output.split())
    summary, run_dir = latest_summary(str(tmp_path / "split"))
    assert summary["counts"] == {"done": 1, "skipped": 0, "failed": 0, "quarantined": 0}
    manifest = pd.read_parquet(os.path.join(run_dir, "manifest.parquet"))
    features = sorted(p.name for p in (tmp_path / "split" / "features").rglob("*.parquet"))
    assert features == ["long.mp4.parquet"] and manifest.clips.tolist() == [manifest.clips.iloc[0]]
    monkeypatch.setenv("VAD_TASK_MB", "2048")
    assert vad("extract", *args, "--out", tmp_path / "whole").exit_code == 0
    [split] = (tmp_path / "split" / "features").rglob("long.mp4.parquet")
    [whole] = (tmp_path / "whole" / "features").rglob("long.mp4.parquet")
    a, b = pd.read_parquet(split), pd.read_parquet(whole)
    assert a.clip_index.tolist() == list(range(len(b))) and a.start_frame.tolist() == b.start_frame.tolist()
    assert manifest.clips.iloc[0] == len(b)
    np.testing.assert_allclose(np.stack(a.feature), np.stack(b.feature), atol=1e-4)
