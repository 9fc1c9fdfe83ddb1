"""Rewrites of residual blocks for a render: skip gradients and stochastic depth.

An image optimized on one network exploits that network's own quirks; other networks do not
see the class in it. Two rewrites make a render hold for a family of networks instead, and
together they lift lite0's class renders as judged by lite1 and lite2 well past either alone
(``benchmarks/RESULTS.md``, "Time to quality"):

- **Skip gradient** (Wu et al. 2020, "Skip connections matter"): in the backward pass each
  residual branch passes only ``gamma`` of its gradient, the identity path all of it. The
  forward pass is unchanged; steps lean toward the lower-level structure the skip paths carry,
  which related networks share.
- **Stochastic depth** (Huang et al. 2016) as a free ensemble (Li et al. 2020's ghost
  networks): each step, each image's residual branches are dropped at random, at rates rising
  linearly with depth to ``rate`` at the last block, and kept ones scaled by ``1 / keep``, as
  in training. Every step then sees another subnetwork, and only what all of them agree on pays.
  It applies only to networks trained that way (EfficientNet-Lite, drop-connect 0.2), whose
  subnetworks are networks in their own right.

A block opts in with attributes its ``forward`` honours: ``branch_gradient`` (passed to
:func:`scale_gradient` on the branch before the sum) and ``branch_drop`` (passed to
:func:`drop_branch`, or drawn with :func:`branch_keep` first so that a branch every image drops
is not computed at all). The zoo's EfficientNet-Lite blocks have both, its ResNet-50 blocks the
first. A network without them cannot be rewritten, and says so.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from .errors import FeaturevisError


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``gamma``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, gamma: float) -> torch.Tensor:
        ctx.gamma = gamma
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.gamma, None


def scale_gradient(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """``x`` unchanged, its gradient times ``gamma`` (a no-op at 1 or without autograd)."""
    if gamma == 1.0 or not (x.requires_grad and torch.is_grad_enabled()):
        return x
    return _ScaleGradient.apply(x, gamma)


def branch_keep(x: torch.Tensor, rate: float) -> torch.Tensor | None:
    """Per image of ``x``, whether this pass keeps its residual branch (None: ``rate`` is 0).

    Drawn before the branch runs, so a block can skip a branch that every image drops; the draw
    is the one :func:`drop_branch` makes, so skipping changes neither the stream nor a value.
    """
    if rate == 0.0:
        return None
    return torch.rand((x.shape[0],) + (1,) * (x.dim() - 1), device=x.device) < 1.0 - rate


def keep_branch(h: torch.Tensor, keep: torch.Tensor | None, rate: float) -> torch.Tensor:
    """``h`` zeroed for the images ``keep`` drops, scaled by ``1 / (1 - rate)`` for the others."""
    if keep is None:
        return h
    return h * (keep.to(h.dtype) / (1.0 - rate))


def drop_branch(h: torch.Tensor, rate: float) -> torch.Tensor:
    """Per image, zero the branch ``h`` with probability ``rate``, else scale it by ``1 / (1 - rate)``."""
    return keep_branch(h, branch_keep(h, rate), rate)


def watched(block: nn.Module) -> bool:
    """Whether a hook reads ``block`` or a module inside it (its branch then runs even if dropped)."""
    return any(m._forward_hooks or m._forward_pre_hooks for m in block.modules())


def residual_blocks(net: nn.Module) -> list[nn.Module]:
    """The blocks of ``net`` whose branch gradient can be scaled."""
    return [m for m in net.modules() if hasattr(m, "branch_gradient")]


def droppable_blocks(net: nn.Module) -> list[nn.Module]:
    """The blocks of ``net`` whose branch can be dropped (trained with stochastic depth), in order."""
    return [m for m in net.modules() if hasattr(m, "branch_drop")]


def check_gamma(gamma: float) -> float:
    if not 0 < gamma <= 1:
        raise FeaturevisError(
            f"a skip gradient is the share of gradient a residual branch keeps: in (0, 1], not {gamma}"
        )
    return float(gamma)


def check_rate(rate: float) -> float:
    if not 0 <= rate < 1:
        raise FeaturevisError(f"a stochastic-depth rate is the last block's drop probability: in [0, 1), not {rate}")
    return float(rate)


@contextlib.contextmanager
def _set(blocks: list[nn.Module], attr: str, values: list[float]) -> Iterator[int]:
    before = [getattr(b, attr) for b in blocks]
    for b, v in zip(blocks, values, strict=True):
        setattr(b, attr, v)
    try:
        yield len(blocks)
    finally:
        for b, v in zip(blocks, before, strict=True):
            setattr(b, attr, v)


def skip_gradients(net: nn.Module, gamma: float) -> contextlib.AbstractContextManager[int]:
    """Within the block, every residual branch of ``net`` passes ``gamma`` of its gradient;
    yields how many blocks were set (0: ``net`` has none this can rewrite)."""
    blocks = residual_blocks(net)
    return _set(blocks, "branch_gradient", [check_gamma(gamma)] * len(blocks))


def drop_schedule(n: int, rate: float) -> list[float]:
    """EfficientNet's drop-connect schedule: block ``i`` of ``n`` drops at ``rate * (i + 1) / n``."""
    return [rate * (i + 1) / n for i in range(n)]


def dropped_branches(net: nn.Module, rate: float) -> contextlib.AbstractContextManager[int]:
    """Within the block, block ``i`` of ``net``'s ``n`` droppable ones drops its branch with
    probability ``rate * (i + 1) / n`` per image and pass (:func:`drop_schedule`); yields how
    many blocks were set."""
    blocks = droppable_blocks(net)
    return _set(blocks, "branch_drop", drop_schedule(len(blocks), check_rate(rate)))


@contextlib.contextmanager
def rewritten(net: nn.Module, name: str, skip_gradient: float = 1.0, stochastic_depth: float = 0.0) -> Iterator[None]:
    """Both rewrites of ``net`` (called ``name`` in errors) within the block; a one-line error,
    before anything runs, for one asked of a network without blocks that allow it."""
    with contextlib.ExitStack() as stack:
        if skip_gradient != 1.0 and not stack.enter_context(skip_gradients(net, skip_gradient)):
            raise FeaturevisError(
                f"{name} has no residual blocks whose gradient featurevis can scale "
                "(the zoo's EfficientNet-Lite and ResNet-50 have): use a skip gradient of 1"
            )
        if stochastic_depth != 0.0 and not stack.enter_context(dropped_branches(net, stochastic_depth)):
            raise FeaturevisError(
                f"{name} has no residual blocks trained with stochastic depth "
                "(the zoo's EfficientNet-Lite has): use a stochastic depth of 0"
            )
        yield
