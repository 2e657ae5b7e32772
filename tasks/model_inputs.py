"""What each model reads per video: ADNet and the baselines take clip features; ADOR takes the spatial tokens
of the features table and the centre-frame objects of the objects table. Missing inputs are clear errors."""
from __future__ import annotations

import posixpath

from .feature_store import ClipTable, read_table
from .objects import padded_objects
from .storage import join

OBJECT_MODELS = {"ador"}
DEFAULTS = {"adnet": {"lr": 5e-4, "loss": "mse"}, "ador": {"lr": 5e-5, "loss": "bce"},
            "mlp": {"lr": 5e-4, "loss": "mse"}, "edtcn": {"lr": 5e-4, "loss": "mse"}}


class MissingInputs(ValueError):
    pass


def objects_root_for(features_root: str, detector_id: str) -> str:
    """<out>/features/<extractor_id> -> <out>/objects/<detector_id>."""
    out = posixpath.dirname(posixpath.dirname(features_root.rstrip("/")))
    return join(out, "objects", detector_id)


def load_video_inputs(model_name: str, features_root: str, video_id: str, objects_root: str | None = None,
                      max_objects: int = 36, storage_options=None):
    """(features table, model inputs): a [T, D] array, or ADOR's dict of arrays."""
    table = read_table(join(features_root, video_id + ".parquet"), storage_options)
    if model_name not in OBJECT_MODELS:
        return table, table.features
    if table.tokens is None:
        raise MissingInputs(f"model {model_name} needs spatial tokens but {features_root} has none for {video_id}: "
                            "extract with --tokens")
    if not objects_root:
        raise MissingInputs(f"model {model_name} needs object features: pass --objects <out>/objects/<detector_id>")
    try:
        objects = read_table(join(objects_root, video_id + ".parquet"), storage_options)
    except FileNotFoundError:
        raise MissingInputs(f"model {model_name} needs object features but {objects_root} has none for "
                            f"{video_id}: extract with --objects") from None
    if objects.metadata.get("fingerprint") != table.metadata.get("fingerprint") or \
            objects.table.num_rows != table.table.num_rows:
        raise MissingInputs(f"object features of {video_id} under {objects_root} are stale (another version of the "
                            "video or other clips than its action features): re-extract with --objects")
    return table, {"tokens": table.tokens, **padded_objects(objects, max_objects)}


def model_kwargs(model_name: str, sample: ClipTable, sample_inputs, window: int, options: dict) -> dict:
    from anomaly_models import layers_for_window

    if model_name == "ador":
        kwargs = {"token_dim": sample_inputs["tokens"].shape[-1], "object_dim": sample_inputs["objects"].shape[-1],
                  "layers": layers_for_window(window), "max_tokens": max(256, sample_inputs["tokens"].shape[1])}
    elif model_name == "adnet":
        kwargs = {"in_dim": sample.features.shape[1], "layers": layers_for_window(window)}
    else:
        kwargs = {"in_dim": sample.features.shape[1]}
    return {**kwargs, **options}
