"""Feature visualization from scratch: optimize images that excite a unit, a layer or a class."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from ..core import objectives as O
from ..core.engine import Ensemble, RenderResult, resolve_device, validate
from ..core.errors import FeaturevisError
from ..core.model import FeatureModel
from ..core.objectives import Objective, as_objective
from ..core.params import AlignedFourierImage, AlphaImage, FourierImage, Parameterization, make_param
from ..core.targets import parse_target
from ..core.visualize import (
    REDIRECT_STEPS,
    average_setting,
    default_lr,
    residual_settings,
    smooth_setting,
    visualize,
)
from ..zoo import as_model

#: Opacity penalty of ``--alpha`` without a weight: an opaque image must earn half its score more.
ALPHA_WEIGHT = 0.5

#: Default number of steps: the knee of the time-to-quality curve of class renders with the
#: true gradient, averaged over three seeds (``benchmarks/quality.py --curve``): 320 steps reach
#: 0.880 of the curve's 0.884 at 384, while 256 reach only 0.854. Renders of hidden units, which
#: keep the true gradient, use it.
DEFAULT_STEPS = 320
#: What ``class:N`` in a TARGET string renders: the class's log-odds, log(p / (1 - p)), which
#: other networks read better than the logit's renders (three seeds at 192 steps, one thread:
#: quality 0.949 against 0.926, ``benchmarks/RESULTS.md``); ``logit:N`` renders the logit.
CLASSES = "log_odds"
#: Default steps of a class render with the residual rewrites (skip gradient and stochastic
#: depth, :func:`~featurevis.core.visualize.residual_defaults`), the iterate average, Adam 0.1 and
#: the log-odds, three seeds: 192 steps reach quality 0.945 (276 floor-steps per image in a
#: batch of 5), 256 only 0.952 (``benchmarks/RESULTS.md``).
CLASS_STEPS = 192


def _diversity_layer(model: FeatureModel, objective: Objective, size: int) -> str:
    """A layer whose Gram matrices say how different two images look.

    The objective's own spatial layer when it has one; a class logit has no spatial map, so
    then a layer ~60 % deep (style and parts, not pixels) among the model's top-level ones.
    """
    spatial = [info.name for info in model.layers(size) if info.spatial]
    own = sorted(set(spatial) & objective.layers)
    if own:
        return own[0]
    top = [n for n in spatial if n.count(".") <= 1] or spatial
    if not top:
        raise FeaturevisError("diversity needs a model with spatial (C×H×W) layers")
    return top[int(0.6 * (len(top) - 1))]


def _members(model: object) -> list[FeatureModel]:
    """One network, or several for an objective summed over them: a list, or names joined by
    commas (``"lite0,lite1"``)."""
    if isinstance(model, str) and "," in model:
        model = [name.strip() for name in model.split(",")]
    if isinstance(model, (list, tuple)):
        if not model or any(isinstance(m, str) and not m for m in model):
            raise FeaturevisError("give each model of an ensemble by name, e.g. lite0,lite1")
        return [as_model(m) for m in model]
    return [as_model(model)]


def render(
    model: str | torch.nn.Module | FeatureModel | Sequence[str | torch.nn.Module | FeatureModel],
    objective: Objective | str | Iterable[Objective],
    *,
    size: int | None = None,
    batch: int = 1,
    steps: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    param: str | Parameterization = "fourier",
    decorrelate: bool = True,
    transforms: str | Callable | None = "auto",
    diversity: float = 0.0,
    diversity_layer: str | None = None,
    optimizer: Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer] | None = None,
    device: str | torch.device | None = None,
    snapshots: Sequence[int] = (),
    progress: bool = True,
    schedule: str = "constant",
    redirect_relu: int = REDIRECT_STEPS,
    skip_gradient: float | None = None,
    stochastic_depth: float | None = None,
    smooth_relu: float | None = None,
    average: float | None = None,
    alpha: float | None = None,
) -> RenderResult:
    """Optimize images that maximize ``objective`` on ``model``.

    Args:
        model: a zoo name (``"efficientnet_lite0"``), a :class:`FeatureModel`, or any module; or
            several (a list, or ``"lite0,lite1"``): the image then maximizes the objective summed
            over them, each network reading the target against its own layers and classes.
        objective: an :class:`Objective`, a TARGET string (``"_blocks.8:12"``), or a list to sum.
            In a string, ``class:N`` is the class's log-odds (:data:`CLASSES`); ``logit:N`` is its logit.
        size: image side in pixels (the model's input size by default).
        batch: number of images; objectives without ``batch=`` apply to all of them.
        steps: optimization steps (default :data:`CLASS_STEPS` for a class render with both
            residual rewrites, whose curve has its knee there; :data:`DEFAULT_STEPS` otherwise).
        lr: Adam's learning rate (default: the parameterization's, 0.05; 0.003 for a CPPN; 0.1 for
            a Fourier class render with the residual rewrites and the average, where it was measured).
        param: ``"fourier"`` (default), ``"pixel"``, ``"maco"``, ``"cppn"`` (a smooth pattern that
            ``result.save(path, size=1024)`` draws again at any size), or a
            :class:`Parameterization` instance.
        transforms: ``"auto"`` (default: ``"patch"`` for a vision transformer, ``"standard"``
            otherwise), ``"standard"``, ``"patch"``, ``"maco"`` (crops + noise),
            ``None``/``"none"``, or a callable ``(images, generator)``.
        diversity: weight of a Gram-diversity term that pushes the batch's images apart.
        diversity_layer: where that term compares images (default: the objective's first
            spatial layer; for a class, a layer about 60 % of the way through the network).
        schedule: ``"constant"`` learning rate (default), ``"cosine"`` decay to 10 % or
            ``"linear"`` decay to ~0.
        snapshots: steps after which to keep a copy of the images.
        redirect_relu: for this many first steps, ReLU/ReLU6 modules also pass gradient that
            would turn an inactive unit on, so units dead on the starting image still get a
            picture (0 turns it off; functional ReLUs are never redirected).
        skip_gradient: share of the gradient each residual branch passes back, the skip path
            keeping all of it (Wu et al.'s skip gradient method).
        stochastic_depth: each step drops each image's residual branches at random, up to this
            rate at the last block, as the network was trained: every step sees another
            subnetwork. Defaults of both: 0.5 and 0.2 for a class on a network whose blocks
            allow them (the zoo's EfficientNet-Lite; ResNet-50 takes the skip gradient only),
            which makes the render transfer to other networks, in fewer steps; 1 and 0 (the
            plain network) otherwise. Asking for either on another network is an error.
        smooth_relu: backpropagate through every ReLU/ReLU6 module but the first with a sigmoid
            gate of this temperature instead of the step (the forward pass is exact), so the
            image does not hang on this network's exact on/off pattern (after Wang et al.'s
            BPA). Default 3 for a class where both residual rewrites apply, 0 (the true
            gradient) otherwise; asking for it of a network without ReLU modules is an error.
        average: draw the images from an exponential moving average of the parameters with
            this decay, not from the last step (default 0.97 for a class, whose renders other
            networks then read better, above all blurred; 0 otherwise).
        alpha: give the images an alpha channel, composited over random backgrounds while
            optimized, and subtract this weight × the objective's size × the mean opacity
            (0: no penalty). ``result.rgba()`` has the RGBA images; ``result.images`` are
            composited over white.
    Returns:
        A :class:`RenderResult`; Ctrl-C ends early and returns the images so far.
    """
    members = _members(model)
    dev = resolve_device(device)
    for m in members:
        m.to(dev)
    fm = members[0]
    size = size or fm.input_size
    objs = []
    for m in members:  # each network parses and checks the target against its own layers and classes
        obj = parse_target(m, objective, CLASSES) if isinstance(objective, str) else as_objective(objective)
        if diversity:
            obj = obj + diversity * O.diversity(diversity_layer or _diversity_layer(m, obj, size))
        validate(m, obj, size, batch)
        objs.append(obj)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    p = (
        make_param(param, batch, size, decorrelate=decorrelate, generator=g, channels=fm.channels)
        if isinstance(param, str)
        else param
    )
    if alpha is not None:
        if not alpha >= 0:
            raise FeaturevisError(f"alpha is the weight of the opacity penalty, a number >= 0, not {alpha}")
        p = p if isinstance(p, AlphaImage) else AlphaImage(p, generator=g)
        objs = [O.opacity_penalty(obj, alpha) for obj in objs] if alpha else objs
    obj = objs[0]
    skip, depth = residual_settings(members, obj, skip_gradient, stochastic_depth)
    smooth = smooth_setting(members, obj, skip, depth, smooth_relu)
    average = average_setting(obj, average)
    lr = default_lr(p, obj, skip, depth, average) if lr is None else lr
    if steps is None:
        steps = CLASS_STEPS if skip < 1 and depth > 0 else DEFAULT_STEPS
    result = visualize(
        fm,
        obj,
        size=size,
        steps=steps,
        lr=lr,
        param=p,
        transforms=transforms,
        optimizer=optimizer,
        progress=progress,
        schedule=schedule,
        snapshots=snapshots,
        redirect_relu=redirect_relu,
        skip_gradient=skip,
        stochastic_depth=depth,
        smooth_relu=smooth,
        average=average,
        gradient=Ensemble(list(zip(members, objs, strict=True))) if len(members) > 1 else None,
        check=False,
        generator=g,
    )
    if len(members) > 1:
        result.objective = f"{obj.name}, summed over {' + '.join(m.name for m in members)}"
    result.settings = dict(
        model=" + ".join(m.name for m in members),
        objective=obj.name,
        size=size,
        batch=batch,
        steps=steps,
        lr=lr,
        seed=seed,
        param=param if isinstance(param, str) else type(param).__name__,
        decorrelate=decorrelate,
        transforms=transforms if isinstance(transforms, str) or transforms is None else repr(transforms),
        diversity=diversity,
        diversity_layer=diversity_layer,
        schedule=schedule,
        redirect_relu=redirect_relu,
        skip_gradient=skip,
        stochastic_depth=depth,
        smooth_relu=smooth,
        average=average,
        alpha=alpha,
    )
    return result


def interpolate(
    model: str | torch.nn.Module | FeatureModel,
    a: Objective | str,
    b: Objective | str,
    *,
    frames: int = 6,
    size: int | None = None,
    seed: int = 0,
    decorrelate: bool = True,
    shared: bool = True,
    **kwargs,
) -> RenderResult:
    """A batch of ``frames`` images going from ``a`` to ``b``: frame ``i`` maximizes
    ``(1 - t) a + t b``, ``t = i / (frames - 1)``.

    With ``shared`` (default) the frames' Fourier spectra have a common part
    (:class:`~featurevis.core.params.AlignedFourierImage`), so features stay where they are from
    frame to frame and the row reads as one morph; ``kwargs`` go to :func:`render`.
    """
    if frames < 2:
        raise FeaturevisError(f"an interpolation needs at least 2 frames, not {frames}")
    if "param" in kwargs or "batch" in kwargs:
        raise FeaturevisError("interpolate chooses the parameterization and the batch (frames) itself")
    fm = as_model(model)
    oa, ob = (parse_target(fm, t, CLASSES) if isinstance(t, str) else as_objective(t) for t in (a, b))
    size = size or fm.input_size
    g = torch.Generator().manual_seed(seed)
    kind = AlignedFourierImage if shared else FourierImage
    p = kind(frames, size, decorrelate=decorrelate, channels=fm.channels, generator=g)
    result = render(fm, O.interpolation(oa, ob), size=size, batch=frames, seed=seed, param=p, **kwargs)
    result.settings.update(frames=frames, shared=shared, param=type(p).__name__)
    return result
