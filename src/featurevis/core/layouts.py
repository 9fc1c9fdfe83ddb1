"""What the axes of a hooked activation mean, so every objective reads channels, not tokens.

CNN layers emit ``(B, C, H, W)``; timm's ConvNeXt and Swin blocks emit channels-last
``(B, H, W, C)``; vision transformers emit token sequences ``(B, N, D)`` (some open_clip versions
sequence-first, ``(N, B, D)``) whose first tokens are prefix tokens (class, distillation,
registers) and the rest a patch grid; attention weights are ``(B, heads, N, N)``. Read as
channels-first, a token sequence would make ``layer:12`` optimize *token* 12.

:func:`infer` decides a layer's layout from the model's own description of its tokens and the
shapes seen in a probe pass; when that is not enough it says so rather than guess, and
``FeatureModel(..., layouts={...})`` settles it. :func:`canonical` turns every readable layout
into the channels-first map objectives expect: a token sequence becomes its ``(B, D, h, w)``
patch grid, and its prefix tokens are kept beside it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .errors import FeaturevisError

#: layout code -> what it means
KINDS = {
    "BCHW": "map",
    "BHWC": "map, channels-last",
    "BND": "tokens",
    "NBD": "tokens, sequence-first",
    "BHNN": "attention weights",
    "BC": "vector",
    "B": "scalar",
}
#: the batch size of the probe pass: distinct from 1 so a sequence-first tensor shows its batch axis
PROBE_BATCH = 2


@dataclass(frozen=True)
class Layout:
    """The meaning of an activation's axes.

    ``kind`` is a code of :data:`KINDS`. Token layouts carry ``prefix`` (class, distillation and
    register tokens before the patches) and either ``patch`` (the patch side in pixels, so the
    grid follows the input size) or a fixed ``grid`` (rows, columns).
    """

    kind: str
    prefix: int = 0
    patch: tuple[int, int] | None = None
    grid: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FeaturevisError(f"unknown layout {self.kind!r}: use one of {', '.join(KINDS)}")

    @property
    def tokens(self) -> bool:
        return self.kind in ("BND", "NBD")

    @property
    def readable(self) -> bool:
        """Whether objectives can read channels from it (attention weights have none)."""
        return self.kind != "BHNN"

    def describe(self, canonical_shape: tuple[int, ...]) -> str:
        if self.tokens and len(canonical_shape) == 3:
            d, h, w = canonical_shape
            pre = f"{self.prefix}+" if self.prefix else ""
            return f"tokens {pre}{h}x{w}, {d} features"
        return KINDS[self.kind]


@dataclass(frozen=True)
class TokenInfo:
    """How a transformer lays out its tokens: prefix count, patch size, axis order, and the one
    input size it accepts (``None`` when its position embedding follows the input size)."""

    prefix: int
    patch: tuple[int, int]
    seq_first: bool = False
    fixed: tuple[int, int] | None = None


def _pair(v: object) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def token_info(net: nn.Module) -> TokenInfo | None:
    """The token layout a transformer declares (timm, open_clip, Hugging Face), else ``None``.

    Read from the attributes those libraries define, never from shapes alone.
    """
    for m in net.modules():
        pe = getattr(m, "patch_embed", None)
        if pe is not None and hasattr(m, "num_prefix_tokens") and hasattr(pe, "patch_size"):  # timm
            strict = getattr(pe, "strict_img_size", False) and getattr(pe, "img_size", None) is not None
            fixed = _pair(pe.img_size) if strict else None
            return TokenInfo(int(m.num_prefix_tokens), _pair(pe.patch_size), fixed=fixed)
        if hasattr(m, "class_embedding") and hasattr(m, "grid_size") and hasattr(m, "patch_size"):  # open_clip
            transformer = getattr(m, "transformer", None)
            seq_first = not getattr(transformer, "batch_first", True)
            fixed = _pair(m.image_size) if hasattr(m, "image_size") else None
            return TokenInfo(1, _pair(m.patch_size), seq_first, fixed)
        cfg = getattr(m, "config", None)
        emb = getattr(m, "embeddings", None)
        if cfg is not None and emb is not None and hasattr(cfg, "patch_size"):  # Hugging Face
            prefix = sum(hasattr(emb, a) for a in ("cls_token", "class_embedding", "distillation_token"))
            prefix += int(getattr(cfg, "num_register_tokens", 0) or 0)
            fixed = _pair(cfg.image_size) if hasattr(cfg, "image_size") else None
            return TokenInfo(prefix, _pair(cfg.patch_size), fixed=fixed)
    return None


def fixed_input_size(net: nn.Module, tokens: TokenInfo | None) -> tuple[int, int] | None:
    """The one input size a network accepts: a transformer's with a fixed position embedding, or
    a CLIP ResNet's, whose attention pool has one (open_clip ``ModifiedResNet``)."""
    if tokens is not None and tokens.fixed is not None:
        return tokens.fixed
    for m in net.modules():
        if hasattr(m, "attnpool") and hasattr(m.attnpool, "positional_embedding") and hasattr(m, "image_size"):
            return _pair(m.image_size)
    return None


