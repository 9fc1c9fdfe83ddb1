"""Composable objectives: functions of captured activations that a render *maximizes*.

An objective maps ``{layer name: activation}`` to one value per image (shape ``B``), so one batch
can hold many targets at once (``batch=i`` restricts a term to image ``i``). Objectives combine
with ``+ - * /``, scalars and negation; a penalty is subtracted:
``channel("_blocks.8", 12) - 0.05 * total_variation()``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .errors import FeaturevisError
from .model import INPUT, LOGITS, PREFIX

Acts = dict[str, torch.Tensor]

#: Where an RGBA parameterization hands objectives its alpha channel (``B×1×H×W`` in [0, 1]).
ALPHA = "alpha"


@dataclass(frozen=True)
class Objective:
    """A per-image score to maximize.

    ``fn`` returns a tensor of shape ``(B,)``; ``layers`` are the activations it reads;
    ``checks`` are ``(layer, channel)`` pairs validated against the model before rendering
    (``channel`` is ``None`` when only the layer must exist), or ``(layer, channel, (x, y))``
    for a neuron, whose position must lie inside the layer's map; ``grids`` are the maps its
    neuron positions refer to, which :func:`~.engine.validate` measures at the render size.
    """

    fn: Callable[[Acts], torch.Tensor]
    layers: frozenset[str]
    name: str
    checks: tuple[tuple, ...] = field(default=())
    grids: tuple[Grid, ...] = field(default=())

    def __call__(self, acts: Acts) -> torch.Tensor:
        return self.fn(acts)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    # -- algebra -------------------------------------------------------------------------
    def _combine(self, other: Objective | float, op: Callable, sym: str, swap: bool = False) -> Objective:
        if isinstance(other, Objective):
            a, b = (other, self) if swap else (self, other)
            return Objective(
                lambda acts: op(a(acts), b(acts)),
                a.layers | b.layers,
                f"({a.name} {sym} {b.name})",
                a.checks + b.checks,
                a.grids + b.grids,
            )
        if not isinstance(other, (int, float)):
            return NotImplemented
        c = float(other)
        if not math.isfinite(c):
            raise FeaturevisError(f"objective weight {c} is not a finite number")
        if swap:
            return Objective(
                lambda acts: op(c, self(acts)), self.layers, f"({c:g} {sym} {self.name})", self.checks, self.grids
            )
        return Objective(
            lambda acts: op(self(acts), c), self.layers, f"({self.name} {sym} {c:g})", self.checks, self.grids
        )

    def __add__(self, o):
        return self._combine(o, lambda a, b: a + b, "+")

    def __radd__(self, o):
        if o == 0:  # lets sum() start from 0
            return self
        return self._combine(o, lambda a, b: a + b, "+", swap=True)

    def __sub__(self, o):
        return self._combine(o, lambda a, b: a - b, "-")

    def __rsub__(self, o):
        return self._combine(o, lambda a, b: a - b, "-", swap=True)

    def __mul__(self, o):
        return self._combine(o, lambda a, b: a * b, "*")

    def __rmul__(self, o):
        return self._combine(o, lambda a, b: a * b, "*", swap=True)

    def __truediv__(self, o):
        return self._combine(o, lambda a, b: a / b, "/")

    def __neg__(self):
        return Objective(lambda acts: -self(acts), self.layers, f"-{self.name}", self.checks, self.grids)


def _at(values: torch.Tensor, batch: int | None) -> torch.Tensor:
    """Keep ``values`` (B,) only at image ``batch`` (all images when ``None``)."""
    if batch is None:
        return values
    mask = torch.zeros_like(values)
    mask[batch] = 1
    return values * mask


def _spatial_mean(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).mean(1) if t.dim() > 1 else t


def _suffix(batch: int | None) -> str:
    return "" if batch is None else f"[{batch}]"


def channel(layer: str, ch: int, batch: int | None = None) -> Objective:
    """Mean activation of channel ``ch`` over all positions."""
    return Objective(
        lambda a: _at(_spatial_mean(a[layer][:, ch]), batch),
        frozenset({layer}),
        f"{layer}:{ch}{_suffix(batch)}",
        ((layer, ch),),
    )


def channels(layer: str, chs: Sequence[int]) -> Objective:
    """Channel ``chs[i]`` for image ``i``: a whole set of channels rendered in one batch."""
    idx = list(chs)

    def fn(a: Acts) -> torch.Tensor:
        t = a[layer]
        sel = torch.as_tensor(idx, device=t.device)
        picked = t[torch.arange(len(idx), device=t.device), sel]
        return _spatial_mean(picked)

    return Objective(fn, frozenset({layer}), f"{layer}:{idx}", tuple((layer, c) for c in idx))


@dataclass(eq=False)
class Grid:
    """The map a neuron's ``@x,y`` refers to: ``layer``'s ``(H, W)`` at the render size.

    Transforms change the map an objective sees: the standard set pads and rescales the image
    (lite0's ``_blocks.8`` has 14x14 cells at 224 px but 11..17 under the random scale).
    :func:`~.engine.validate` sets ``hw`` before a run; ``None`` (no run validated the
    objective) reads positions on the map as it comes.
    """

    layer: str
    hw: tuple[int, int] | None = None


def map_position(x: int, y: int, ref: tuple[int, int], hw: tuple[int, int]) -> tuple[int, int]:
    """Cell ``(x, y)`` of a ``ref`` = (H, W) map moved to the cell of an ``hw`` map that covers
    the same place of the frame: its centre, scaled (identity when the sizes agree).

    Proportional mapping is exact for a uniform resize of the whole frame (the random scale,
    the only transform that changes the size); the pad and jitter shift content by at most a
    few pixels, which is the shift they are there to add.
    """
    (rh, rw), (h, w) = ref, hw
    if (rh, rw) == (h, w):
        return x, y
    return min(w - 1, int((x + 0.5) * w / rw)), min(h - 1, int((y + 0.5) * h / rh))


def neuron(layer: str, ch: int, x: int | None = None, y: int | None = None, batch: int | None = None) -> Objective:
    """Activation of channel ``ch`` at one spatial position (the centre by default).

    ``(x, y)`` is a cell of the layer's map at the render size (what ``featurevis layers``
    reports) and keeps its place in the frame when transforms resize the image.
    """
    grid = Grid(layer)

    def fn(a: Acts) -> torch.Tensor:
        t = a[layer][:, ch]
        h, w = t.shape[-2:]
        ref = grid.hw or (h, w)
        xx, yy = map_position(ref[1] // 2 if x is None else x, ref[0] // 2 if y is None else y, ref, (h, w))
        if not (0 <= yy < h and 0 <= xx < w):
            raise IndexError(f"neuron position ({xx}, {yy}) outside {layer}'s {w}x{h} map")
        return _at(t[:, yy, xx], batch)

    pos = "" if x is None and y is None else f"@{x},{y}"
    check = (layer, ch) if x is None or y is None else (layer, ch, (x, y))
    return Objective(fn, frozenset({layer}), f"{layer}:{ch}{pos}{_suffix(batch)}", (check,), (grid,))


def layer(name: str, batch: int | None = None) -> Objective:
    """Mean of squared activations of a whole layer: the DeepDream objective."""
    return Objective(
        lambda a: _at(a[name].pow(2).flatten(1).mean(1), batch),
        frozenset({name}),
        f"{name}{_suffix(batch)}",
        ((name, None),),
    )


deepdream = layer


def direction(
    name: str, vec: torch.Tensor | Sequence[float], batch: int | None = None, cossim_pow: float = 0.0
) -> Objective:
    """Mean projection of the layer's activation vectors on a direction in channel space.

    With ``cossim_pow`` = p > 0 each position's projection is weighted by its cosine to the
    direction (clipped at 0.1) to the power p, as in Lucid's ``direction_neuron_cossim``: the
    plain dot product is also raised by making every channel large, the weighted one rewards
    pointing *along* the direction.
    """
    v = torch.as_tensor(vec, dtype=torch.float32).flatten()
    v = v / v.norm().clamp_min(1e-12)

    def fn(a: Acts) -> torch.Tensor:
        t = a[name]
        if t.shape[1] != v.numel():
            raise ValueError(f"direction has {v.numel()} entries but {name} has {t.shape[1]} channels")
        shape = (1, -1) + (1,) * (t.dim() - 2)
        dot = (t * v.to(t).view(shape)).sum(1)
        if cossim_pow:
            cos = dot / t.norm(dim=1).clamp_min(1e-6)
            dot = dot * cos.clamp_min(0.1) ** cossim_pow
        return _at(_spatial_mean(dot), batch)

    tag = f"direction^{cossim_pow:g}" if cossim_pow else "direction"
    return Objective(fn, frozenset({name}), f"{name}:{tag}{_suffix(batch)}", ((name, v.numel() - 1),))


def dot_compare(name: str, reference: int, batch: int | None = None, cossim_pow: float = 0.0) -> Objective:
    """Each image's activations at ``name`` dotted with those of image ``reference`` of the same
    batch, times their cosine (clipped at 0.1) to the power p: Lucid's ``dot_compare``, the
    caricature objective.

    The whole map is compared at once (channels *and* positions), so the image is rewarded for
    what the reference shows where it shows it. The reference's activations are a constant
    (detached), and the value is divided by their squared norm, so the reference itself scores
    1 at every layer and one learning rate or weight means the same at every depth. The plain
    dot product also grows by making everything large; the cosine factor rewards pointing
    *along* the reference, and a higher power exaggerates only what it already has.
    """

    def fn(a: Acts) -> torch.Tensor:
        t = a[name].flatten(1)
        ref = t[reference].detach()
        dot = (t @ ref) / ref.pow(2).sum().clamp_min(1e-12)
        if cossim_pow:
            cos = F.cosine_similarity(t, ref[None], dim=1, eps=1e-6)
            dot = dot * cos.clamp_min(0.1) ** cossim_pow
        return _at(dot, batch)

    tag = f"dot_compare^{cossim_pow:g}" if cossim_pow else "dot_compare"
    return Objective(fn, frozenset({name}), f"{name}:{tag}{_suffix(batch)}", ((name, None),))


def cosine(
    name: str, vec: torch.Tensor | Sequence[float], label: str = "cosine", batch: int | None = None
) -> Objective:
    """Cosine similarity between the layer's vector (averaged over positions, if it has any) and
    ``vec``: CLIP's image-text score when ``name`` is the image embedding."""
    v = torch.as_tensor(vec, dtype=torch.float32).flatten()
    v = v / v.norm().clamp_min(1e-12)

    def fn(a: Acts) -> torch.Tensor:
        t = a[name]
        e = t.flatten(2).mean(2) if t.dim() > 2 else t
        if e.shape[1] != v.numel():
            raise ValueError(f"{label} has {v.numel()} entries but {name} has {e.shape[1]}")
        return _at(F.normalize(e, dim=1) @ v.to(e), batch)

    return Objective(fn, frozenset({name}), f"{label}{_suffix(batch)}", ((name, v.numel() - 1),))


