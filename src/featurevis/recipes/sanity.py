"""Sanity checks of a visualization: does it depend on the trained weights, and does it survive
transforms it never saw?

*Cascading randomization* (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): re-initialize
the network's weights from the top (logits) down, in stages, and render the same unit with the
same seed after each stage. A method that shows what the network learned must change once the
weights that compute the unit are random; one that shows only the prior (the parameterization,
the transforms) would not. Layers above the unit cannot change it at all, so the first stage
(when the unit has layers above it) is a control that must give the same image. Each stage is
compared with the original by SSIM (pixels, scikit-image) and by the cosine of a fixed judge
network's features (the spatially pooled penultimate features of EfficientNet-Lite1, which is
not the network being checked unless you check lite1), and each image's activation of the
*original* unit is reported; a re-render of the original with another seed is the yardstick of
how similar two honest renders of one unit are.

*Transform robustness*: the objective of the finished image under replays of the random
transforms it was optimized with (their generator states are recorded), against fresh draws of
a reference transform set it never saw, and with no transforms. A ratio fresh / own near 1 says
the image excites the unit wherever it is shifted or scaled; a render that only works under its
own draws (or only unmoved, like an unregularized pixel render) scores a low ratio.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..core.errors import FeaturevisError
from ..core.images import make_grid
from ..core.model import FeatureModel
from ..core.objectives import Objective
from ..core.results import Result
from ..core.targets import parse_target
from ..core.transforms import resolve_transforms
from ..core.visualize import visualize
from ..zoo import as_model, load_model

#: The judge network and layer whose pooled features compare images (see the module docstring).
JUDGE_MODEL, JUDGE_LAYER = "efficientnet_lite1", "_head_act"
_JUDGES: dict[str, FeatureModel] = {}


def _objective(model: FeatureModel, target: str | Objective) -> Objective:
    return parse_target(model, target) if isinstance(target, str) else target


def _scores(model: FeatureModel, objective: Objective, images: torch.Tensor) -> torch.Tensor:
    """The objective's value on each of ``images`` (no transforms)."""
    with torch.no_grad():
        return objective(model(images.to(model.device), list(objective.layers))).float().cpu()


# -- cascading randomization -------------------------------------------------------------------
def weighted_modules(model: FeatureModel) -> list[str]:
    """Names of the modules that hold weights of their own, in the order the forward pass runs them."""
    order: list[str] = []
    hooks = []
    for name, m in model.net.named_modules():
        if any(True for _ in m.parameters(recurse=False)):
            hooks.append(m.register_forward_hook(lambda mod, inp, out, name=name: order.append(name)))
    try:
        with torch.no_grad():
            model.net(torch.zeros(1, 3, model.input_size, model.input_size, device=model.device))
    finally:
        for h in hooks:
            h.remove()
    seen: dict[str, None] = {}
    for n in order:
        seen.setdefault(n, None)
    return list(seen)


def randomization_stages(modules: Sequence[str], layers: Sequence[str], stages: int) -> list[int]:
    """Where each stage's randomization stops: stage ``i`` re-initializes ``modules[cut_i:]``.

    The first stage randomizes what lies above the unit's (deepest) layer, a control that cannot
    change the unit, when anything lies above; the next everything from that layer up; the later
    ones go evenly further down; the last randomizes every module."""
    first, above = 0, 0
    for layer in layers:
        if layer == "logits":
            first, above = max(first, len(modules) - 1), len(modules)
            continue
        inside = [i for i, n in enumerate(modules) if n == layer or n.startswith(layer + ".")]
        if not inside:
            raise FeaturevisError(
                f"{layer} holds no weights of its own, so no stage starts there; "
                "name a layer that does (a block, a conv)"
            )
        first, above = max(first, inside[0]), max(above, inside[-1] + 1)
    cuts = [above] if above < len(modules) else []
    cuts.append(first)
    rest = max(stages - len(cuts), 1)
    for j in range(1, rest + 1):
        c = round(first * (1 - j / rest))
        if c < cuts[-1]:
            cuts.append(c)
    return cuts


