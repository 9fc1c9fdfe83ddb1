"""``clip:ARCH[:TAG]``: an open_clip model (``clip:ViT-B-32``, ``clip:ViT-B-32:laion2b_s34b_b79k``,
``clip:RN50:openai``) as a :class:`FeatureModel` of its image tower, whose output is the image
embedding, with the text tower attached as ``text_encoder`` for text objectives.

ARCH is one of ``open_clip.list_models()``; TAG one of its pretrained tags. The tag carries
settings the checkpoint file does not: QuickGELU for OpenAI-trained weights, the normalization.
Without a tag, weights from the caches are the default tag's (``openai`` where it exists) and a
``weights=FILE`` (or ``"random"``) gets the architecture's own settings, as in open_clip's
``create_model(ARCH, pretrained=FILE)``; name the tag (or the ``-quickgelu`` architecture) for a
file of OpenAI-trained weights. A file is open_clip's full state dict (``visual.*`` and the text
tower, as ``open_clip_model.safetensors`` / ``open_clip_pytorch_model.bin`` on the hub) or the
image tower's alone (then there is no text encoder).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

import torch
from torch import nn

from ..core.errors import FeaturevisError, unknown
from ..core.model import FeatureModel
from . import hub
from . import weights as checkpoints
from .timm_models import default_layer as timm_default_layer

_HF_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # open_clip's names on the hub


def load(name: str, weights: str | os.PathLike | None = None, *, download: bool = True) -> FeatureModel:
    """``clip:ARCH[:TAG]`` with weights from ``weights`` (a file or ``"random"``) or the caches."""
    open_clip = hub.require("clip", name)
    arch, _, tag = name.partition(":")[2].partition(":")
    if arch not in open_clip.list_models():
        raise unknown("open_clip model", arch, open_clip.list_models())
    tags = open_clip.list_pretrained_tags_by_model(arch)
    if tag:
        if not open_clip.pretrained.is_pretrained_cfg(arch, tag):
            raise unknown(f"pretrained tag of {arch}", tag, tags)
        tag = next(t for t in tags if t == tag.lower().replace("-", "_"))
    elif weights is None and tags:
        tag = "openai" if "openai" in tags else tags[0]
    cfg = open_clip.get_pretrained_cfg(arch, tag) if tag else {}
    full = f"clip:{arch}:{tag}" if tag else f"clip:{arch}"
    path = hub.resolve_weights(full, weights, _hub_file(cfg), download=download)
    try:
        with _quiet():
            clip = open_clip.create_model(
                arch,
                pretrained=None,
                force_quick_gelu=bool(cfg.get("quick_gelu")),
                force_preprocess_cfg=cfg or None,
                pretrained_image=False,
                pretrained_hf=False,  # no base text weights from the hub (``pretrained_text`` since 3.0)
            )
    except (RuntimeError, ValueError, KeyError, OSError, ImportError, AssertionError) as e:
        raise FeaturevisError(f"cannot build {full}: {checkpoints.first_line(e)}") from None
    has_text = _load(clip, path, full) if path is not None else True
    tokenizer = partial(_tokenizer, open_clip, arch) if has_text else None
    return from_module(clip, name=hub.label(full, path), tokenizer=tokenizer, text=has_text)


def _hub_file(cfg: dict) -> hub.HubFile | None:
    """Where open_clip fetches a tag's weights: ``org/repo/`` (its default file names) or
    ``org/repo/FILE``."""
    spec = cfg.get("hf_hub", "")
    if not spec:
        return None
    repo, _, file = spec.rpartition("/")
    if not file:
        return hub.HubFile(repo, _HF_FILES)
    safe = file.rsplit(".", 1)[0] + ".safetensors"
    return hub.HubFile(repo, (safe, file) if safe != file else (file,))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """open_clip reports through the root logger ("No pretrained weights loaded..."), which would
    also install a stderr handler on the user's root logger; silence both while building."""
    root = logging.getLogger()
    null = logging.NullHandler()
    root.addHandler(null)
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)
        root.removeHandler(null)


def _load(clip: nn.Module, path: Path, what: str) -> bool:
    """``path``'s tensors into ``clip`` (a full CLIP state dict) or into its image tower alone;
    True when the text tower was loaded too. Misfits are one line naming the file."""
    sd = checkpoints.read_state_dict(path)
    if not any(k.startswith("visual.") for k in sd):
        checkpoints.load_strict(clip.visual, sd, f"{what} image tower", str(path))
        return False
    try:
        sd = _convert(clip, sd)
    except (KeyError, IndexError, ValueError, RuntimeError, AttributeError) as e:
        raise FeaturevisError(f"{path} is not a {what} checkpoint ({type(e).__name__}: {e})") from None
    checkpoints.load_strict(clip, sd, what, str(path))
    return True


