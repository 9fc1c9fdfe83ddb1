"""The standard picture of an objective: what ``fv.render`` does, for the recipes that need one.

Attribution shows its top channels, neuron groups and atlases show their directions, concept
atoms and explorer pages show their units: each needs "a feature visualization of this
objective" as a step inside a larger technique. Recipes never import one another, so that
step lives here, once: a registered parameterization (Fourier by default), the transforms the
model calls for (``"auto"``: patch transforms for a vision transformer, the standard set
otherwise), Adam at the parameterization's own rate and a redirected-ReLU start; for a class,
the residual rewrites, smooth ReLU gradients, the iterate average and :data:`CLASS_LR` where
they were measured.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from .engine import Gradient, RenderResult, check_average, optimize, validate
from .model import FeatureModel
from .objectives import LOGITS, Objective, direction
from .params import FourierImage, Parameterization, make_param
from .residual import check_gamma, check_rate, droppable_blocks, residual_blocks
from .smooth_relu import check_temperature, smoothable
from .transforms import resolve_transforms

#: Steps with redirected ReLU gradients at the start (Lucid's fix for units dead on the start).
REDIRECT_STEPS = 16

#: The residual rewrites of a class render (:mod:`~.residual`): the share of the gradient a
#: residual branch passes back, and the last block's stochastic-depth rate (the rate
#: EfficientNet-Lite was trained with). Together they lift lite0's renders as judged by
#: lite1/lite2 from quality 0.880 to 0.917 at 320 steps, three seeds (``benchmarks/RESULTS.md``).
SKIP_GRADIENT = 0.5
STOCHASTIC_DEPTH = 0.2

#: Decay of the iterate average a class render's images are drawn from (:class:`~.engine.IterateAverage`).
AVERAGE = 0.97
#: Adam's rate for a Fourier class render with the rewrites and the average: twice the Fourier
#: image's own. With the average, larger steps explore more and the average keeps what they
#: agree on: quality 0.911 -> 0.927 at 192 steps, degraded top-1 93 % -> 97-98 % (three seeds).
CLASS_LR = 0.1


#: Temperature of a class render's smooth ReLU gradients (:mod:`~.smooth_relu`), on top of the
#: residual rewrites, the average and :data:`CLASS_LR`, with which it was measured: at 192 steps
#: the plain judges' mean p 0.973 / 0.976 -> 0.982 / 0.984 and quality 0.945 -> 0.952 (three
#: seeds; five seeds of the benchmark script: 0.941 -> 0.954), for 6-12 % more time per step.
#: Those are one realization: a seed moves by about 0.01 between runs whose floats differ, and
#: the same five seeds re-run on later code gave quality 0.948, plain 0.982 / 0.981
#: (``benchmarks/RESULTS.md``, "The same five seeds again").
SMOOTH_RELU = 3.0


def smooth_setting(
    models: Sequence[FeatureModel], objective: Objective, skip: float, depth: float, smooth_relu: float | None
) -> float:
    """The smooth-ReLU temperature a render asked for, checked; left ``None``: :data:`SMOOTH_RELU`
    for the class recipe it was measured with (the class logits, both residual rewrites, networks
    with ReLU modules to smooth), 0 (the true gradient) otherwise.

    Why only there: a hidden unit's picture is this network's own unit, for which the true
    gradient is the truth; a class render is judged by other networks, which a gradient that sees
    past this network's exact on/off pattern serves better.
    """
    if smooth_relu is not None:
        return check_temperature(smooth_relu)
    measured = class_recipe(objective, skip, depth) and all(smoothable(m.net) for m in models)
    return SMOOTH_RELU if measured else 0.0


def class_recipe(objective: Objective, skip: float, depth: float) -> bool:
    """Whether a render is the class recipe the class defaults were measured with: the class
    logits under both residual rewrites."""
    return LOGITS in objective.layers and skip < 1 and depth > 0


def default_lr(param: Parameterization, objective: Objective, skip: float, depth: float, average: float) -> float:
    """Adam's rate when none is given: :data:`CLASS_LR` for the class recipe it was measured
    with (a plain Fourier image, the class logits, both residual rewrites and the average);
    the parameterization's own ``default_lr`` otherwise."""
    measured = type(param) is FourierImage and class_recipe(objective, skip, depth) and average > 0
    return CLASS_LR if measured else param.default_lr


def average_setting(objective: Objective, average: float | None) -> float:
    """The iterate average a render asked for, checked; left ``None``: :data:`AVERAGE` for the
    class logits, 0 (the last step's images) otherwise.

    Why only classes: a class render is judged by other networks, which read the averaged
    images better (``benchmarks/RESULTS.md``); a hidden unit's picture is judged by the unit,
    which the average drives as hard as the last step (0.99-1.02 of its activation, 12 lite0
    channels at 320 steps), so unit renders keep what they were measured with.
    """
    if average is not None:
        return check_average(average)
    return AVERAGE if LOGITS in objective.layers else 0.0