def _reinit(m: nn.Module) -> None:
    """A module's weights drawn again as at construction (its ``reset_parameters``), else normal."""
    if hasattr(m, "reset_parameters"):
        m.reset_parameters()
        return
    for p in m.parameters(recurse=False):
        if p.dim() > 1:
            nn.init.kaiming_uniform_(p, a=5**0.5)
        else:
            nn.init.zeros_(p)


@dataclass
class RandomizationResult(Result):
    """The row of images: the original, a re-render with another seed, then each stage."""

    images: torch.Tensor  # S×3×H×W
    labels: list[str]
    ssim: list[float]  # SSIM to the original image
    judge_cosine: list[float]  # cosine of the judge's pooled features to the original's
    activation: list[float]  # the ORIGINAL network's objective on each image
    judge: str = f"{JUDGE_MODEL} {JUDGE_LAYER}"
    image: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.image = make_grid(self.images, ncols=len(self.images))

    def table(self) -> str:
        """One line per image: label, SSIM, judge cosine, original-unit activation."""
        w = max(len(s) for s in self.labels)
        lines = [f"{'image':<{w}}  {'SSIM':>6}  {'judge cos':>9}  {'activation':>10}"]
        for row in zip(self.labels, self.ssim, self.judge_cosine, self.activation, strict=True):
            lines.append(f"{row[0]:<{w}}  {row[1]:6.3f}  {row[2]:9.3f}  {row[3]:10.3g}")
        return "\n".join(lines)


def _ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        raise FeaturevisError("the randomization check's SSIM needs scikit-image: pip install scikit-image") from None
    x, y = (t.permute(1, 2, 0).double().numpy() for t in (a, b))
    return float(structural_similarity(x, y, channel_axis=2, data_range=1.0))


def judge_features(images: torch.Tensor, judge: FeatureModel | None = None) -> torch.Tensor:
    """B×D: the judge network's pooled penultimate features of ``images`` (default judge: lite1)."""
    if judge is None:
        judge = _JUDGES.get(JUDGE_MODEL) or _JUDGES.setdefault(JUDGE_MODEL, load_model(JUDGE_MODEL))
    with torch.no_grad():
        a = judge(images.to(judge.device), [JUDGE_LAYER])[JUDGE_LAYER].float().cpu()
    return a.flatten(2).mean(2)


def randomization_check(
    model: FeatureModel | nn.Module | str,
    target: str | Objective,
    *,
    stages: int = 4,
    size: int = 128,
    steps: int = 256,
    seed: int = 0,
    judge: FeatureModel | None = None,
    progress: bool = True,
) -> RandomizationResult:
    """Render ``target`` on ``model``, then on copies whose weights are re-initialized from the
    logits down in ``stages`` cumulative stages (the user's model is never changed).

    Returns:
        A :class:`RandomizationResult` (its picture is the row of images); Ctrl-C ends early
        with the stages done so far.
    """
    start = time.perf_counter()
    fm = load_model(model) if isinstance(model, str) else as_model(model)
    if stages < 1:
        raise FeaturevisError(f"stages must be at least 1, not {stages}")
    objective = _objective(fm, target)
    layers = [n for n in objective.layers if n != "input"]
    if not layers:
        raise FeaturevisError("the target reads no layer of the network: nothing to randomize")
    modules = weighted_modules(fm)
    cuts = randomization_stages(modules, layers, stages)

    def render(net: FeatureModel, s: int, what: str) -> torch.Tensor:
        r = visualize(net, objective, size=size, steps=steps, seed=s, progress=progress, description=what)
        if r.interrupted:
            raise KeyboardInterrupt
        return r.images[:1]

    images, labels = [], []
    interrupted = False
    try:
        images.append(render(fm, seed, "original"))
        labels.append("original")
        images.append(render(fm, seed + 1, "other seed"))
        labels.append(f"original, seed {seed + 1}")
        net = copy.deepcopy(fm)  # never the user's model
        by_name = dict(net.net.named_modules())
        done = len(modules)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for cut in cuts:
                for name in modules[cut:done]:
                    _reinit(by_name[name])
                done = cut
                images.append(render(net, seed, f"random from {modules[cut]}"))
                labels.append(f"random down to {modules[cut]}")
    except KeyboardInterrupt:
        interrupted = True
    if not images:
        raise KeyboardInterrupt
    batch = torch.cat(images)
    feats = judge_features(batch, judge)
    cos = torch.nn.functional.cosine_similarity(feats, feats[:1], dim=1)
    return RandomizationResult(
        images=batch,
        labels=labels,
        ssim=[_ssim(batch[0], b) for b in batch],
        judge_cosine=cos.tolist(),
        activation=_scores(fm, objective, batch).tolist(),
        settings=dict(target=str(target), stages=stages, size=size, steps=steps, seed=seed, cuts=cuts),
        interrupted=interrupted,
        seconds=time.perf_counter() - start,
    )


