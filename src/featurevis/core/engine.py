"""The one optimization loop: parameterization → transforms → frozen model → objective → step.

Every gradient recipe (feature visualization, DeepDream, inversion, style, attacks, DGN-AM,
fast-style training) calls :func:`optimize` with its own parameterization, objective,
transforms and optimizer, and, where one pass over the whole image does not fit (DeepDream's
tiles), its own :class:`Gradient`; nothing here knows about any recipe. So Ctrl-C, NaN
handling, snapshots, schedules, progress and autocast live here once.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import residual
from . import transforms as T
from .errors import FeaturevisError
from .images import channel_tiles, make_grid, save_image
from .memory import check_request
from .model import INPUT, LOGITS, FeatureModel
from .objectives import Objective
from .params import Parameterization
from .redirect import redirected_relus
from .results import Result
from .smooth_relu import smooth_relus


@dataclass
class RenderResult(Result):
    """Images and how they were made. Displays itself in notebooks; ``save()`` writes a file."""

    images: torch.Tensor  # B×C×H×W in [0, 1], on the CPU (C: the model's channels)
    history: torch.Tensor  # steps × B objective values (with transforms applied)
    objective: str
    values: torch.Tensor  # B: the objective on the final, untransformed images
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)
    param: Parameterization | None = field(default=None, repr=False)  # what drew the images

    def grid(self, ncols: int | None = None, size: int | None = None) -> torch.Tensor:
        images = self.images if size is None else self.render_at(size)
        # A 4-channel model's images are RGB + another channel, not RGBA: tiles keep each seen.
        return channel_tiles(make_grid(images, ncols) if len(images) > 1 else images[0])

    def shown(self) -> torch.Tensor:
        return self.grid()

    def render_at(self, size: int | tuple[int, int]) -> torch.Tensor:
        """The images drawn again at another resolution (``B×3×H×W``, CPU): render small, save
        large. Only resolution-independent parameterizations (``param="cppn"``) can."""
        if self.param is None:
            raise FeaturevisError("this result keeps no parameterization to draw again")
        h, w = (size, size) if isinstance(size, int) else size
        # The drawing itself goes in bands; the images, and the grid or file made of them, do not.
        check_request(None, len(self.images), h, w, copies=2, what=f"drawing at {w}x{h} px", hint="use a smaller size")
        return self.param.render_at(size).float().cpu()

    def rgba(self) -> torch.Tensor:
        """``B×4×H×W`` straight RGBA images of an alpha render (``render(..., alpha=w)``)."""
        rgba = getattr(self.param, "rgba", None)
        if rgba is None:
            raise FeaturevisError("this render has no alpha channel: render with alpha=WEIGHT (--alpha)")
        with torch.no_grad():
            return rgba().float().cpu()

    def save(self, path: str | Path, ncols: int | None = None, size: int | None = None) -> Path:
        """Write the image (a grid for a batch) atomically; ``size`` draws it anew at that side
        first (CPPN renders only)."""
        return save_image(self.grid(ncols, size), path)

    def __repr__(self) -> str:
        b, _, h, w = self.images.shape
        vals = ", ".join(f"{v:.3g}" for v in self.values.tolist()[:8])
        return f"RenderResult({self.objective}, {b} image(s) {w}x{h}, values [{vals}])"


#: Devices a model can be visualized on (``torch.device`` knows many more, like "meta" or "xla").
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"`` (a GPU if there is one), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``,
    checked to be present here, so a typo fails before any work."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        dev = None
    if dev is None or dev.type not in DEVICE_TYPES:
        raise FeaturevisError(f"unknown device {str(device)!r}: use cpu, cuda, cuda:N, mps or auto")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise FeaturevisError(f"{device} was asked for but torch sees no CUDA GPU; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise FeaturevisError(f"{device}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise FeaturevisError("mps was asked for but torch sees no Apple GPU; use --device cpu")
    return dev


def validate(model: FeatureModel, objective: Objective, size: int | tuple[int, int], batch: int = 1) -> None:
    """Check, before any work, that ``batch`` images of ``size`` px (a side, or ``(height,
    width)``) fit in memory with their activations and gradients, and that every layer, channel
    and neuron position the objective reads exists (at the longest side), with a clear message."""
    h, w = (size, size) if isinstance(size, int) else size
    check_request(model, batch, h, w, device=model.device)
    size = max(h, w)
    for layer, ch, *position in objective.checks:
        model.check_layer(layer)
        if layer in (INPUT, LOGITS):
            if ch is None or layer == INPUT:
                continue
        else:
            layout = model.layout(layer)  # a layer whose axes cannot be told apart fails here
            if not layout.readable:
                raise FeaturevisError(
                    f"layer {layer!r} holds attention weights (heads x tokens x tokens), not channels; "
                    "visualize a head's output with ATTENTION_MODULE:head=H"
                )
        if ch is None:
            continue
        shape = model.layer_shape(layer, size)
        n = shape[0] if shape else 0
        if not 0 <= ch < n:
            raise FeaturevisError(f"channel {ch} out of range: {layer} has channels 0..{n - 1}")
        if position:
            (x, y), (map_h, map_w) = position[0], shape[-2:]
            if not (0 <= x < map_w and 0 <= y < map_h):
                raise FeaturevisError(
                    f"neuron position @{x},{y} is outside {layer}'s map at {size} px: "
                    f"x 0..{map_w - 1}, y 0..{map_h - 1}"
                )
    bind_grids(model, objective, (h, w))


def bind_grids(model: FeatureModel, objective: Objective, size: int | tuple[int, int]) -> None:
    """Tell the objective's neurons the size of their layers' maps at ``size`` px, the maps
    their ``@x,y`` positions refer to (transforms then resize what the model sees)."""
    h, w = (size, size) if isinstance(size, int) else size
    for grid in objective.grids:
        shape = model.layer_shape(grid.layer, h)
        if len(shape) != 3:
            raise FeaturevisError(f"{grid.layer} has no positions (shape {shape}): a neuron needs a spatial map")
        grid.hw = (shape[1], shape[2] if w == h else model.layer_shape(grid.layer, w)[2])


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA (the frozen model runs about twice as fast; objectives read
    float32 copies of its activations); nothing on the CPU, where bfloat16 is slower."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def activations(model: FeatureModel, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
    """``model``'s activations of ``x`` at ``layers`` under :func:`autocast`, as float32."""
    layers = set(layers)
    if not layers:
        return {}
    with autocast(x.device):
        acts = model(x, layers)
    return {k: v.float() for k, v in acts.items()}


