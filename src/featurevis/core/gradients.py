"""Gradients of any objective with respect to the input, and averages over noisy copies.

Saliency (class gradients) and attribution (any objective: a class, a channel, a direction)
both start from ``d objective / d pixels`` and both offer SmoothGrad (Smilkov et al. 2017), the
same quantity averaged over noisy copies of the photo; they get both from here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from .model import FeatureModel
from .objectives import Objective


def objective_gradient(
    model: FeatureModel, objective: Objective, x: torch.Tensor, layers: tuple[str, ...] = ()
) -> tuple[torch.Tensor, torch.Tensor, dict[str, tuple[torch.Tensor, torch.Tensor | None]]]:
    """The objective's values for each image of ``x``, their gradient w.r.t. ``x`` and, for each
    of ``layers``, ``(activation, gradient)`` (``None`` where the objective does not depend on
    that layer: it runs after every layer the objective reads).

    Float32 throughout (no autocast): attributions are sums of many small products.
    """
    x = x.detach().clone().requires_grad_(True)
    acts = model(x, set(objective.layers) | set(layers))
    values = objective({k: v.float() for k, v in acts.items()})
    wrt = [x, *(acts[name] for name in layers)]
    grads = torch.autograd.grad(values.sum(), wrt, allow_unused=True)
    hidden = {
        name: (acts[name].detach().float(), None if g is None else g.float())
        for name, g in zip(layers, grads[1:], strict=True)
    }
    grad_x = grads[0] if grads[0] is not None else torch.zeros_like(x)
    return values.detach().float(), grad_x, hidden


def zero_point(model: FeatureModel, like: torch.Tensor) -> torch.Tensor:
    """The [0, 1] image the network's preprocessing maps to 0 (per channel; assumes it's affine)."""
    one = torch.ones(1, model.channels, 1, 1, device=like.device)
    with torch.no_grad():
        n0, n1 = model.normalize(0 * one).float(), model.normalize(one).float()
    return -n0 / (n1 - n0)


def noisy_mean(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    samples: int,
    noise: float,
    *,
    batch: int,
    generator: torch.Generator,
    progress: bool = True,
    description: str = "SmoothGrad",
) -> tuple[torch.Tensor, int, bool]:
    """SmoothGrad's average: ``fn`` (a batch of noisy copies -> their sum, shaped like ``x``) over
    ``samples`` copies ``x + N(0, noise²)``, drawn ``batch`` at a time from ``generator``.

    Returns ``(mean, samples done, interrupted)``: Ctrl-C keeps the average of the batches done
    (a message says how many); before the first batch it raises ``KeyboardInterrupt``.
    """
    total = torch.zeros_like(x)
    done, interrupted = 0, False
    bar = tqdm(total=samples, desc=description, unit="sample", disable=not progress, leave=False, dynamic_ncols=True)
    try:
        while done < samples:
            n = min(batch, samples - done)
            eps = torch.randn((n, *x.shape[1:]), generator=generator).to(x.device) * noise
            total += fn(x + eps)
            done += n
            bar.update(n)
    except KeyboardInterrupt:
        if not done:
            raise
        interrupted = True
        tqdm.write(f"featurevis: interrupted; {description} keeps the average of {done} of {samples} samples")
    finally:
        bar.close()
    return total / done, done, interrupted
