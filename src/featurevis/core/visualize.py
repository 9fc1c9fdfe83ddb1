"""The standard picture of an objective: what ``fv.render`` does, for the recipes that need one.

Attribution shows its top channels, neuron groups and atlases show their directions, concept
atoms and explorer pages show their units: each needs "a feature visualization of this
objective" as a step inside a larger technique. Recipes never import one another, so that
step lives here, once: a registered parameterization (Fourier by default), the transforms the
model calls for (``"auto"``: patch transforms for a vision transformer, the standard set
otherwise), Adam at the parameterization's own rate and a redirected-ReLU start.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from .engine import Gradient, RenderResult, optimize, validate
from .model import FeatureModel
from .objectives import Objective
from .params import Parameterization, make_param
from .transforms import resolve_transforms

#: Steps with redirected ReLU gradients at the start (Lucid's fix for units dead on the start).
REDIRECT_STEPS = 16


def visualize(
    model: FeatureModel,
    objective: Objective,
    *,
    batch: int = 1,
    size: int | None = None,
    steps: int = 256,
    lr: float | None = None,
    seed: int = 0,
    param: str | Parameterization = "fourier",
    decorrelate: bool = True,
    transforms: str | Callable | None = "auto",
    optimizer: Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer] | None = None,
    redirect_relu: int = REDIRECT_STEPS,
    schedule: str = "constant",
    snapshots: Sequence[int] = (),
    gradient: Gradient | None = None,
    progress: bool = True,
    description: str = "render",
    after_step: Callable[[Parameterization], None] | None = None,
    check: bool = True,
    generator: torch.Generator | None = None,
) -> RenderResult:
    """``batch`` images maximizing ``objective`` on ``model``, every random choice from ``seed``.

    Args:
        size: image side (default: the model's input size).
        lr: the optimizer's rate (default: the parameterization's ``default_lr``).
        param: a registered parameterization name or an instance (its batch and size win).
        check: validate the objective and the memory it needs first (off when the caller has).
        generator: the random stream to draw from (default: a new one seeded by ``seed``), for a
            caller that already drew its parameterization from it.
    Returns:
        The engine's :class:`RenderResult`; Ctrl-C ends early with ``interrupted`` set.
    """
    size = size or model.input_size
    if check:
        validate(model, objective, size, batch)
    g = generator
    if g is None:
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
    p = (
        make_param(param, batch, size, decorrelate=decorrelate, generator=g, channels=model.channels)
        if isinstance(param, str)
        else param
    )
    return optimize(
        model,
        objective,
        p,
        steps=steps,
        lr=p.default_lr if lr is None else lr,
        transforms=resolve_transforms(transforms, size, patch_px=model.patch_px),
        generator=g,
        optimizer=optimizer,
        progress=progress,
        description=description,
        after_step=after_step,
        schedule=schedule,
        snapshots=snapshots,
        gradient=gradient,
        redirect_relu=redirect_relu,
    )
