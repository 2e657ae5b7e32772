"""What makes features comparable, without torch: the extractor and detector specs (and the ids derived from
them) and the catalog of each backbone's input contract.

Settings, model cards and the planner of a scan need only these; they stay importable without torch, so a scan
with nothing to do never loads it. The networks themselves live in `backbones/` and `detectors.py`; each catalog
entry names the class that implements it ("module:Class"), imported when a worker builds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from anomaly_models.errors import UsageError

from .weights import weights_tag

KINETICS_MEAN, KINETICS_STD = (0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)  # (x - 0.5) / 0.5 maps [0, 1] to [-1, 1]


@dataclass(frozen=True)
class BackboneInfo:
    """One action backbone's input contract: frames are resized to `resize_short` on the short side, cropped to
    `crop_size` (the centre, or 5 / 10 crops), scaled to [0, 1] and normalised by mean/std per RGB channel."""

    name: str
    network: str  # "module:Class" of the nn.Module implementing it
    crop_size: int = 112
    resize_short: int = 128
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    fixed_clip_len: int | None = None  # models that only accept one clip length
    fixed_crop: bool = False  # models that only accept their native crop size
    torchvision_weights: str | None = None  # the torchvision model whose weight enums apply (None: files only)


_RESNET3D = "tasks.media.backbones.resnet3d:ResNet3D"
BACKBONES: dict[str, BackboneInfo] = {
    b.name: b
    for b in (
        BackboneInfo("r3d_18", _RESNET3D, torchvision_weights="r3d_18"),
        BackboneInfo("mc3_18", _RESNET3D, torchvision_weights="mc3_18"),
        BackboneInfo("r2plus1d_18", _RESNET3D, torchvision_weights="r2plus1d_18"),
        BackboneInfo(
            "s3d", "tasks.media.backbones.s3d:S3D", crop_size=224, resize_short=256, torchvision_weights="s3d"
        ),
        BackboneInfo(
            "mvit_v2_s",
            "tasks.media.backbones.mvit:MViTV2S",
            crop_size=224,
            resize_short=256,
            mean=(0.45, 0.45, 0.45),
            std=(0.225, 0.225, 0.225),
            fixed_clip_len=16,
            fixed_crop=True,
            torchvision_weights="mvit_v2_s",
        ),
        # Inception-V1 I3D (the thesis's features): RGB scaled to [-1, 1], short side 256, centre crop 224
        BackboneInfo("i3d", "tasks.media.backbones.i3d:I3D", crop_size=224, resize_short=256, mean=HALF, std=HALF),
        # Sports-1M C3D (the thesis's MLP baseline): 112 crops of frames with short side 128 (128x171 for 4:3),
        # 0-255 pixel values minus the Sports-1M channel mean; fc6 needs exactly 16 frames at 112 px
        BackboneInfo(
            "c3d",
            "tasks.media.backbones.c3d:C3D",
            crop_size=112,
            resize_short=128,
            mean=(101.41 / 255, 97.66 / 255, 90.25 / 255),
            std=(1 / 255, 1 / 255, 1 / 255),
            fixed_clip_len=16,
            fixed_crop=True,
        ),
        # TSM ResNet-50: 8 frames sampled evenly from the clip (one per segment), ImageNet normalisation
        BackboneInfo(
            "tsm",
            "tasks.media.backbones.tsm:TSM",
            crop_size=224,
            resize_short=256,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            torchvision_weights="resnet50",
        ),
    )
}


def backbone_info(name: str) -> BackboneInfo:
    try:
        return BACKBONES[name]
    except KeyError:
        raise UsageError(f"backbone: unknown backbone {name!r}; known: {sorted(BACKBONES)}") from None


@dataclass(frozen=True)
class ExtractorSpec:
    """What makes features comparable; `extractor_id` is derived from it."""

    backbone: str = "r3d_18"
    weights: str = "random"  # "random", a torchvision enum name (e.g. KINETICS400_V1), or a local file path
    clip_len: int = 16
    stride: int = 16
    size: int | None = None  # crop size; None = the backbone's native size
    seed: int = 0  # init seed for random weights
    crops: int = 1  # 1 (centre), 5 (4 corners + centre) or 10 (and their horizontal flips)

    @property
    def info(self) -> BackboneInfo:
        return backbone_info(self.backbone)

    @property
    def crop_size(self) -> int:
        return self.size or self.info.crop_size

    @property
    def short_side(self) -> int:
        info = self.info
        return round(self.crop_size * info.resize_short / info.crop_size)

    @property
    def extractor_id(self) -> str:
        crops = f"-x{self.crops}" if self.crops != 1 else ""
        return (
            f"{self.backbone}-{weights_tag(self.weights, self.seed)}-c{self.clip_len}s{self.stride}-{self.crop_size}"
            f"{crops}"
        )

    @property
    def is_random(self) -> bool:
        return self.weights == "random"


def check_spec(spec: ExtractorSpec) -> None:
    """Refuse input shapes a backbone cannot take, naming the setting."""
    info = spec.info
    if spec.crops not in CROPS:
        raise UsageError(
            f"crops: expected one of {CROPS} (centre; corners + centre; and their flips), got {spec.crops}"
        )
    if info.fixed_clip_len and spec.clip_len != info.fixed_clip_len:
        raise UsageError(f"clip_len: {info.name} needs clip_len={info.fixed_clip_len}, got {spec.clip_len}")
    if info.fixed_crop and spec.crop_size != info.crop_size:
        raise UsageError(f"size: {info.name} needs size={info.crop_size} (its native crop), got {spec.crop_size}")


CROPS = (1, 5, 10)

DETECTORS = {
    "fasterrcnn_mobilenet_v3_large_320_fpn": 320,  # name -> default min_size
    "fasterrcnn_resnet50_fpn": 240,
}


@dataclass(frozen=True)
class DetectorSpec:
    """What makes object features comparable; `detector_id` is derived from it."""

    detector: str = "fasterrcnn_mobilenet_v3_large_320_fpn"
    weights: str = "random"
    score_threshold: float = 0.2
    max_objects: int = 36
    mode: str = "detections"  # or "proposals"
    min_size: int | None = None
    clip_len: int = 16  # the clips whose centre frames are detected (same as the features')
    stride: int = 16
    seed: int = 0

    def __post_init__(self):
        if self.detector not in DETECTORS:
            raise UsageError(f"detector: unknown detector {self.detector!r}; known: {sorted(DETECTORS)}")
        if self.mode not in ("detections", "proposals"):
            raise UsageError(f"object_mode: detector mode must be 'detections' or 'proposals', got {self.mode!r}")

    @property
    def size(self) -> int:
        return self.min_size or DETECTORS[self.detector]

    @property
    def detector_id(self) -> str:
        tag = weights_tag(self.weights, self.seed)
        kind = f"top{self.max_objects}" if self.mode == "proposals" else f"t{self.score_threshold:g}m{self.max_objects}"
        return f"{self.detector}-{tag}-{kind}-c{self.clip_len}s{self.stride}-{self.size}"
