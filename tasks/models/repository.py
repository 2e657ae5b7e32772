"""Trained models in an output store: models/<model_id>/checkpoint.pt + config.json (the model card).

Loading goes through anomaly_models.checkpoint (weights_only: a checkpoint never executes code) and checks the
checkpoint against the hash in its card.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import TYPE_CHECKING

from anomaly_models.checkpoint import CheckpointError, checkpoint_bytes, load_checkpoint_bytes
from anomaly_models.errors import NotFound

from ..store.output import OutputStore
from .card import ModelCard

if TYPE_CHECKING:
    from torch import nn

CHECKPOINT, CARD = "checkpoint.pt", "config.json"


def save_model(store: OutputStore, card: ModelCard, model: nn.Module) -> ModelCard:
    """Writes the checkpoint, then the card with the checkpoint's hash; returns that card."""
    data = checkpoint_bytes(model, card.model, card.extractor_id, extra={"window": card.window})
    store.write_bytes(store.model_file(card.model_id, CHECKPOINT), data)
    card = card.with_checkpoint(hashlib.sha256(data).hexdigest())
    store.write_json(store.model_file(card.model_id, CARD), card.to_json())
    return card


def write_card(store: OutputStore, card: ModelCard) -> str:
    """The card alone (its checkpoint unchanged), e.g. with a calibrated threshold."""
    return store.write_json(store.model_file(card.model_id, CARD), card.to_json())


def read_card(store: OutputStore, model_id: str) -> ModelCard:
    url = store.model_file(model_id, CARD)
    try:
        data = store.read_json(url)
    except FileNotFoundError:
        raise NotFound(f"no trained model at {store.model_dir(model_id)} (expected {CARD} and {CHECKPOINT})") from None
    return ModelCard.from_json(data, where=url)


def locate_model(url: str, storage_options=None) -> tuple[OutputStore, ModelCard]:
    """--model <root>/models/<model_id> -> (the store holding it, its card)."""
    store, model_id = OutputStore.locate(url, "models", storage_options)
    return store, read_card(store, model_id)


@lru_cache(maxsize=4)
def _load(store: OutputStore, model_id: str, sha: str, device: str) -> nn.Module:
    data = store.read_bytes(store.model_file(model_id, CHECKPOINT))
    if hashlib.sha256(data).hexdigest() != sha:
        raise CheckpointError(f"checkpoint of {store.model_dir(model_id)} does not match its {CARD} (sha256 differs)")
    model, _ = load_checkpoint_bytes(data, map_location=device)
    return model.to(device)


def load_model(store: OutputStore, card: ModelCard, device: str = "cpu") -> nn.Module:
    """The model of a card, cached per worker process, store, checkpoint hash and device."""
    return _load(store, card.model_id, card.checkpoint_sha256, device)
