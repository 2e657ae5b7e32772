"""What a model reads per video, from the output store: ADNet and the baselines take the clip features; models
whose registry entry asks for tokens and objects (ADOR) take the spatial tokens of the features table and the
centre-frame objects of the objects table. Missing or stale inputs are clear refusals that name what is missing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly_models.errors import RefusedJob
from anomaly_models.registry import ModelEntry, model_entry

from ..store.output import OutputStore
from ..store.tables import ClipTable

if TYPE_CHECKING:
    from .card import ModelCard


class MissingInputs(RefusedJob):
    pass


@dataclass(frozen=True)
class InputSource:
    """Where one model's inputs live: a store, the extractor's features and (for object models) a detector's
    objects."""

    store: OutputStore
    model: str
    extractor_id: str
    detector_id: str | None = None
    max_objects: int = 36

    @classmethod
    def for_card(cls, store: OutputStore, card: ModelCard) -> InputSource:
        """The inputs of a trained model, in `store`."""
        return cls(store, card.model, card.extractor_id, card.detector_id, card.max_objects)

    @property
    def entry(self) -> ModelEntry:
        return model_entry(self.model)

    @property
    def features_dir(self) -> str:
        return self.store.features_dir(self.extractor_id)

    def features_url(self, video_id: str) -> str:
        return self.store.features(self.extractor_id, video_id)

    def features_metadata(self, video_id: str) -> dict[str, str]:
        """The features table's footer metadata ({} when missing)."""
        return self.store.read_metadata(self.features_url(video_id)) or {}

    def video_ids(self) -> list[str]:
        return self.store.video_ids(self.features_dir)

    def load(self, video_id: str, crops: bool = False) -> tuple[ClipTable, Any]:
        """(features table, model inputs): a [T, D] array, or a dict of arrays named by the model's inputs. With
        `crops` (training) and multi-crop features, feature models also get the per-crop features, `crops`."""
        table = self.store.read_table(self.features_url(video_id))
        entry = self.entry
        if not entry.needs_tokens and not entry.needs_objects:
            per_crop = table.crop_features if crops else None
            return table, table.features if per_crop is None else {"features": table.features, "crops": per_crop}
        inputs: dict[str, np.ndarray] = {}
        if entry.needs_tokens:
            if table.tokens is None:
                raise MissingInputs(
                    f"model {entry.name} needs spatial tokens but {self.features_dir} has none for "
                    f"{video_id}: extract with --tokens"
                )
            inputs["tokens"] = table.tokens
        if entry.needs_objects:
            inputs.update(padded_objects(self._objects(table, video_id), self.max_objects))
        return table, inputs

    def _objects(self, features: ClipTable, video_id: str) -> ClipTable:
        if not self.detector_id:
            raise MissingInputs(f"model {self.model} needs object features: pass --objects <out>/objects/<detector_id>")
        url = self.store.objects(self.detector_id, video_id)
        try:
            objects = self.store.read_table(url)
        except FileNotFoundError:
            raise MissingInputs(
                f"model {self.model} needs object features but {self.store.objects_dir(self.detector_id)}"
                f" has none for {video_id}: extract with --objects"
            ) from None
        if (
            objects.metadata.get("fingerprint") != features.metadata.get("fingerprint")
            or objects.table.num_rows != features.table.num_rows
        ):
            raise MissingInputs(
                f"object features of {video_id} under {self.store.objects_dir(self.detector_id)} are "
                "stale (another version of the video or other clips than its action features): "
                "re-extract with --objects"
            )
        return objects


def padded_objects(table: ClipTable, max_objects: int) -> dict[str, np.ndarray]:
    """objects [T, M, D], boxes [T, M, 4], object_mask [T, M] (ADOR's inputs), zero-padded to max_objects."""
    t = table.table
    n, dim = t.num_rows, int(table.metadata.get("roi_dim", 1024))
    objects = np.zeros((n, max_objects, dim), np.float32)
    boxes = np.zeros((n, max_objects, 4), np.float32)
    mask = np.zeros((n, max_objects), bool)
    box_col, roi_col = t.column("boxes").combine_chunks(), t.column("roi_features").combine_chunks()
    offsets = box_col.offsets.to_numpy()
    flat_boxes = box_col.values.values.to_numpy(zero_copy_only=False).reshape(-1, 4)
    flat_rois = roi_col.values.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    for i in range(n):
        a, b = offsets[i], min(offsets[i + 1], offsets[i] + max_objects)
        boxes[i, : b - a], objects[i, : b - a], mask[i, : b - a] = flat_boxes[a:b], flat_rois[a:b], True
    return {"objects": objects, "boxes": boxes, "object_mask": mask}


def input_shapes(inputs: Any) -> dict[str, tuple[int, ...]]:
    """{name: shape} of one video's inputs, what a registry entry derives a model's config from."""
    if isinstance(inputs, dict):
        return {name: tuple(arr.shape) for name, arr in inputs.items()}
    return {"features": tuple(np.asarray(inputs).shape)}