# -- transform robustness ----------------------------------------------------------------------
class RecordedTransforms:
    """Transforms that remember the generator state before each draw, so any step's draw can be
    replayed exactly on another image."""

    def __init__(self, transforms: Callable[[torch.Tensor, torch.Generator], torch.Tensor]):
        self.transforms = transforms
        self.states: list[torch.Tensor] = []

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        self.states.append(g.get_state())
        return self.transforms(x, g)

    def replay(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        g = torch.Generator()
        g.set_state(state)
        return self.transforms(x, g)


@dataclass
class TransformCheckResult(Result):
    """A visualization's objective under its own transform draws, fresh draws, and none."""

    image: torch.Tensor  # 3×H×W
    own: list[float]  # the objective under replays of draws it was optimized with
    fresh: list[float]  # under fresh draws of the reference transforms
    untransformed: float

    @property
    def ratio(self) -> float:
        """Mean objective under fresh draws / under its own draws (near 1: robust)."""
        return _mean(self.fresh) / _mean(self.own) if _mean(self.own) else float("nan")

    @property
    def untransformed_ratio(self) -> float:
        return self.untransformed / _mean(self.own) if _mean(self.own) else float("nan")

    def summary(self) -> str:
        return (
            f"own draws {_mean(self.own):.4g} | fresh draws {_mean(self.fresh):.4g} | no transforms "
            f"{self.untransformed:.4g} | ratio fresh/own {self.ratio:.3f}"
        )


def _mean(v: Sequence[float]) -> float:
    return sum(v) / len(v) if v else 0.0


def transform_check(
    model: FeatureModel | nn.Module | str,
    target: str | Objective,
    *,
    param: str = "fourier",
    transforms: str | None = "auto",
    reference: str = "auto",
    draws: int = 32,
    size: int = 128,
    steps: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> TransformCheckResult:
    """Render ``target`` with ``param`` under ``transforms`` (``None``/``"none"``: none), then
    score the image under ``draws`` replays of its own last draws, ``draws`` fresh draws of the
    ``reference`` transforms (default: the standard set the model calls for), and unmoved."""
    start = time.perf_counter()
    fm = load_model(model) if isinstance(model, str) else as_model(model)
    if draws < 1:
        raise FeaturevisError(f"draws must be at least 1, not {draws}")
    objective = _objective(fm, target)
    recorded = RecordedTransforms(resolve_transforms(transforms, size, patch_px=fm.patch_px))
    ref = resolve_transforms(reference, size, patch_px=fm.patch_px)
    r = visualize(fm, objective, size=size, steps=steps, seed=seed, param=param, transforms=recorded, progress=progress)
    img = r.images[:1]
    own_states = recorded.states[-draws:]
    g = torch.Generator().manual_seed(seed + 7919)  # never the render's stream
    x = img.to(fm.device)
    with torch.no_grad():  # one draw at a time: a draw's output side may differ from the next's
        own = [float(_scores(fm, objective, recorded.replay(x, st))[0]) for st in own_states]
        fresh = [float(_scores(fm, objective, ref(x, g))[0]) for _ in range(draws)]
    return TransformCheckResult(
        image=img[0],
        own=own,
        fresh=fresh,
        untransformed=float(_scores(fm, objective, img)[0]),
        settings=dict(
            target=str(target),
            param=param,
            transforms=transforms,
            reference=reference,
            draws=draws,
            size=size,
            steps=steps,
            seed=seed,
        ),
        interrupted=r.interrupted,
        seconds=time.perf_counter() - start,
    )
