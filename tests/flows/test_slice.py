"""The whole slice on real flows: train -> scan (extract, score, report) -> evaluate, locally and on S3."""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from flows.cli import EXIT_SOME_FAILED
from tasks.jobs.extract import ExtractJob, extract_video
from tasks.jobs.report import wall_clock
from tasks.media.backbones import ExtractorSpec
from tasks.store.archive import discover_videos
from tasks.store.output import OutputStore
from tests.conftest import EXTRACTOR, VIDEOS, vad

MODEL_ID = f"adnet-w16-{EXTRACTOR}"
WEIRD = "Normal/a<b>&c.mp4"
REPORT_FIELDS = {"video_id", "duration_s", "fps", "model_id", "threshold", "segments", "clip_scores"}
SEGMENT_FIELDS = {"start_s", "end_s", "start_frame", "end_frame", "peak_score", "mean_score"}


@pytest.fixture(scope="module")
def scan_archive(small_archive, tmp_path_factory):
    """The small archive (with the corrupted video) plus a video whose name needs HTML escaping."""
    root = tmp_path_factory.mktemp("scan-archive")
    shutil.copytree(small_archive / "videos", root, dirs_exist_ok=True)
    shutil.copy(root / "Normal" / "003.mp4", root / WEIRD)
    return root


@pytest.fixture(scope="module")
def scanned(trained_model, scan_archive, tmp_path_factory):
    out = tmp_path_factory.mktemp("scan-out")
    result = vad("scan", "--archive", scan_archive, "--model", trained_model, "--out", out)
    return out, result


def test_scan_extracts_scores_reports_and_quarantines_corrupted(scanned):
    out, result = scanned
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    runs = sorted(os.listdir(out / "runs"))
    assert all((out / "runs" / r / "manifest.parquet").exists() for r in runs)  # the quick look left no folder
    manifest = pd.read_parquet(out / "runs" / runs[-1] / "manifest.parquet").set_index("video_id")
    assert manifest.loc["corrupted.mp4", "status"] == "failed"
    assert "DECORDError" in manifest.loc["corrupted.mp4", "error"]
    assert (manifest.drop("corrupted.mp4").status == "done").all() and len(manifest) == 6
    reports = out / "reports" / MODEL_ID
    for vid in manifest.index.drop("corrupted.mp4"):
        report = json.loads((reports / (vid + ".json")).read_text())
        assert REPORT_FIELDS <= set(report) and report["video_id"] == vid and report["model_id"] == MODEL_ID
        assert all(SEGMENT_FIELDS <= set(seg) for seg in report["segments"])
        assert len(report["clip_scores"]) == manifest.loc[vid, "clips"] or manifest.loc[vid, "stage"] == "report"
        page = (reports / (vid + ".html")).read_text()
        assert "data:image/png;base64," in page and "<table>" in page or "No anomalous segments" in page
    assert not (reports / "corrupted.mp4.json").exists()
    weird_page = (reports / (WEIRD + ".html")).read_text()
    assert "a&lt;b&gt;&amp;c.mp4" in weird_page and "a<b>&c" not in weird_page
    index = (reports / "index.html").read_text()
    assert "a&lt;b&gt;&amp;c.mp4" in index and "Explosion/000.mp4" in index
    segments = pd.read_parquet(out / "index" / MODEL_ID / "segments")  # the index's parts, read as one dataset
    assert set(segments.columns) >= SEGMENT_FIELDS | {"video_id", "run_id"}
    from tasks.jobs.report_index import read_index
    from tasks.store.output import OutputStore

    videos, latest = read_index(OutputStore(str(out)), MODEL_ID)  # each video's latest report
    reported = sorted(manifest.index.drop("corrupted.mp4"))
    assert sorted(videos.column("video_id").to_pylist()) == reported
    flagged = {vid for vid in reported if json.loads((reports / (vid + ".json")).read_text())["segments"]}
    assert set(latest.column("video_id").to_pylist()) == flagged


def test_events_have_ids_times_clips_posters_and_a_timeline(scanned):
    out, _ = scanned
    reports = out / "reports" / MODEL_ID
    with_segments = [json.loads(p.read_text()) for p in reports.rglob("*.json")]
    with_segments = [r for r in with_segments if r["segments"]]
    assert with_segments, "the trained model should flag at least one segment in the archive"
    report = with_segments[0]
    page = (reports / (report["video_id"] + ".html")).read_text()
    assert page.count("data:image/png;base64,") == 1  # the timeline; posters are files beside the page
    assert report["camera"] == report["video_id"].split("/")[0] and report["time_source"] == "none"
    for n, seg in enumerate(report["segments"], start=1):
        assert len(seg["event_id"]) == 16 and seg["start_time"] is None  # these files carry no recording time
        assert seg["clip"] == f"{report['video_id']}.events/{n}.mp4" and (reports / seg["clip"]).stat().st_size > 0
        assert (reports / seg["poster"]).read_bytes()[:2] == b"\xff\xd8"  # JPEG
        assert seg["clip_start_s"] <= seg["start_s"] and seg["clip_end_s"] >= seg["end_s"]
        assert f'data-event="{seg["event_id"]}"' in page


