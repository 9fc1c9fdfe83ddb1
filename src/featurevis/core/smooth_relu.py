"""Smooth ReLU gradients for a render: the forward pass exact, the backward pass through a gate.

A ReLU's gradient is a step: a unit just below zero passes nothing, one just above passes
everything. An image optimized through those steps follows the exact on/off pattern of one
network on one image, a quirk that related networks do not share, so other networks read the
class in it less well. With a smooth gradient (after Wang et al. 2023's backward propagation
attack, BPA), the backward pass multiplies by ``sigmoid(t x)`` (and for a ReLU6 also by
``sigmoid(t (6 - x))``) instead of the step: units near the threshold pass part of the
gradient, and the step sees past the pattern. At ``t`` = 3 this lifts lite0's class renders as
judged by lite1 and lite2 (``benchmarks/RESULTS.md``, "Time to quality"); ``t`` → ∞ is the true
gradient, and at ``t`` = 1 the gradient is too far from it to climb.

The first ReLU module (the stem's, right on the pixels) keeps its true gradient: that is how
it was measured. Only ``nn.ReLU`` / ``nn.ReLU6`` modules can be swapped; a network that calls
``F.relu`` in its ``forward`` has nothing this can rewrite, and a render that asks says so.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .errors import FeaturevisError
from .redirect import relu_modules, swapped_forwards


class _SmoothClamp(torch.autograd.Function):
    """``x.clamp(0, upper)``; the backward multiplies by a sigmoid gate of temperature ``t``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, upper: float, t: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.upper, ctx.t = upper, t
        return x.clamp(0, upper) if math.isfinite(upper) else x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        upper, t = ctx.upper, ctx.t
        if math.isfinite(upper):
            # sigmoid(t x) sigmoid(t (upper - x)) in one sigmoid: the far factor is >= sigmoid(t upper / 2)
            # (0.99988 for a ReLU6 at t = 3), so the nearer threshold's sigmoid alone is the gate.
            half = upper / 2
            gate = (x - half).abs_().mul_(-t).add_(t * half).sigmoid_()  # sigmoid(t min(x, upper - x))
        else:
            gate = (x * t).sigmoid_()
        return gate.mul_(grad), None, None


def _smooth_forward(module: nn.Module, upper: float, t: float):
    plain = type(module).forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # no backward to smooth: the module's own (fused) kernel
            return plain(module, x)
        return _SmoothClamp.apply(x, upper, t)

    return forward


def smoothable(net: nn.Module) -> bool:
    """Whether ``net`` has ReLU modules past the first, which :func:`smooth_relus` would rewrite."""
    return len(relu_modules(net)) > 1


def check_temperature(t: float) -> float:
    if not (math.isfinite(t) and t >= 0):
        raise FeaturevisError(
            f"a smooth-ReLU temperature is a finite number >= 0 (0: the true gradient; 3 for a class), not {t}"
        )
    return float(t)


def smooth_relus(net: nn.Module, t: float) -> contextlib.AbstractContextManager[int]:
    """Within the block, every ReLU/ReLU6 module of ``net`` but the first has a smooth gradient of
    temperature ``t`` (0: unchanged); yields how many modules were swapped."""
    t = check_temperature(t)
    relus = relu_modules(net)[1:] if t > 0 else []
    return swapped_forwards([(m, _smooth_forward(m, upper, t)) for m, upper in relus])