def as_layout(spec: Layout | str, tokens: TokenInfo | None) -> Layout:
    """A user's layout: a :class:`Layout` or a code; token codes take the model's token info."""
    if isinstance(spec, Layout):
        return spec
    code = str(spec).upper()
    if code in ("BND", "NBD"):
        if tokens is None:
            raise FeaturevisError(
                f"layout {code} needs the prefix-token count and patch grid: give "
                f"Layout({code!r}, prefix=P, grid=(h, w)) (or patch=(ph, pw))"
            )
        return Layout(code, tokens.prefix, tokens.patch)
    return Layout(code)


def override(name: str, overrides: Mapping[str, Layout | str], tokens: TokenInfo | None) -> Layout | None:
    """The user's layout for ``name``: an exact key first, then the first matching glob."""
    if name in overrides:
        return as_layout(overrides[name], tokens)
    for pattern, spec in overrides.items():
        if fnmatch.fnmatchcase(name, pattern):
            return as_layout(spec, tokens)
    return None


def _grid(tokens: TokenInfo, size: tuple[int, int]) -> tuple[int, int]:
    return size[0] // tokens.patch[0], size[1] // tokens.patch[1]


def infer(raw: tuple[int, ...], tokens: TokenInfo | None, size: tuple[int, int]) -> Layout | None:
    """The layout of a probe activation of full shape ``raw`` (batch :data:`PROBE_BATCH`) for an
    input of ``size`` (H, W), or ``None`` when the shape alone cannot say."""
    b = PROBE_BATCH
    if len(raw) == 1 and raw[0] == b:
        return Layout("B")
    if len(raw) == 2 and raw[0] == b:
        return Layout("BC")
    if len(raw) == 3 and tokens is not None:
        patches = _grid(tokens, size)[0] * _grid(tokens, size)[1]
        # the patch embedding's output has no prefix tokens yet; every later sequence has them
        for prefix in dict.fromkeys((tokens.prefix, 0)):
            if raw[0] == b and raw[1] == prefix + patches:
                return Layout("BND", prefix, tokens.patch)
            if raw[1] == b and raw[0] == prefix + patches and raw[0] != b:
                return Layout("NBD", prefix, tokens.patch)
        return None
    if len(raw) == 4 and raw[0] == b:
        _, c1, c2, c3 = raw
        if tokens is not None and c2 == c3 == tokens.prefix + _grid(tokens, size)[0] * _grid(tokens, size)[1]:
            return Layout("BHNN", tokens.prefix, tokens.patch)
        # Renders probe square inputs, so the two spatial axes are the equal pair. When all three
        # are equal (or none are) the shape does not say which axis holds the channels.
        if c2 == c3 and c1 != c2:
            return Layout("BCHW")
        if c1 == c2 and c2 != c3:
            return Layout("BHWC")
    return None


def from_two_sizes(small: tuple[int, ...], large: tuple[int, ...]) -> Layout | None:
    """A 4-D layout from the shapes of the same activation at two input sizes: the axes that
    grew with the input are the spatial ones."""
    if len(small) != 4 or len(large) != 4:
        return None
    grew = tuple(a != b for a, b in zip(small[1:], large[1:], strict=True))
    return {(False, True, True): Layout("BCHW"), (True, True, False): Layout("BHWC")}.get(grew)


def canonical(
    t: torch.Tensor, layout: Layout, name: str, size: tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``t`` as a channels-first map (or ``(B, C)`` vector), and its prefix tokens ``(B, P, D)``
    for a token layout (``None`` otherwise). ``size`` is the input's (H, W): with the patch size
    it gives the grid of a non-square input."""
    kind = layout.kind
    if kind in ("BCHW", "BC", "B", "BHNN"):
        return t, None
    if kind == "BHWC":
        return t.permute(0, 3, 1, 2), None
    if kind == "NBD":
        t = t.transpose(0, 1)
    if t.dim() != 3:
        raise FeaturevisError(f"layer {name!r} was declared {kind} but its activation has shape {tuple(t.shape)}")
    b, n, d = t.shape
    patches = n - layout.prefix
    if layout.grid is not None:
        h, w = layout.grid
    elif layout.patch is not None and size is not None:
        h, w = size[0] // layout.patch[0], size[1] // layout.patch[1]
    else:
        h = w = round(patches**0.5)
    if h * w != patches or patches <= 0:
        raise FeaturevisError(
            f"layer {name!r} has {n} tokens, which is not {layout.prefix} prefix tokens + a "
            f"{'x'.join(map(str, layout.grid)) if layout.grid else 'square'} patch grid; "
            f"give its layout with FeatureModel(..., layouts={{{name!r}: Layout('BND', prefix=P, grid=(h, w))}})"
        )
    grid = t[:, layout.prefix :].transpose(1, 2).reshape(b, d, h, w)
    return grid, t[:, : layout.prefix]


def unreadable(name: str, raw: tuple[int, ...]) -> FeaturevisError:
    """The one-line error for an activation whose axes cannot be told apart."""
    shape = "x".join(map(str, raw[1:])) or "a scalar"
    return FeaturevisError(
        f"cannot tell which axis of layer {name!r} (per-image shape {shape}) holds its channels; "
        f"say it with FeatureModel(..., layouts={{{name!r}: 'BCHW'}}) (or 'BHWC', 'BND', 'NBD')"
    )
