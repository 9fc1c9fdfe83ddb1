"""``timm:NAME``: any timm model (``vit_base_patch16_224``, ``vit_small_patch16_224.dino``,
``deit_tiny_distilled_patch16_224``, ``resnet50.a1_in1k``...) as a :class:`FeatureModel`.

The architecture and its preprocessing come from timm (``pretrained_cfg``: mean, std, input
size; the part after the dot picks the pretrained variant). The weights are resolved as
:mod:`.hub` describes: the variant's file in the Hugging Face cache (``timm/NAME.TAG``), the torch
hub folder where older timm and ``torch.hub`` put the original files, or ``weights=FILE``. A file
is read safely here, then handed to timm's own loader, which converts the original formats it
knows (DINO, DeiT, OpenAI CLIP towers...) exactly as ``pretrained=True`` would, and loads strictly.
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from ..core.errors import FeaturevisError, unknown
from ..core.model import FeatureModel
from . import hub
from . import weights as checkpoints

_SAFE_ALTERNATIVE = {
    "pytorch_model.bin": "model.safetensors",
    "open_clip_pytorch_model.bin": "open_clip_model.safetensors",
}


def load(name: str, weights: str | os.PathLike | None = None, *, download: bool = True) -> FeatureModel:
    """``timm:ARCH[.TAG]`` with weights from ``weights`` (a file or ``"random"``) or the caches."""
    timm = hub.require("timm", name)
    arch = name.partition(":")[2]
    try:
        cfg = timm.models.get_pretrained_cfg(arch) if timm.is_model(arch) else None
    except RuntimeError as e:  # a known architecture with an unknown ".tag"
        tags = [n for n in timm.list_pretrained(arch.split(".")[0] + ".*")]
        raise unknown("timm pretrained variant", arch, tags) from e
    if cfg is None:
        raise unknown("timm model", arch, [*timm.list_models(), *timm.list_pretrained()])
    path = hub.resolve_weights(name, weights, hub_file(cfg), other_caches=_torch_hub_files(cfg), download=download)
    net = _create(timm, name, arch, path)
    return FeatureModel(net, name=hub.label(name, path), **settings(net))


def hub_file(cfg) -> hub.HubFile | None:
    """Where timm's ``pretrained=True`` would fetch this variant on the Hugging Face hub."""
    if not cfg.hf_hub_id:
        return None
    repo, _, revision = cfg.hf_hub_id.partition("@")
    wanted = cfg.hf_hub_filename or "pytorch_model.bin"
    safe = _SAFE_ALTERNATIVE.get(wanted, wanted[: -len(".bin")] + ".safetensors" if wanted.endswith(".bin") else None)
    files = (safe, wanted) if safe and safe != wanted else (wanted,)
    return hub.HubFile(repo, files, revision or None)


def _torch_hub_files(cfg) -> list[Path]:
    """The variant's original file in torch hub's checkpoint folder, where ``torch.hub`` and older
    timm versions save it (``dino_deitsmall16_pretrain.pth``...); only files torch can read."""
    url = cfg.url or ""
    name = url.rsplit("/", 1)[-1]
    if not name.endswith((".pth", ".pt", ".bin", ".safetensors")):
        return []
    return [checkpoints.hub_checkpoint_dir() / name]


def _create(timm, name: str, arch: str, path: Path | None) -> nn.Module:
    """The timm module with ``path``'s tensors (None: random weights).

    A state dict in timm's own layout is loaded as it is; any other (older timm layouts, other
    sizes of the position embedding, CLIP state dicts for timm's CLIP towers, DINOv2's...) goes
    through timm's loader, which converts the formats it knows exactly as ``pretrained=True``
    would; what it cannot convert is reported as the keys and shapes that differ from timm's.
    Vision transformers are built with ``dynamic_img_size=True`` so they accept any input size
    (the position embedding is resampled for other grids; at the trained size nothing changes).
    """
    try:
        net = _build(timm, arch)
    except (RuntimeError, ValueError, TypeError, AssertionError) as e:
        raise FeaturevisError(f"cannot build {name}: {checkpoints.first_line(e)}") from None
    if path is None:
        return net.eval()
    sd = checkpoints.read_state_dict(path)
    own = net.state_dict()
    if set(sd) == set(own) and all(sd[k].shape == v.shape for k, v in own.items()):
        net.load_state_dict(sd, strict=True)
        return net.eval()
    try:
        net = _build(timm, arch, pretrained=True, pretrained_cfg_overlay={"state_dict": sd})
    except (RuntimeError, KeyError, IndexError, ValueError, TypeError, AttributeError, AssertionError) as e:
        checkpoints.load_strict(net, sd, name, str(path))  # names the keys that differ from timm's layout
        raise FeaturevisError(f"{path} is not a {name} checkpoint: {_misfit(e)}") from None
    # timm keeps its config on the module; drop the state dict it carried so it is not held twice
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(net, attr, None)
        if isinstance(cfg, dict):
            cfg.pop("state_dict", None)
    return net.eval()


def _build(timm, arch: str, **kwargs) -> nn.Module:
    try:
        return timm.create_model(arch, dynamic_img_size=True, **kwargs)
    except TypeError as e:  # not a vision transformer
        if "dynamic_img_size" not in str(e):
            raise
    return timm.create_model(arch, **kwargs)


def _misfit(e: BaseException) -> str:
    """The first concrete line of a ``load_state_dict`` error (its first line only says where)."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    if len(lines) > 1 and lines[0].startswith("Error(s) in loading state_dict"):
        return lines[1][:300]
    return f"{type(e).__name__}: {checkpoints.first_line(e)}"


def settings(net: nn.Module) -> dict:
    """FeatureModel keyword arguments for a timm module: preprocessing from its ``pretrained_cfg``,
    ImageNet labels for a 1000-class head, a default layer, and NHWC memory only for conv nets."""
    from . import imagenet_labels

    out = hub.preprocessing(net)
    cfg = getattr(net, "pretrained_cfg", None) or {}
    if getattr(net, "num_classes", None) == 1000 and cfg.get("num_classes", 1000) == 1000:
        out["labels"] = imagenet_labels()
    out["default_layer"] = default_layer(net)
    out["channels_last"] = getattr(net, "patch_embed", None) is None
    return out


def default_layer(net: nn.Module, prefix: str = "") -> str | None:
    """The MLP hidden layer of the middle block for vision transformers (its units are the
    interpretable ones, Ghiasi et al. 2022); else the next-to-last stage timm lists in
    ``feature_info`` (``layer3`` of a ResNet); else None."""
    names = {n for n, _ in net.named_modules()}
    blocks = getattr(net, "blocks", None)
    if isinstance(blocks, (nn.Sequential, nn.ModuleList)) and len(blocks):
        mid = f"blocks.{len(blocks) // 2}"
        for candidate in (f"{mid}.mlp.fc1", f"{mid}.mlp.c_fc"):
            if candidate in names:
                return prefix + candidate
    info = getattr(net, "feature_info", None)
    if isinstance(info, list) and len(info) >= 2 and isinstance(info[-2], dict) and info[-2].get("module") in names:
        return prefix + info[-2]["module"]
    return None
