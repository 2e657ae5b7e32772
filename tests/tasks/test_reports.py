import numpy as np
import pyarrow as pa

from tasks.jobs.report import build_report, hms, render_video_html
from tasks.store.tables import ClipTable, clip_columns


def _scores(threshold: float) -> ClipTable:
    cols = clip_columns("cam/<x>.mp4", np.arange(5) * 16, np.arange(5) * 16 + 16, np.arange(5) * 16 + 8, 16.0)
    cols["score"] = pa.array(np.array([0.1, 0.4, 0.45, 0.2, 0.9], np.float32))
    meta = {"fps": 16.0, "frame_count": 80, "model_id": "m", "extractor_id": "e", "threshold": threshold}
    return ClipTable(pa.table(cols), {k: str(v) for k, v in meta.items()})


def test_report_uses_the_models_threshold_unless_overridden():
    report = build_report(_scores(0.3))
    assert report["threshold"] == 0.3
    assert [(s["start_frame"], s["end_frame"]) for s in report["segments"]] == [(16, 48), (64, 80)]
    seg = report["segments"][0]
    assert seg["start_s"] == 1.0 and seg["end_s"] == 3.0 and abs(seg["peak_score"] - 0.45) < 1e-6
    assert abs(seg["mean_score"] - 0.425) < 1e-6 and seg["peak_frame"] == 40
    assert len(build_report(_scores(0.3), threshold=0.5)["segments"]) == 1


def test_html_escapes_names_and_formats_times():
    report = build_report(_scores(0.3))
    page = render_video_html(report, "", [None, None])
    assert "cam/&lt;x&gt;.mp4" in page and "<x>" not in page
    assert hms(3725.4) == "01:02:05"


def test_thumbnails_read_each_peak_frame_and_tolerate_missing_videos(tmp_path):
    import base64
    import io
    import os

    from PIL import Image

    from tasks.jobs.report import thumbnails_png
    from tests.conftest import VIDEOS

    thumbs = thumbnails_png(os.path.join(VIDEOS, "v_GGSY1Qvo990.mp4"), [8, 200])
    sizes = [Image.open(io.BytesIO(base64.b64decode(t))).size for t in thumbs]
    assert sizes == [(240, 180), (240, 180)] and thumbs[0] != thumbs[1]
    assert thumbnails_png(str(tmp_path / "gone.mp4"), [1, 2]) == [None, None]