def residual_defaults(models: Sequence[FeatureModel], objective: Objective) -> tuple[float, float]:
    """The skip gradient and stochastic depth for ``objective`` on ``models``: for the class
    logits, :data:`SKIP_GRADIENT` and :data:`STOCHASTIC_DEPTH` where every network has blocks
    that allow them; otherwise 1 and 0, the plain network and its true gradient.

    Why only classes: a class render is judged by whether other networks see the class, which
    both improve; a hidden unit's picture is this network's own unit, and the true gradient
    reaches 3-11 % more of its activation (lite0, ``_blocks.6``/``_blocks.10``).
    """
    if LOGITS not in objective.layers:
        return 1.0, 0.0
    skip = SKIP_GRADIENT if all(residual_blocks(m.net) for m in models) else 1.0
    depth = STOCHASTIC_DEPTH if all(droppable_blocks(m.net) for m in models) else 0.0
    return skip, depth


def residual_settings(
    models: Sequence[FeatureModel], objective: Objective, skip_gradient: float | None, stochastic_depth: float | None
) -> tuple[float, float]:
    """The rewrites a render asked for, checked, with :func:`residual_defaults` for those left ``None``."""
    skip, depth = residual_defaults(models, objective)
    return (
        skip if skip_gradient is None else check_gamma(skip_gradient),
        depth if stochastic_depth is None else check_rate(stochastic_depth),
    )


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
    skip_gradient: float | None = None,
    stochastic_depth: float | None = None,
    smooth_relu: float | None = None,
    average: float | None = None,
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
        lr: the optimizer's rate (default: :func:`default_lr`).
        param: a registered parameterization name or an instance (its batch and size win).
        skip_gradient, stochastic_depth: the residual rewrites (default: :func:`residual_defaults`;
            1 and 0 are the plain network).
        smooth_relu: temperature of the smooth ReLU gradients (default: :func:`smooth_setting`;
            0 is the true gradient).
        average: decay of the iterate average the images are drawn from (default:
            :func:`average_setting`; 0 is the last step).
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
    models = (gradient or Gradient()).models(model)
    skip, depth = residual_settings(models, objective, skip_gradient, stochastic_depth)
    smooth = smooth_setting(models, objective, skip, depth, smooth_relu)
    average = average_setting(objective, average)
    return optimize(
        model,
        objective,
        p,
        steps=steps,
        lr=default_lr(p, objective, skip, depth, average) if lr is None else lr,
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
        skip_gradient=skip,
        stochastic_depth=depth,
        smooth_relu=smooth,
        average=average,
    )


#: Lucid's exponent for direction renders: rewards pointing along the direction, not mere size.
COSSIM_POW = 1.0


def visualize_directions(
    model: FeatureModel,
    layer: str,
    directions: torch.Tensor,
    *,
    cossim_pow: float = COSSIM_POW,
    size: int | None = None,
    steps: int = 256,
    seed: int = 0,
    chunk: int = 32,
    progress: bool = True,
    description: str = "directions",
    on_step: Callable[[], None] | None = None,
) -> tuple[torch.Tensor, bool]:
    """One picture per row of ``directions`` (N×C, in ``layer``'s channel space), ``chunk`` at a time.

    Neuron groups, activation grids and atlases all show vectors of activation space rather
    than single channels; image ``i`` of a batch maximizes :func:`~.objectives.direction` of
    row ``i`` (cosine-weighted, as Lucid renders directions), so a whole set renders in a few
    batched runs. Returns the ``N×3×s×s`` images (those done, on Ctrl-C) and whether Ctrl-C cut
    the run short. ``on_step`` is called after every step of every run (a job's progress).
    """
    directions = torch.as_tensor(directions, dtype=torch.float32)
    if directions.dim() != 2 or not len(directions):
        raise ValueError(f"directions must be an N×C table, not shape {tuple(directions.shape)}")
    size = size or model.input_size
    out: list[torch.Tensor] = []
    n = len(directions)
    for start in range(0, n, chunk):
        part = directions[start : start + chunk]
        objective = sum(direction(layer, d, batch=i, cossim_pow=cossim_pow) for i, d in enumerate(part))
        label = description if n <= chunk else f"{description} {start + 1}-{start + len(part)}/{n}"
        r = visualize(
            model, objective, batch=len(part), size=size, steps=steps, seed=seed + start, progress=progress,
            description=label, after_step=(lambda _p: on_step()) if on_step else None,
        )  # fmt: skip
        out.append(r.images)
        if r.interrupted:
            return torch.cat(out), True
    return torch.cat(out), False


def direction_scores(model: FeatureModel, images: torch.Tensor, layer: str, directions: torch.Tensor) -> torch.Tensor:
    """Cosine (B×N) between each image's mean activation vector at ``layer`` and each direction.

    How a direction render is judged: the picture made for row ``i`` should point along row
    ``i`` more than along the others.
    """
    from .engine import activations

    with torch.no_grad():
        a = activations(model, images.to(model.device), [layer])[layer].float().cpu()
    mean = a.flatten(2).mean(2) if a.dim() > 2 else a
    d = torch.as_tensor(directions, dtype=torch.float32)
    return torch.nn.functional.normalize(mean, dim=1) @ torch.nn.functional.normalize(d, dim=1).T
