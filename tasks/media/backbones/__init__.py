"""Action backbones: the base class in `base`, one module per family, each listed with its input contract in the
catalog (`tasks.media.specs.BACKBONES`, torch-free). Adding one is a module here plus its catalog entry."""

from .base import (
    BACKBONES,
    PARITY_COSINE,
    PRECISIONS,
    ActionBackbone,
    ExtractorSpec,
    WeightsError,
    backbone_class,
    build_extractor,
    cached_extractor,
    check_spec,
)

__all__ = [
    "BACKBONES",
    "PARITY_COSINE",
    "PRECISIONS",
    "ActionBackbone",
    "ExtractorSpec",
    "WeightsError",
    "backbone_class",
    "build_extractor",
    "cached_extractor",
    "check_spec",
]