def test_evaluate_prints_table_and_writes_json_and_markdown(scanned, small_archive):
    out, _ = scanned
    scores = out / "scores" / MODEL_ID
    result = vad("evaluate", "--scores", scores, "--annotations", small_archive / "annotations.json")
    assert result.exit_code == 0, result.output
    assert "abnormal F1@25" in result.output and MODEL_ID in result.output
    evaluation = json.loads((scores / "evaluation.json").read_text())
    assert set(evaluation["f1"]) == {"abnormal", "normal", "all"} and set(evaluation["f1"]["all"]) == {"10", "25", "50"}
    assert evaluation["videos"] == 4 and evaluation["auc"] is not None
    assert {"ap", "ap_trapezoid", "far", "auc_abnormal_videos", "detection_map", "intervals"} <= set(evaluation)
    low, high = evaluation["intervals"]["auc"]
    assert low <= evaluation["auc"] <= high and evaluation["bootstrap"]["resamples"] == 1000
    assert "AP (trapezoid)" in result.output and "FAR %" in result.output
    assert set(evaluation["per_class"]) == {"Explosion", "Fighting", "Normal"}
    assert WEIRD in evaluation["unannotated_videos"]
    assert (scores / "evaluation.md").read_text().startswith("| model |")
    runs = sorted(os.listdir(out / "runs"))
    summary = json.loads((out / "runs" / runs[-1] / "summary.json").read_text())
    assert summary["flow"] == "evaluate" and summary["counts"] == {
        "done": 4,
        "skipped": 1,
        "failed": 0,
        "quarantined": 0,
    }


def test_second_scan_is_a_noop(scanned, trained_model, scan_archive):
    out, _ = scanned
    before = {p: p.stat().st_mtime_ns for p in (out / "scores").rglob("*.parquet")}
    result = vad("scan", "--archive", scan_archive, "--model", trained_model, "--out", out)
    assert result.exit_code == 0, result.output
    assert "nothing new" in result.output
    runs = sorted(os.listdir(out / "runs"))
    summary = json.loads((out / "runs" / runs[-1] / "summary.json").read_text())
    assert summary["work"] == {"extract": 0, "score": 0, "report": 0}
    assert summary["counts"]["done"] == 0 and summary["counts"]["quarantined"] == 1
    assert before == {p: p.stat().st_mtime_ns for p in (out / "scores").rglob("*.parquet")}


QUICK_SCAN = """import json, sys
from flows.cli import app
try:
    app()
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "loaded": sorted(m for m in ("torch", "prefect", "distributed") if m in sys.modules)}))
"""


def quick_scan(*args) -> dict:
    """`vad scan` in its own process: (exit code, which heavy modules it loaded)."""
    argv = [sys.executable, "-c", QUICK_SCAN, "scan", *map(str, args)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_scan_with_nothing_new_loads_neither_torch_nor_prefect_and_keeps_the_index(
    scanned, trained_model, scan_archive
):
    out, _ = scanned
    reports = out / "reports" / MODEL_ID
    index = reports / "index.html"
    args = ("--archive", scan_archive, "--model", trained_model, "--out", out)
    before = index.stat().st_mtime_ns
    assert quick_scan(*args) == {"code": 0, "loaded": []}
    assert index.stat().st_mtime_ns == before  # no report changed: the index is not rebuilt (no report read)
    runs = sorted(os.listdir(out / "runs"))
    assert json.loads((out / "runs" / runs[-1] / "summary.json").read_text())["index"] == str(index)
    from tasks.jobs.report_index import mark_pending

    vid = str(next(reports.rglob("*.mp4.json")).relative_to(reports)).removesuffix(".json")
    store = OutputStore(str(out))
    mark_pending(store, MODEL_ID, "20260101T000000Z-scan-dead00", [vid])  # a run killed after reporting it
    assert quick_scan(*args) == {"code": 0, "loaded": []}
    assert index.stat().st_mtime_ns > before  # the next run indexed the dead run's report
    assert not os.listdir(out / "index" / MODEL_ID / "pending")


def test_scoring_features_of_another_extractor_is_refused(trained_model, tmp_path):
    archive = tmp_path / "a"
    archive.mkdir()
    shutil.copy(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), archive / "clip.mp4")
    spec = ExtractorSpec("mc3_18", size=32)
    outcome = extract_video(discover_videos(str(archive))[0], OutputStore(str(tmp_path / "out")), ExtractJob(spec))
    assert outcome.status == "done"
    result = vad(
        "score",
        "--features",
        tmp_path / "out" / "features" / spec.extractor_id,
        "--model",
        trained_model,
        "--out",
        tmp_path / "out",
    )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert EXTRACTOR in text and spec.extractor_id in text