class Gradient:
    """How :func:`optimize` evaluates the objective and gets its gradient: by default one forward
    and backward of the whole batch.

    A recipe that needs another way (DeepDream's tiles, which bound memory for any photo size:
    :class:`~featurevis.core.tiling.TiledGradient`) passes a subclass, and keeps everything the
    loop does around it: NaN handling, Ctrl-C, snapshots, schedules, progress.
    """

    def __call__(
        self,
        model: FeatureModel,
        objective: Objective,
        x: torch.Tensor,
        given: dict[str, torch.Tensor],
        *,
        backward: bool = True,
    ) -> torch.Tensor:
        """The objective (one value per image) of ``x``, the transformed images.

        ``given`` is what the objective reads besides the model's activations: the
        untransformed images under ``"input"`` and the parameterization's extras (see
        :meth:`Parameterization.images_and_extras`). With ``backward``, the gradient of ``-values.sum()``
        (the loss the loop minimizes) is propagated back through ``x`` to the parameters.
        """
        values = self.evaluate(model, objective, x, given)
        if backward:
            (-values.sum()).backward()
        return values

    def evaluate(
        self, model: FeatureModel, objective: Objective, x: torch.Tensor, given: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """The objective's values on ``x``, still attached to the graph."""
        return objective({**activations(model, x, objective.layers - given.keys()), **given})

    def models(self, model: FeatureModel) -> list[FeatureModel]:
        """The networks a step runs (whose ReLUs a redirected start applies to)."""
        return [model]


class Ensemble(Gradient):
    """One objective per network, summed: an image that every member reads as the target.

    A render that only one network has to believe can exploit that network's quirks; asking
    several at once keeps what they agree on (Olah et al. 2017 on transfer). Each member's
    objective is its own parse of the target, so class indices, layers and neuron grids are
    checked against that member.
    """

    def __init__(self, members: Sequence[tuple[FeatureModel, Objective]]):
        if not members:
            raise FeaturevisError("an ensemble needs at least one model")
        self.members = list(members)

    def evaluate(
        self, model: FeatureModel, objective: Objective, x: torch.Tensor, given: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        return sum(Gradient.evaluate(self, member, obj, x, given) for member, obj in self.members)

    def models(self, model: FeatureModel) -> list[FeatureModel]:
        return [member for member, _ in self.members]


def optimize(
    model: FeatureModel,
    objective: Objective,
    param: Parameterization,
    *,
    steps: int,
    lr: float = 0.05,
    transforms: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    generator: torch.Generator,
    optimizer: Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer] | None = None,
    snapshots: Sequence[int] = (),
    progress: bool = True,
    description: str = "render",
    after_step: Callable[[Parameterization], None] | None = None,
    schedule: str = "constant",
    gradient: Gradient | None = None,
    redirect_relu: int = 0,
    skip_gradient: float = 1.0,
    stochastic_depth: float = 0.0,
    smooth_relu: float = 0.0,
    average: float = 0.0,
) -> RenderResult:
    """Maximize ``objective`` over ``param``'s output; Ctrl-C or a NaN stops early, keeping
    the last good images.

    Each step draws the images (and the parameterization's extras, which the objective finds
    among the activations under their names), transforms them, lets ``gradient`` (default: a
    :class:`Gradient`, one pass over the batch) evaluate and backpropagate the objective, and
    steps the optimizer (default Adam at ``lr``). For the first ``redirect_relu`` steps the
    model's ReLU modules pass redirected gradients (:mod:`~.redirect`), so units that start off
    still move the image. With ``skip_gradient`` < 1 every residual branch passes that share of
    its gradient throughout, and with ``stochastic_depth`` > 0 every step drops residual branches at
    random (stochastic depth, up to that rate at the last block): :mod:`~.residual`. With
    ``smooth_relu`` > 0 the ReLU modules after the first backpropagate through a sigmoid gate of
    that temperature throughout (:mod:`~.smooth_relu`). A network without blocks or modules
    that allow a rewrite asked for is an error, before any step. With ``average`` > 0 the
    snapshots and the result are drawn from an exponential moving average of the parameters
    with that decay (:class:`IterateAverage`), not from the last step. The final evaluation runs
    the whole network.
    """
    device = model.device
    param = param.to(device)
    if any(grid.hw is None for grid in objective.grids):  # not validated: positions refer to this size
        bind_grids(model, objective, param.size)
    transforms = transforms or T.none()
    opt = optimizer(param.parameters()) if optimizer else Adam(param.parameters(), lr=check_lr(lr))
    for group in opt.param_groups:
        check_lr(group["lr"])
    sched = _scheduler(opt, schedule, steps)
    gradient = gradient or Gradient()
    history: list[torch.Tensor] = []
    shots: dict[int, torch.Tensor] = {}
    want_shots = set(snapshots)
    interrupted = False
    start = time.perf_counter()
    # Only what the optimizer changes is snapshotted: frozen machinery inside a parameterization
    # (a DGN generator, a photo) never changes, and copying it every few steps cost ~224 MB.
    trainable = [p for p in param.parameters() if p.requires_grad]
    last_good = _snapshot(trainable)
    mean = IterateAverage(trainable, average) if average else None
    rewrites = contextlib.ExitStack()  # residual rewrites that hold for every step
    try:
        for net in gradient.models(model):
            rewrites.enter_context(residual.rewritten(net.net, net.name, skip_gradient, stochastic_depth))
            if smooth_relu and not rewrites.enter_context(smooth_relus(net.net, smooth_relu)):
                raise FeaturevisError(
                    f"{net.name} has no ReLU modules past the first whose gradient featurevis can smooth "
                    "(functional ReLUs, GELUs and SiLUs cannot be): use a smooth ReLU of 0"
                )
    except FeaturevisError:
        rewrites.close()
        raise
    bar = tqdm(range(steps), desc=description, disable=not progress, leave=False, dynamic_ncols=True)
    redirect = contextlib.ExitStack()
    if redirect_relu > 0:
        for net in gradient.models(model):
            redirect.enter_context(redirected_relus(net.net))
    try:
        for step in bar:
            if step == redirect_relu:
                redirect.close()
            opt.zero_grad(set_to_none=True)
            img, extras = param.images_and_extras()
            values = gradient(model, objective, transforms(img, generator), {**extras, INPUT: img})
            del img, extras  # not needed for the step, which may want the memory (a huge dream)
            if not torch.isfinite(values).all():
                if step == 0:  # the start itself: no good image to keep
                    raise FeaturevisError(_not_finite(objective, values))
                total = values.detach().sum().item()
                tqdm.write(f"featurevis: objective became {total} at step {step}; keeping the last good image")
                _restore(trainable, last_good)
                break
            if step % 8 == 0 and _finite(trainable):  # they just gave a finite objective: a true "last good"
                last_good = _snapshot(trainable)
            opt.step()
            param.constrain()
            if sched is not None:
                sched.step()
            if mean is not None:
                mean.update()
            if after_step is not None:
                after_step(param)
            history.append(values.detach().cpu())
            if step % 8 == 0:
                bar.set_postfix(objective=f"{values.mean().item():.3g}", refresh=False)
            if step + 1 in want_shots:
                with torch.no_grad(), mean.drawn() if mean is not None else contextlib.nullcontext():
                    shots[step + 1] = param().detach().cpu()
    except KeyboardInterrupt:
        interrupted = True
        tqdm.write("featurevis: interrupted; returning the images so far")
    finally:
        redirect.close()
        rewrites.close()
        bar.close()
    opt.zero_grad(set_to_none=True)  # spent: the final evaluation may want the memory
    if mean is not None:
        mean.keep()
    with torch.no_grad():
        final, extras = param.images_and_extras()
        if not torch.isfinite(final).all():
            _restore(trainable, last_good)
            final, extras = param.images_and_extras()
        del last_good
        values = gradient(model, objective, final, {**extras, INPUT: final}, backward=False).detach().cpu()
    if not torch.isfinite(final).all():  # not even the starting images: nothing to keep
        raise FeaturevisError(f"the images {objective.name} was optimized on are not finite from the start")
    return RenderResult(
        images=final.float().cpu(),
        history=torch.stack(history) if history else torch.zeros(0, final.shape[0]),
        objective=objective.name,
        values=values,
        snapshots=shots,
        interrupted=interrupted,
        seconds=time.perf_counter() - start,
        param=param,
    )


class IterateAverage:
    """An exponential moving average of parameters over the steps (Polyak averaging), bias
    corrected, so a ``k``-step render's average is the same whatever the total.

    Why: at a constant learning rate the last step still carries that step's random transform,
    dropped branches and noise; the average keeps what the steps agree on. It lifts lite0's
    class renders as lite1 and lite2 judge them, most of all blurred and half-size
    (``benchmarks/RESULTS.md``, "Time to quality"). A step whose parameters are not finite is
    left out of it.
    """

    def __init__(self, params: Sequence[torch.Tensor], decay: float):
        self.decay = check_average(decay)
        self.params = list(params)
        self.sums = [torch.zeros_like(p, dtype=torch.float32) for p in self.params]
        self.weight = 0.0  # sum of the weights given so far: 1 - decay ** n after n steps

    @torch.no_grad()
    def update(self) -> None:
        if not _finite(self.params):
            return
        for s, p in zip(self.sums, self.params, strict=True):
            s.mul_(self.decay).add_(p.detach().float(), alpha=1 - self.decay)
        self.weight = self.weight * self.decay + (1 - self.decay)

    @torch.no_grad()
    def keep(self) -> None:
        """Set the parameters to the average (nothing when no step was averaged)."""
        if self.weight:
            for p, s in zip(self.params, self.sums, strict=True):
                p.copy_(s / self.weight)

    @contextlib.contextmanager
    def drawn(self) -> Iterator[None]:
        """The parameters set to the average within the block, and back after."""
        now = _snapshot(self.params)
        self.keep()
        try:
            yield
        finally:
            _restore(self.params, now)


def check_average(decay: float) -> float:
    if not 0 <= decay < 1:
        raise FeaturevisError(f"an iterate average's decay is in [0, 1) (0: no average), not {decay}")
    return float(decay)


def _not_finite(objective: Objective, values: torch.Tensor) -> str:
    shown = ", ".join(f"{v:.3g}" for v in values.detach().flatten().tolist()[:4])
    return (
        f"the objective {objective.name} is not a finite number ({shown}) for the starting images: "
        "check its weights and inputs"
    )


def check_lr(lr: float) -> float:
    """A learning rate must be a finite number >= 0 (``inf`` or ``nan`` turns every parameter
    into NaN on the first step; 0 leaves them as they are)."""
    try:
        value = float(lr)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise FeaturevisError(f"learning rate must be a finite number >= 0, not {lr!r}")
    return value


def _finite(params: Sequence[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in params)


def _snapshot(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [p.detach().clone() for p in params]


@torch.no_grad()
def _restore(params: Sequence[torch.Tensor], saved: Sequence[torch.Tensor]) -> None:
    for p, s in zip(params, saved, strict=True):
        p.copy_(s)


def _scheduler(opt: torch.optim.Optimizer, schedule: str, steps: int):
    """``constant``; ``cosine``: decay to 10 % so the last steps refine instead of wander;
    ``linear``: straight down to ~0 (DGN-AM's schedule)."""
    if schedule == "constant":
        return None
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=0.1 * opt.defaults["lr"])
    if schedule == "linear":
        return torch.optim.lr_scheduler.LinearLR(opt, 1.0, 1e-6, total_iters=max(steps - 1, 1))
    raise FeaturevisError(f"unknown schedule {schedule!r}: use constant, cosine or linear")


class Adam(torch.optim.Adam):
    """torch's Adam, stepping under ``no_grad`` itself instead of through torch's
    ``_use_grad_for_differentiable`` wrapper: that wrapper imports ``torch._dynamo`` (1.6-1.9 s
    here, most of a one-shot CLI run's fixed cost) for a graph break only a compiled step needs.
    The arithmetic is torch's own (a non-differentiable step is a no-grad step)."""

    step = torch.no_grad()(getattr(torch.optim.Adam.step, "__wrapped__", torch.optim.Adam.step))


class DirectionStep(torch.optim.Optimizer):
    """Steps of exactly ``lr`` along a normalized gradient direction, so the step does not depend
    on how steep the objective happens to be; subclasses say how the gradient is normalized."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float = 1.0, **defaults):
        super().__init__(params, {"lr": lr, **defaults})

    def direction(self, grad: torch.Tensor, group: dict) -> torch.Tensor:
        """The unit step for ``grad``, as a new tensor (the step scales it in place)."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(self.direction(p.grad, group).mul_(group["lr"]))  # the engine minimizes -objective


class NormalizedSGD(DirectionStep):
    """Each sample's gradient divided by its mean magnitude (DGN-AM, DeepDream)."""

    def direction(self, grad: torch.Tensor, group: dict) -> torch.Tensor:
        dims = tuple(range(1, grad.dim())) if grad.dim() > 1 else (0,)
        return grad / grad.abs().mean(dim=dims, keepdim=True).clamp_min(1e-12)
