"""Trained models on the output root: models/<model_id>/checkpoint.pt + config.json.

config.json says what the model needs: the extractor id and spec of its features, window, threshold, history.
Loading goes through anomaly_models.checkpoint (weights_only: a checkpoint never executes code).
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from anomaly_models.checkpoint import checkpoint_bytes, load_checkpoint_bytes

from .feature_store import json_dumps
from .storage import join, read_bytes, write_bytes_atomic


def model_dir(out_root: str, model_id: str) -> str:
    return join(out_root, "models", model_id)


def save_model(out_root: str, model_id: str, model, model_name: str, config: dict, storage_options=None) -> str:
    base = model_dir(out_root, model_id)
    data = checkpoint_bytes(model, model_name, config["extractor_id"], extra={"window": config["window"]})
    write_bytes_atomic(join(base, "checkpoint.pt"), data, storage_options)
    config = {**config, "checkpoint_sha256": hashlib.sha256(data).hexdigest()}
    write_bytes_atomic(join(base, "config.json"), json_dumps(config), storage_options)
    return base


def _dir_of(model_url: str) -> str:
    return model_url.rstrip("/").removesuffix("/checkpoint.pt").removesuffix("/config.json")


def read_model_config(model_url: str, storage_options=None) -> dict:
    """model_url: the models/<model_id> folder (or its checkpoint.pt)."""
    try:
        return json.loads(read_bytes(join(_dir_of(model_url), "config.json"), storage_options))
    except FileNotFoundError:
        raise FileNotFoundError(f"no trained model at {model_url} (expected config.json and checkpoint.pt)") from None


@lru_cache(maxsize=4)
def _load(model_url: str, sha: str, device: str, options_json: str):
    data = read_bytes(join(_dir_of(model_url), "checkpoint.pt"), json.loads(options_json))
    if hashlib.sha256(data).hexdigest() != sha:
        raise ValueError(f"checkpoint at {model_url} does not match its config.json (sha256 differs)")
    model, payload = load_checkpoint_bytes(data, map_location=device)
    return model.to(device), payload


def load_model(model_url: str, device: str = "cpu", storage_options=None):
    """(model, payload, config), cached per worker process and checkpoint hash."""
    config = read_model_config(model_url, storage_options)
    model, payload = _load(model_url, config["checkpoint_sha256"], device,
                           json.dumps(storage_options or {}, sort_keys=True))
    return model, payload, config
