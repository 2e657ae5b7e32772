"""Object features on each clip's centre frame: a detector registry starting with torchvision Faster R-CNN.

Per frame: boxes with score > threshold, at most `max_objects` (highest scores first), their RoI features
(box_roi_pool + box_head, 1024-d), boxes normalised to [0, 1], class labels and scores.

Random-initialised detectors yield no confident boxes, so `mode="proposals"` keeps the top-k RPN proposals
(ranked by objectness after NMS) instead, scored and labelled by the box head's best non-background class. It
exercises the same RoI-feature path; use it only where pretrained weights are unavailable (tests, the demo).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .specs import DETECTORS, DetectorSpec
from .weights import load_state_dict

__all__ = ["DETECTORS", "DetectorSpec", "FrameObjects", "ObjectDetector", "cached_detector"]


@dataclass
class FrameObjects:
    boxes: np.ndarray  # [k, 4] float32 in [0, 1]
    scores: np.ndarray  # [k] float32
    labels: np.ndarray  # [k] int32
    roi_features: np.ndarray  # [k, 1024] float32


class ObjectDetector:
    def __init__(self, spec: DetectorSpec, device: str | None = None):
        from torchvision.models import detection

        self.spec = spec
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        builder = getattr(detection, spec.detector)
        kwargs = dict(
            min_size=spec.size, box_score_thresh=spec.score_threshold, box_detections_per_img=spec.max_objects
        )
        torch.manual_seed(spec.seed)
        model = builder(weights=None, weights_backbone=None, **kwargs)  # 91 COCO classes, as the enum weights
        state = load_state_dict(spec.detector, spec.weights)
        if state is not None:
            model.load_state_dict(state)
        self.model = model.to(self.device).eval()

    @torch.no_grad()
    def detect(self, frames: np.ndarray | Sequence[np.ndarray]) -> list[FrameObjects]:
        """frames uint8 [B, H, W, 3], or a sequence of [H, W, 3] frames of any sizes (the transform resizes and pads
        them into one batch) -> one FrameObjects per frame."""
        m, k = self.model, self.spec.max_objects
        images = [
            torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).float().div(255).to(self.device) for f in frames
        ]
        batch, _ = m.transform(images)
        features = m.backbone(batch.tensors)
        proposals, _ = m.rpn(batch, features)
        if self.spec.mode == "detections":
            detections, _ = m.roi_heads(features, proposals, batch.image_sizes)
            boxes = [d["boxes"][:k] for d in detections]
            scores = [d["scores"][:k] for d in detections]
            labels = [d["labels"][:k] for d in detections]
        else:
            boxes = [p[:k] for p in proposals]
            logits = m.roi_heads.box_predictor(
                m.roi_heads.box_head(m.roi_heads.box_roi_pool(features, boxes, batch.image_sizes))
            )[0]
            probs = torch.softmax(logits, -1)[:, 1:]
            best, label = probs.max(-1)
            scores, labels = list(best.split([len(b) for b in boxes])), list((label + 1).split([len(b) for b in boxes]))
        counts = [len(b) for b in boxes]
        if sum(counts):
            rois = m.roi_heads.box_head(m.roi_heads.box_roi_pool(features, boxes, batch.image_sizes))
        else:
            rois = torch.zeros(0, m.roi_heads.box_head.fc7.out_features, device=self.device)
        out = []
        for b, s, lab, r, (h, w) in zip(boxes, scores, labels, rois.split(counts), batch.image_sizes):
            scale = torch.tensor([w, h, w, h], dtype=b.dtype, device=b.device)
            out.append(
                FrameObjects(
                    (b / scale).clamp(0, 1).cpu().numpy().astype(np.float32),
                    s.cpu().numpy().astype(np.float32),
                    lab.cpu().numpy().astype(np.int32),
                    r.cpu().numpy().astype(np.float32),
                )
            )
        return out


@lru_cache(maxsize=2)
def cached_detector(spec: DetectorSpec, device: str | None = None) -> ObjectDetector:
    """One detector per worker process, built there."""
    return ObjectDetector(spec, device)
