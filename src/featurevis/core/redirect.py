"""Redirected ReLU gradients (Lucid's fix for dead units), for the first steps of a render.

A unit behind a ReLU that is off (input < 0) everywhere on the starting image gets no gradient,
so gradient ascent never moves the image and the render stays grey (lucent#9, lucent#34). While
redirected, a ReLU (and a ReLU6, above 6) also passes the gradient where it would push its
input back into the active range; only where it would push it further out is it still
blocked. The forward pass is unchanged. Lucid uses the redirected gradient per image only
where the true one is zero everywhere, so it wakes units up and then steps aside.

Only ``nn.ReLU`` / ``nn.ReLU6`` *modules* can be swapped: a network that calls
``F.relu`` / ``torch.relu`` in its ``forward`` keeps the plain gradient there.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
from torch import nn


class _RedirectedClamp(torch.autograd.Function):
    """``x.clamp(0, upper)`` whose backward also passes gradient that pushes ``x`` back inside."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, upper: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(0, upper) if math.isfinite(upper) else x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        upper = ctx.upper
        # grad is d(loss)/d(out); the optimizer moves x against it: grad > 0 pushes x down.
        # The plain module's own backward kernels (one fused pass; 0 < x < upper, as nn.ReLU6's).
        if math.isfinite(upper):
            true = torch.ops.aten.hardtanh_backward(grad, x, 0.0, upper)
        else:
            true = torch.ops.aten.threshold_backward(grad, x, 0.0)
        # Per image: does the true gradient reach something? (Counted in place: flattening a
        # channels_last map would copy it.)
        alive = torch.count_nonzero(true, dim=tuple(range(1, true.dim()))) > 0 if true.dim() >= 2 else true.any()[None]
        if bool(alive.all()):  # the usual case: the redirected gradient would go unused
            return true, None
        redirected = grad.masked_fill(((x < 0) & (grad > 0)) | ((x > upper) & (grad < 0)), 0)
        alive = alive.view((-1,) + (1,) * (true.dim() - 1)) if true.dim() >= 2 else alive[0]
        return torch.where(alive, true, redirected), None


def _redirected_forward(upper: float):
    def forward(x: torch.Tensor) -> torch.Tensor:
        return _RedirectedClamp.apply(x, upper)

    return forward


def relu_modules(net: nn.Module) -> list[tuple[nn.Module, float]]:
    """Every ``nn.ReLU`` / ``nn.ReLU6`` module of ``net`` in registration order, with its upper bound."""
    out = []
    for m in net.modules():
        if isinstance(m, nn.ReLU6):
            out.append((m, 6.0))
        elif isinstance(m, nn.ReLU):
            out.append((m, math.inf))
    return out


@contextlib.contextmanager
def swapped_forwards(swaps: list[tuple[nn.Module, Callable]]) -> Iterator[int]:
    """Within the block, each module's ``forward`` is the one given (an instance attribute shadows
    the class's); after it, what was there before, so two rewrites nest (a redirected start
    inside a smooth gradient). Yields how many modules were swapped."""
    before = [(m, vars(m).get("forward")) for m, _ in swaps]
    for m, forward in swaps:
        m.forward = forward
    try:
        yield len(swaps)
    finally:
        for m, old in reversed(before):
            if old is None:
                del m.forward
            else:
                m.forward = old


def redirected_relus(net: nn.Module) -> contextlib.AbstractContextManager[int]:
    """Within the block, every ``nn.ReLU`` and ``nn.ReLU6`` module of ``net`` has a redirected
    gradient; yields how many modules were swapped (0: the network has none, or uses
    functional ReLUs, which cannot be swapped)."""
    return swapped_forwards([(m, _redirected_forward(upper)) for m, upper in relu_modules(net)])
