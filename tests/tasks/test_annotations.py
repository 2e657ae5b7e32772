from tasks.jobs.annotations import VideoAnnotation, load_annotations, match_annotations, read_csv
from tests.conftest import ANNOTATIONS


def test_ucf_crime_txt_counts():
    anns = load_annotations(f"{ANNOTATIONS}/Temporal_Anomaly_Annotation.txt")
    assert len(anns) == 290
    abnormal = [a for a in anns.values() if a.segments]
    assert len(abnormal) == 140 and sum(len(a.segments) for a in anns.values()) == 156
    assert sum(a.label_class == "Normal" for a in anns.values()) == 150
    assert anns["Abuse028_x264"].segments == [(165, 240)] and anns["Abuse028_x264"].label_class == "Abuse"
    assert anns["Abuse028_x264"].unit == "frames"


def test_ucf_crime_v2_json_counts():
    test = load_annotations(f"{ANNOTATIONS}/ucf_crime_v2/abnormal/test.json")
    assert len(test) == 158 and sum(len(a.segments) for a in test.values()) == 184
    assert test["Abuse/Abuse028_x264.mp4"].segments == [(6.0, 8.0)]
    both = load_annotations(
        f"{ANNOTATIONS}/ucf_crime_v2/abnormal/test.json,{ANNOTATIONS}/ucf_crime_v2/normal/test.json"
    )
    assert len(both) == 158 + 150
    train = load_annotations(f"{ANNOTATIONS}/ucf_crime_v2/abnormal/train.json")
    assert len(train) == 1037 and sum(len(a.segments) for a in train.values()) == 1443
    normal = load_annotations(f"{ANNOTATIONS}/ucf_crime_v2/normal/test.json")
    assert all(a.segments == [] and a.label_class == "Normal" for a in normal.values())


def test_csv_and_clip_labels(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("video_id,start_s,end_s\ncam1/a.mp4,1.0,2.0\ncam1/a.mp4,5,6\ncam2/b.mp4,,\n")
    anns = read_csv(str(path))
    assert anns["cam1/a.mp4"].segments == [(1.0, 2.0), (5.0, 6.0)] and anns["cam2/b.mp4"].segments == []
    ann = VideoAnnotation("x", "X", [(1.0, 1.75)])  # frames 16..28 at 16 fps
    labels = ann.clip_labels([0, 8, 16, 24], [16, 24, 32, 40], 40, 16.0)
    # clip [8,24) has 8/16 abnormal frames (not most); [16,32) has 12/16
    assert labels.tolist() == [0, 0, 1, 0]


def test_bad_csv_names_file_and_line(tmp_path):
    import pytest

    bad = tmp_path / "bad.csv"
    bad.write_text("video,start_s,end_s\na.mp4,1,2\n")
    with pytest.raises(ValueError, match="missing \\['video_id'\\]"):
        read_csv(str(bad))
    bad.write_text("video_id,start_s,end_s\na.mp4,1,2\nb.mp4,3,\n")
    with pytest.raises(ValueError, match="bad.csv:3"):
        read_csv(str(bad))


def test_matching_is_explicit():
    anns = {
        "Abuse028_x264": VideoAnnotation("Abuse028_x264", "Abuse", [(1, 2)], "frames"),
        "Missing001_x264": VideoAnnotation("Missing001_x264", "Abuse"),
        "Dup": VideoAnnotation("Dup", "X"),
        "cam/exact.mp4": VideoAnnotation("cam/exact.mp4", "X"),
    }
    m = match_annotations(anns, ["Abuse/Abuse028_x264.mp4", "a/Dup.mp4", "b/Dup.avi", "cam/exact.mp4", "other.mp4"])
    assert set(m.matched) == {"Abuse/Abuse028_x264.mp4", "cam/exact.mp4"}
    assert m.unmatched_names == ["Missing001_x264"] and m.ambiguous_names == ["Dup"]
    assert m.unannotated_ids == ["a/Dup.mp4", "b/Dup.avi", "other.mp4"]


def test_ucf_crime_line_with_two_segments_and_minus_one_markers(tmp_path):
    path = tmp_path / "Temporal_Anomaly_Annotation.txt"
    path.write_text("Arson011_x264  Arson  150  420  680  1267\nNormal_Videos_003_x264  Normal  -1  -1  -1  -1\n"
                    "Burglary005_x264  Burglary  10  20  -1  -1\n")  # fmt: skip
    anns = load_annotations(str(path))
    labels = anns["Arson011_x264"].frame_labels(1300, 30.0)
    assert labels.sum() == (420 - 150 + 1) + (1267 - 680 + 1)  # both ends inclusive
    assert labels[[149, 150, 420, 421, 679, 680, 1267, 1268]].tolist() == [0, 1, 1, 0, 0, 1, 1, 0]
    assert (
        anns["Normal_Videos_003_x264"].segments == [] and not anns["Normal_Videos_003_x264"].frame_labels(90, 30).any()
    )
    assert anns["Burglary005_x264"].frame_labels(30, 30.0).tolist() == [0] * 10 + [1] * 11 + [0] * 9