def class_token(layer: str, feature: int, batch: int | None = None) -> Objective:
    """Feature ``feature`` of a transformer layer's class token (its first prefix token)."""
    key = layer + PREFIX
    return Objective(
        lambda a: _at(a[key][:, 0, feature], batch),
        frozenset({key}),
        f"{layer}:{feature}@cls{_suffix(batch)}",
        ((key, feature),),
    )


def head(
    capture: str,
    index: int,
    num_heads: int,
    *,
    unmix: tuple[torch.Tensor, torch.Tensor] | None = None,
    label: str | None = None,
    batch: int | None = None,
) -> Objective:
    """Mean squared output of attention head ``index``, averaged over the patch tokens.

    ``capture`` holds the heads' outputs side by side in its channels (the input of timm's
    attention projection). ``unmix`` = (M, b) recovers them from a module that only returns the
    projected sum (``nn.MultiheadAttention``): heads = M @ (out - b).
    """

    def fn(a: Acts) -> torch.Tensor:
        t = a[capture]
        if unmix is not None:
            m, b = unmix
            t = torch.einsum("ij,bj...->bi...", m.to(t), t - b.to(t).view((1, -1) + (1,) * (t.dim() - 2)))
        d = t.shape[1] // num_heads
        return _at(t[:, index * d : (index + 1) * d].pow(2).flatten(1).mean(1), batch)

    name = label or f"{capture}:head={index}"
    return Objective(fn, frozenset({capture}), f"{name}{_suffix(batch)}", ((capture, None),))


