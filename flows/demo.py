"""demo: the whole product on a generated archive, on embedded defaults (local folder, LocalCluster, Prefect's
ephemeral API). Generates train and test splits, extracts, trains ADNet, scans the test split, evaluates."""
from __future__ import annotations

import os

from prefect import flow

from tasks.storage import join
from tasks.synthetic_archive import generate_archive, write_annotations

from .extract_flow import extract_features
from .evaluate_flow import evaluate
from .progress import say
from .scan_flow import scan
from .settings import Settings
from .train_flow import train_model


@flow(name="demo")
def demo(settings: Settings, train_videos: int = 10, test_videos: int = 6) -> dict:
    out = settings.out
    archive = os.path.join(out, "demo-archive")
    if not os.path.exists(os.path.join(out, "demo-annotations", "test.json")):
        say(f"generating a synthetic archive under {archive} ({train_videos} train, {test_videos} test)")
        write_annotations(os.path.join(out, "demo-annotations", "train.json"),
                          generate_archive(os.path.join(archive, "train"), train_videos, seed=1, prefix="train"))
        write_annotations(os.path.join(out, "demo-annotations", "test.json"),
                          generate_archive(os.path.join(archive, "test"), test_videos, seed=2, prefix="test"))
    train_settings = settings.model_copy(update={"archive": os.path.join(archive, "train")})
    extracted = extract_features(train_settings)
    features = join(out, "features", extracted["extractor_id"])
    config = train_model(train_settings, features, os.path.join(out, "demo-annotations", "train.json"))
    model_url = join(out, "models", config["model_id"])
    test_settings = settings.model_copy(update={"archive": os.path.join(archive, "test")})
    scanned = scan(test_settings, model_url)
    evaluation = evaluate(settings, [join(out, "scores", config["model_id"])],
                          os.path.join(out, "demo-annotations", "test.json"))
    return {"extract": extracted, "model": config, "scan": scanned, "evaluation": evaluation,
            "index": scanned["index"]}
