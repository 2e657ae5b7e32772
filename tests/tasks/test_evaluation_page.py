"""evaluation.html: one self-contained page per model and one comparing models evaluated together, with ROC and
precision-recall curves, per-class bars and the calibration curve, all embedded; nothing loads from elsewhere."""

import base64
import json
from html.parser import HTMLParser

import numpy as np

from tasks.jobs.annotations import load_annotations
from tasks.jobs.calibrate import calibrate
from tasks.jobs.evaluate import evaluate_models
from tasks.models.repository import read_card
from tasks.store.output import OutputStore
from tests.tasks.test_calibration import VIDEOS, validation, write_scores  # noqa: F401 (fixture)


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__()
        self.images: list[tuple[str, str]] = []
        self.sources: list[str] = []  # every src/href of any tag
        self.csp = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.sources += [v for k, v in attrs if k in ("src", "href") and v is not None]
        if tag == "img":
            self.images.append((a["alt"], a["src"]))
        if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy":
            self.csp = a["content"]


def read_page(store: OutputStore, url: str) -> Page:
    page = Page(store.read_bytes(url).decode())
    assert page.csp.startswith("default-src 'none'; img-src data:")
    for alt, src in page.images:
        assert src.startswith("data:image/png;base64,"), alt
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n", alt
    assert all(s.startswith("data:") for s in page.sources)  # nothing is fetched
    return page


def test_pages_show_curves_per_class_bars_and_the_calibration(validation, tmp_path):  # noqa: F811
    store, card, annotations_csv = validation
    calibrate(store, card, store, load_annotations(annotations_csv), annotations_csv, "f1", 0.25)
    write_scores(store, "baseline")  # a second, uncalibrated model under the same output
    result = evaluate_models([store.scores_dir(card.model_id), store.scores_dir("baseline")], annotations_csv,
                             resamples=50)  # fmt: skip

    comparison = read_page(store, result["comparison"])
    alts = [alt for alt, _ in comparison.images]
    assert alts == ["ROC curves", "precision-recall curves", "per-class bars of adnet-val",
                    "calibration curve of adnet-val", "per-class bars of baseline"]  # fmt: skip
    text = store.read_bytes(result["comparison"]).decode()
    assert "AP (trapezoid)" in text and "95% intervals" in text and "not calibrated" in text

    own = read_page(store, store.evaluation(card.model_id, ".html"))
    assert [alt for alt, _ in own.images][2:] == ["per-class bars of adnet-val", "calibration curve of adnet-val"]
    saved = json.loads(store.read_bytes(store.evaluation(card.model_id, ".json")))
    roc, pr = saved["curves"]["roc"], saved["curves"]["pr"]
    assert roc["fpr"][0] == 0.0 and roc["tpr"][-1] == 1.0 and len(pr["recall"]) == len(pr["precision"]) <= 300
    assert abs(np.trapezoid(roc["tpr"], roc["fpr"]) * 100 - saved["auc"]) < 0.5  # thinned to <= 300 points
    assert saved["calibration"]["threshold"] == read_card(store, card.model_id).threshold == saved["threshold"]
    assert saved["previous_threshold"] == 0.5 and "calibration" not in result["results"][1]
    assert len(VIDEOS) == saved["videos"]
