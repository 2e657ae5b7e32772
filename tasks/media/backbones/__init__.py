"""Action backbones: the base class, spec and registry in `base`, one module per family. Importing this package
registers every family; adding one is a module here plus its import below."""

from . import mvit, resnet3d, s3d  # noqa: F401  (registers the families)
from .base import (
    BACKBONES,
    ActionBackbone,
    ExtractorSpec,
    WeightsError,
    backbone_class,
    build_extractor,
    cached_extractor,
    check_spec,
    register,
)

__all__ = [
    "BACKBONES",
    "ActionBackbone",
    "ExtractorSpec",
    "WeightsError",
    "backbone_class",
    "build_extractor",
    "cached_extractor",
    "check_spec",
    "register",
]