def test_a_calibrated_threshold_is_what_the_next_scan_reports_with(scanned, trained_model, scan_archive,
                                                                      small_archive, tmp_path):  # fmt: skip
    """Calibrate a copy of the model on the scan's scores (the annotated videos as a validation split): the card
    gets the new threshold and the next scan rewrites every report with it, nothing else."""
    out = tmp_path / "out"
    shutil.copytree(scanned[0], out)
    model = out / "models" / MODEL_ID
    shutil.copytree(trained_model, model)
    result = vad("calibrate", "--model", model, "--scores", out / "scores" / MODEL_ID,
                 "--annotations", small_archive / "annotations.json", "--by", "f1", "--k", "25")  # fmt: skip
    assert result.exit_code == 0, result.output
    card = json.loads((model / "config.json").read_text())
    assert card["threshold"] != 0.5 and card["threshold_history"][0]["threshold"] == 0.5
    assert card["calibration"]["criterion"] == "f1" and card["calibration"]["curve"]
    rescan = vad("scan", "--archive", scan_archive, "--model", model, "--out", out)
    assert rescan.exit_code == 0, rescan.output
    runs = sorted(os.listdir(out / "runs"))
    summary = json.loads((out / "runs" / runs[-1] / "summary.json").read_text())
    reports = sorted((out / "reports" / MODEL_ID).rglob("*.mp4.json"))
    assert len(reports) == 5 and summary["work"] == {"extract": 0, "score": 0, "report": 5}  # reports, only them
    from anomaly_models.metrics import score_segments

    for path in reports:
        report = json.loads(path.read_text())
        scores = pd.read_parquet(out / "scores" / MODEL_ID / (report["video_id"] + ".parquet"))["score"]
        assert report["threshold"] == card["threshold"]
        assert len(report["segments"]) == len(score_segments(scores.to_numpy(), card["threshold"]))