def random_direction(name: str, num_channels: int, seed: int = 0, batch: int | None = None) -> Objective:
    """A seeded random unit direction in the layer's channel space."""
    g = torch.Generator().manual_seed(seed)
    return direction(name, torch.randn(num_channels, generator=g), batch)


def class_logit(cls: int, batch: int | None = None) -> Objective:
    """The pre-softmax score of class ``cls``, named ``logit:N`` as the TARGET that asks for it
    outright: ``class:N`` is the logit in some recipes and the log-odds in a render, so the name
    says which one ran."""
    return Objective(
        lambda a: _at(a[LOGITS][:, cls], batch), frozenset({LOGITS}), f"logit:{cls}{_suffix(batch)}", ((LOGITS, cls),)
    )


def class_log_prob(cls: int, batch: int | None = None) -> Objective:
    """The log-softmax probability of class ``cls``: unlike the logit, raising it means
    lowering every other class too (the cross-entropy an attack or a classifier uses)."""
    return Objective(
        lambda a: _at(a[LOGITS].float().log_softmax(-1)[:, cls], batch),
        frozenset({LOGITS}),
        f"logp:{cls}{_suffix(batch)}",
        ((LOGITS, cls),),
    )


def class_log_odds(cls: int, batch: int | None = None) -> Objective:
    """The log-odds of class ``cls``, log(p / (1 - p)): its logit minus the log-sum-exp of
    every other class's.

    What a class render maximizes by default. Like log-softmax it lowers the rivals, a sibling
    breed above all; unlike log-softmax its gradient does not fade once the rendering network is
    sure, so it keeps drawing what tells the class from its neighbours, which other networks
    then read: on lite0, three-seed quality 0.945 against the logit's 0.927 at 192 steps
    (``benchmarks/RESULTS.md``).
    """

    def fn(a: Acts) -> torch.Tensor:
        z = a[LOGITS].float()
        if z.shape[-1] < 2:
            raise FeaturevisError(f"logodds:{cls} needs at least two classes; the model has one (use logit:{cls})")
        rest = z.index_fill(-1, torch.tensor([cls], device=z.device), float("-inf"))
        return _at(z[:, cls] - rest.logsumexp(-1), batch)

    return Objective(fn, frozenset({LOGITS}), f"logodds:{cls}{_suffix(batch)}", ((LOGITS, cls),))