def _convert(clip: nn.Module, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip's own fixes for the state dicts it reads: third-party layouts (MobileCLIP), the
    older text-tower layout, a scalar logit scale or bias, position ids newer transformers drop."""
    from open_clip.convert import convert_state_dict
    from open_clip.model import convert_to_custom_text_state_dict

    sd = dict(convert_state_dict(clip, sd))
    if "positional_embedding" in sd and not hasattr(clip, "positional_embedding"):
        sd = convert_to_custom_text_state_dict(sd)
    for key in ("logit_scale", "logit_bias"):
        own = getattr(clip, key, None)
        if key in sd and isinstance(own, torch.Tensor) and sd[key].ndim != own.ndim:
            sd[key] = sd[key].reshape(own.shape)
    position_ids = "text.transformer.embeddings.position_ids"
    if position_ids in sd and position_ids not in clip.state_dict():
        del sd[position_ids]
    return sd


def from_module(
    clip: nn.Module,
    name: str | None = None,
    tokenizer: Callable[[], Callable] | None = None,
    *,
    text: bool = True,
) -> FeatureModel:
    """A :class:`FeatureModel` of an open_clip model's image tower, with its text encoder.

    Args:
        tokenizer: makes the tokenizer (called on the first text, since a Hugging Face tokenizer
            may have to come from the hub); default: open_clip's bundled BPE tokenizer, right for
            every model with OpenAI's 49408-token vocabulary.
        text: False when the text tower holds no trained weights (no text encoder then).
    """
    visual = clip.visual
    encoder = TextEncoder(clip, tokenizer, name or type(clip).__name__) if text else None
    is_vit = hasattr(visual, "transformer") or hasattr(getattr(visual, "trunk", None), "patch_embed")
    return FeatureModel(
        visual,
        name=name or type(clip).__name__,
        default_layer=default_layer(visual),
        channels_last=not is_vit,
        text_encoder=encoder,
        **hub.preprocessing(visual),
    )


def default_layer(visual: nn.Module) -> str | None:
    """The MLP hidden layer of the middle residual block of a ViT tower; ``layer4`` of a CLIP
    ResNet (where Goh et al. 2021 found the multimodal neurons); a timm tower's own default."""
    names = {n for n, _ in visual.named_modules()}
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if isinstance(blocks, nn.ModuleList) and len(blocks):
        layer = f"transformer.resblocks.{len(blocks) // 2}.mlp.c_fc"
        return layer if layer in names else None
    if "layer4" in names and "attnpool" in names:
        return "layer4"
    trunk = getattr(visual, "trunk", None)
    return timm_default_layer(trunk, "trunk.") if isinstance(trunk, nn.Module) else None


class TextEncoder(nn.Module):
    """Texts -> L2-normalized text embeddings ``(n, E)``, on the device the model is on.

    Holds the CLIP model's text side: a shallow copy sharing every tensor but not the image
    tower (the FeatureModel holds that), so moving the FeatureModel moves both once.
    """

    def __init__(self, clip: nn.Module, tokenizer: Callable[[], Callable] | None, name: str):
        super().__init__()
        text_side = copy.copy(clip)
        text_side._modules = {k: m for k, m in clip._modules.items() if k != "visual"}
        self.clip = text_side.eval().requires_grad_(False)
        self._make_tokenizer = tokenizer or partial(_bundled_tokenizer, clip)
        self._tokenizer: Callable | None = None
        self._name = name

    @property
    def tokenizer(self) -> Callable:
        if self._tokenizer is None:
            try:
                self._tokenizer = self._make_tokenizer()
            except FeaturevisError as e:
                raise FeaturevisError(f"{self._name}: {e}") from None
            except Exception as e:  # a tokenizer from the hub: missing offline, or a library absent
                raise FeaturevisError(
                    f"{self._name}: its tokenizer is not available ({checkpoints.first_line(e)}); "
                    f"it comes from the Hugging Face hub into {hub.hf_cache_dir()}"
                ) from None
        return self._tokenizer

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        device = next(self.clip.parameters()).device
        tokens = self.tokenizer(texts).to(device)
        with torch.no_grad():
            return self.clip.encode_text(tokens, normalize=True).float()


def _tokenizer(open_clip, arch: str) -> Callable:
    """open_clip's tokenizer for ``arch``. One that comes from the Hugging Face hub is read from
    the cache alone when the hub cannot be reached (:func:`~.hub.hub_unreachable`): without a
    network the hub library would retry for most of a minute before failing or falling back to
    the cache."""
    text_cfg = (open_clip.get_model_config(arch) or {}).get("text_cfg", {})
    from_hub = bool(text_cfg.get("hf_tokenizer_name")) or "siglip" in arch.lower()
    why = hub.hub_unreachable() if from_hub and not hub.hf_offline() else None
    if why is None:
        return open_clip.get_tokenizer(arch)
    with hub.offline():
        try:
            return open_clip.get_tokenizer(arch)
        except Exception as e:
            raise ConnectionError(f"not in the cache, and {why}") from e


def _bundled_tokenizer(clip: nn.Module) -> Callable:
    """open_clip's BPE tokenizer at the model's context length, for OpenAI's vocabulary."""
    from open_clip.tokenizer import SimpleTokenizer

    vocab = getattr(clip, "vocab_size", None)
    if vocab != 49408:
        raise FeaturevisError(f"its vocabulary has {vocab} tokens, not OpenAI's 49408: pass its tokenizer")
    return SimpleTokenizer(context_length=getattr(clip, "context_length", 77))