def test_one_video_end_to_end_prints_its_events_with_wall_clock_times(trained_model, small_archive, tmp_path):
    """`vad score VIDEO`: extract, score and report one file in one process, without Prefect or Dask; its id under
    --archive gives the camera and the recording start."""
    archive = tmp_path / "archive"
    video = archive / "cam01" / "2026-11-28" / "013000.mp4"
    video.parent.mkdir(parents=True)
    shutil.copy(small_archive / "videos" / "Explosion" / "000.mp4", video)
    out = tmp_path / "out"
    code = (
        "import sys; from flows.cli import app\n"
        "try:\n    app(sys.argv[1:], standalone_mode=False)\nfinally:\n"
        "    print('imported:', sorted(m for m in ('prefect', 'distributed', 'dask') if m in sys.modules))"
    )
    args = ["score", str(video), "--archive", str(archive), "--model", str(trained_model), "--out", str(out)]
    env = {**os.environ, "COLUMNS": "200", "VAD_TIMEZONE": "Europe/Istanbul"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported: []" in done.stdout
    report = json.loads((out / "reports" / MODEL_ID / "cam01/2026-11-28/013000.mp4.json").read_text())
    assert report["camera"] == "cam01" and report["time_source"] == "template"
    assert report["recorded_at"] == "2026-11-28T01:30:00.000+03:00"
    assert "cam01/2026-11-28/013000.mp4 (camera cam01, 2026-11-28 01:30:00 +03:00)" in done.stdout
    for seg in report["segments"]:
        assert seg["start_time"].endswith("+03:00") and wall_clock(seg["start_time"]) in done.stdout
    summary = json.loads(next((out / "runs").glob("*/summary.json")).read_text())
    assert summary["flow"] == "score-video" and summary["counts"]["done"] == 1
    assert (out / "index" / MODEL_ID / "videos").exists()


def test_the_review_loop_labels_evaluate_and_calibrate(scanned, trained_model, tmp_path):
    """scan -> review -> recalibrate: analysts' verdicts (saved as the app saves them) are the labels."""
    from tasks.jobs.reviews import new_review, save_review

    out = tmp_path / "out"
    shutil.copytree(scanned[0], out)
    model = out / "models" / MODEL_ID
    shutil.copytree(trained_model, model)
    store = OutputStore(str(out))
    reviewed = set()
    for path in (out / "reports" / MODEL_ID).rglob("*.mp4.json"):
        report = json.loads(path.read_text())
        for seg in report["segments"]:
            verdict = "false_alarm" if report["video_id"].startswith("Normal") else "confirmed"
            review = {**seg, "video_id": report["video_id"], "verdict": verdict, "note": "checked"}
            save_review(store, MODEL_ID, new_review(review, "ana"))
            reviewed.add(report["video_id"])
    assert reviewed
    reviews = out / "reviews" / MODEL_ID
    result = vad("evaluate", "--scores", out / "scores" / MODEL_ID, "--annotations", reviews, "--bootstrap", 0)
    assert result.exit_code == 0, result.output
    evaluation = json.loads((out / "scores" / MODEL_ID / "evaluation.json").read_text())
    assert evaluation["videos"] == len(reviewed)
    calibrated = vad("calibrate", "--model", model, "--scores", out / "scores" / MODEL_ID, "--annotations", reviews)
    assert calibrated.exit_code == 0, calibrated.output
    assert json.loads((model / "config.json").read_text())["calibration"]["videos"] == len(reviewed)


def test_whole_slice_with_output_on_s3(trained_model, scan_archive, small_archive, s3_endpoint, monkeypatch):
    import s3fs

    fs = s3fs.S3FileSystem(**s3_endpoint)
    fs.put(str(trained_model) + "/", f"vad-test/slice/models/{MODEL_ID}/", recursive=True)
    monkeypatch.setenv("VAD_STORAGE_OPTIONS", json.dumps(s3_endpoint))
    result = vad(
        "scan",
        "--archive",
        scan_archive,
        "--model",
        f"s3://vad-test/slice/models/{MODEL_ID}",
        "--out",
        "s3://vad-test/slice",
    )
    assert result.exit_code == EXIT_SOME_FAILED, result.output
    assert s3_endpoint["secret"] not in result.output
    fs.invalidate_cache()
    assert fs.exists(f"vad-test/slice/reports/{MODEL_ID}/index.html")
    report = json.loads(fs.cat_file(f"vad-test/slice/reports/{MODEL_ID}/Explosion/000.mp4.json"))
    assert REPORT_FIELDS <= set(report)
    result = vad(
        "evaluate",
        "--scores",
        f"s3://vad-test/slice/scores/{MODEL_ID}",
        "--annotations",
        small_archive / "annotations.json",
    )
    assert result.exit_code == 0, result.output
    assert fs.exists(f"vad-test/slice/scores/{MODEL_ID}/evaluation.json")
    # training reads features from S3 as well
    result = vad(
        "train",
        "--features",
        f"s3://vad-test/slice/features/{EXTRACTOR}",
        "--annotations",
        small_archive / "annotations.json",
        "--out",
        "s3://vad-test/slice",
        "--epochs",
        2,
        "--window",
        16,
        "--model-id",
        "from-s3",
    )
    assert result.exit_code == 0, result.output
    assert fs.exists("vad-test/slice/models/from-s3/checkpoint.pt")


def test_backfill_in_chunks_with_include_globs(trained_model, extracted):
    archive, out, _ = extracted  # features already extracted: the backfill scores and reports
    result = vad(
        "backfill",
        "--archive",
        archive,
        "--model",
        trained_model,
        "--out",
        out,
        "--chunk",
        2,
        "--include",
        "Explosion/*",
        "--include",
        "Normal/*",
    )
    assert result.exit_code == 0, result.output
    runs = sorted(os.listdir(out / "runs"))
    summary = json.loads(
        (
            out
            / "runs"
            / [r for r in runs if r.split("-", 1)[1].startswith("backfill-") and "-backfill-chunk-" not in r][-1]
            / "summary.json"
        ).read_text()
    )
    assert summary["flow"] == "backfill" and summary["videos"] == 3 and len(summary["chunks"]) == 2
    reports = out / "reports" / MODEL_ID
    assert (reports / "Explosion" / "000.mp4.json").exists() and (reports / "Normal" / "003.mp4.json").exists()
    assert not (reports / "Fighting" / "001.mp4.json").exists()
    chunk = pd.read_parquet(out / "runs" / summary["chunks"][0] / "manifest.parquet")
    assert len(chunk) == 2