def diversity(name: str, group: int | None = None) -> Objective:
    """Minus the mean cosine similarity of each image's Gram matrix to the others'.

    Adding ``w * diversity(layer)`` pushes the images of a batch to show different facets of
    the same target (Olah et al. 2017). With ``group=n`` images are compared only within
    consecutive groups of ``n``, so one batch can hold diversity sets of several targets.
    """

    def fn(a: Acts) -> torch.Tensor:
        t = a[name]
        b, c = t.shape[:2]
        n = group or b
        if n < 2:
            return torch.zeros(b, device=t.device, dtype=t.dtype)
        if b % n:
            raise ValueError(f"diversity groups of {n} do not divide a batch of {b}")
        flat = t.reshape(b, c, -1)
        gram = F.normalize((flat @ flat.transpose(1, 2)).reshape(b // n, n, -1), dim=2)
        sim = gram @ gram.transpose(1, 2)
        return (-(sim.sum(2) - sim.diagonal(dim1=1, dim2=2)) / (n - 1)).reshape(b)

    suffix = f", group={group}" if group else ""
    return Objective(fn, frozenset({name}), f"diversity({name}{suffix})", ((name, None),))


def l1(constant: float = 0.5) -> Objective:
    """Mean absolute deviation of the image from ``constant`` (subtract it as a penalty)."""
    return Objective(lambda a: (a[INPUT] - constant).abs().flatten(1).mean(1), frozenset({INPUT}), "l1")


def total_variation() -> Objective:
    """Mean absolute difference of neighbouring pixels (subtract it as a penalty)."""

    def fn(a: Acts) -> torch.Tensor:
        x = a[INPUT]
        dx = (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).mean(1)
        dy = (x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).mean(1)
        return dx + dy

    return Objective(fn, frozenset({INPUT}), "tv")


def blur(sigma_px: int = 1) -> Objective:
    """Squared distance of the image to its own (fixed) box-blurred copy: penalizes fine detail."""
    k = 2 * sigma_px + 1

    def fn(a: Acts) -> torch.Tensor:
        x = a[INPUT]
        with torch.no_grad():
            blurred = F.avg_pool2d(F.pad(x, (sigma_px,) * 4, mode="replicate"), k, stride=1)
        return (x - blurred).pow(2).flatten(1).mean(1)

    return Objective(fn, frozenset({INPUT}), "blur")


def interpolation(a: Objective, b: Objective) -> Objective:
    """Image ``i`` of a batch of ``n`` maximizes ``(1 - t) a + t b`` with ``t = i / (n - 1)``:
    pure ``a`` in the first image, pure ``b`` in the last, a straight path between."""

    def fn(acts: Acts) -> torch.Tensor:
        va, vb = a(acts), b(acts)
        t = torch.linspace(0, 1, len(va), device=va.device, dtype=va.dtype) if len(va) > 1 else torch.zeros_like(va)
        return (1 - t) * va + t * vb

    return Objective(fn, a.layers | b.layers, f"({a.name} -> {b.name})", a.checks + b.checks, a.grids + b.grids)


def opacity_penalty(objective: Objective, weight: float) -> Objective:
    """``objective`` less ``weight`` × its own size × the image's mean opacity: a fully opaque
    image must earn ``weight`` of its score more than a transparent one, whatever the objective's
    scale (its size is a constant here, not something to optimize). Reads an RGBA
    parameterization's ``alpha``."""

    def fn(a: Acts) -> torch.Tensor:
        v = objective(a)
        return v - weight * v.detach().abs() * a[ALPHA].flatten(1).mean(1)

    return Objective(
        fn, objective.layers | {ALPHA}, f"({objective.name} - {weight:g}*opacity)", objective.checks, objective.grids
    )


def as_objective(obj: Objective | Iterable[Objective]) -> Objective:
    """An objective, or the sum of several."""
    if isinstance(obj, Objective):
        return obj
    return sum(obj)  # type: ignore[return-value]
