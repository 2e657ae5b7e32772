"""demo: the whole product on a generated archive, on embedded defaults (local folder, LocalCluster, Prefect's
ephemeral API). Generates train, validation and test splits, extracts action features, spatial tokens and object
features, trains ADNet, ADOR and the thesis's MLP and ED-TCN baselines, calibrates each one's threshold on the
validation split (scanned into `<out>/validation`, maximising abnormal F1@25), scans the test split with each, and
evaluates them side by side."""

from __future__ import annotations

import os
from datetime import datetime, timezone

from prefect import flow

from tasks.jobs.annotations import load_annotations
from tasks.jobs.calibrate import calibrate
from tasks.media.synthetic import generate_archive, write_annotations
from tasks.models.repository import read_card

from .evaluate_flow import evaluate
from .extract_flow import extract_features
from .progress import say
from .scan_flow import scan
from .settings import Settings
from .train_flow import train_model

# the test split's recording times (its containers' creation_time): reports show wall-clock times from them
RECORDED_FROM = datetime(2026, 11, 28, 1, 0, tzinfo=timezone.utc)

# (model, epochs, lr, constructor options): small enough for 2 CPU cores
DEMO_MODELS = [
    ("ador", 40, 1e-3, {"dim": 64, "heads": 4, "depth": 2, "stages": 3}),
    ("adnet", 100, 5e-4, {}),
    ("mlp", 100, 5e-4, {}),
    ("edtcn", 100, 5e-4, {}),
]


@flow(name="demo")
def demo(settings: Settings, train_videos: int = 10, test_videos: int = 6, val_videos: int = 4) -> dict:
    out, store = settings.storage.out, settings.store
    archive, annotations = os.path.join(out, "demo-archive"), os.path.join(out, "demo-annotations")
    if not os.path.exists(os.path.join(annotations, "val.json")):
        say(f"generating a synthetic archive under {archive} ({train_videos} train, {val_videos} validation, "
            f"{test_videos} test videos)")  # fmt: skip
        write_annotations(
            os.path.join(annotations, "train.json"),
            generate_archive(os.path.join(archive, "train"), train_videos, seed=1, prefix="train"),
        )
        write_annotations(
            os.path.join(annotations, "test.json"),
            generate_archive(
                os.path.join(archive, "test"), test_videos, seed=2, prefix="test", recorded_from=RECORDED_FROM
            ),  # fmt: skip
        )
        write_annotations(
            os.path.join(annotations, "val.json"),
            generate_archive(os.path.join(archive, "val"), val_videos, seed=3, prefix="val"),
        )
    train_settings = settings.replace(archive=os.path.join(archive, "train"))
    extracted = extract_features(train_settings)
    features = store.features_dir(extracted["extractor_id"])
    detector = settings.detector_spec
    objects = store.objects_dir(detector.detector_id) if detector else None
    test_settings = settings.replace(archive=os.path.join(archive, "test"))
    model_ids = {}
    for name, epochs, lr, options in DEMO_MODELS:
        model_settings = train_settings.replace(model=name, epochs=epochs, lr=lr, model_options=options)
        model_ids[name] = train_model(
            model_settings,
            features,
            os.path.join(annotations, "train.json"),
            objects_url=objects if name == "ador" else None,
        ).model_id
    # calibrate each model's threshold on the validation split, scanned into its own output folder
    val_settings = settings.replace(archive=os.path.join(archive, "val"), out=os.path.join(out, "validation"))
    val_annotations = os.path.join(annotations, "val.json")
    calibrations = {}
    for name, model_id in model_ids.items():
        scan(val_settings, store.model_dir(model_id))
        card = calibrate(store, read_card(store, model_id), val_settings.store, load_annotations(val_annotations),
                         val_annotations, "f1", 0.25)  # fmt: skip
        calibrations[name] = card.threshold
        say(f"calibrated {name}: threshold {card.threshold_history[-1]['threshold']:g} -> {card.threshold:g}")
    # the first scan (ADOR) extracts the test split with everything ADOR needs; the others only score and report
    scans = {name: scan(test_settings, store.model_dir(model_id)) for name, model_id in model_ids.items()}
    scores = [store.scores_dir(model_id) for model_id in model_ids.values()]
    evaluation = evaluate(settings, scores, os.path.join(annotations, "test.json"))
    return {
        "extract": extracted,
        "scans": scans,
        "evaluation": evaluation,
        "thresholds": calibrations,
        "index": scans["adnet"]["index"],
        "alerts": {name: s.get("alerts") for name, s in scans.items()},
        "indexes": {name: s["index"] for name, s in scans.items()},
    }
