"""Variants of the class-render recipe, judged by the fidelity protocol of ``quality.py``.

    python benchmarks/quality_variants.py VARIANT [--seed S] [--steps 384] [--shots 192,256,320,384]
        [--batch 5] [--threads 2] [--drop-seed N] [--per-class] [--first N] [--grid FILE.png]
    python benchmarks/quality_variants.py --list

Each variant changes one thing of the defaults (the objective, one transform, the views per
step, the parameterization, a coarse-to-fine schedule, the residual rewrites, the ReLU
gradients, the iterate average) and is judged at each snapshot step as ``quality.py --curve`` judges the defaults:
plain and degraded lite1/lite2, and the "quality" (the mean of the four mean p figures). It
prints one line per snapshot and, with ``--per-class``, each judge's p(target) per class.
``benchmarks/RESULTS.md`` ("Time to quality") keeps the figures of every variant tried toward
the fidelity goal, the ones that lost included.

``--drop-seed N`` draws the stochastic-depth drops from a stream of their own seeded ``N``, all
else as ``--seed`` fixes it: the spread it causes is how far apart two variants must be to
differ by more than the drops' luck.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from unittest import mock

import torch

import featurevis as fv
from featurevis import objectives as O
from featurevis import transforms as T
from featurevis.core import smooth_relu
from featurevis.core.engine import Adam
from featurevis.core.images import make_grid, save_image
from featurevis.core.objectives import LOGITS, Objective, _at
from featurevis.core.params.fourier import FourierImage, spectrum_scale
from featurevis.core.residual import branch_keep, drop_schedule, droppable_blocks, keep_branch, scale_gradient
from featurevis.core.visualize import visualize
from featurevis.zoo import efficientnet_lite
from quality import CLASSES, degrade, judged, quality, quantize, resize

JUDGES = ("efficientnet_lite1", "efficientnet_lite2")


class Flip:
    """A random horizontal flip per image (the judges were trained with flips)."""

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        m = (torch.rand(x.shape[0], generator=g) < 0.5).view(-1, 1, 1, 1).to(x)
        return m * x.flip(-1) + (1 - m) * x


class Views:
    """``k`` independently transformed views of every image in one pass (the objective sums them)."""

    def __init__(self, k: int, inner):
        self.k, self.inner = k, inner

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return self.inner(x.repeat(self.k, 1, 1, 1), g)


class CoarseToFine:
    """For the first ``share`` of ``steps`` calls the network sees the image at 0.45-0.65 of its
    side, then the standard set (one call per step, so counting calls counts steps)."""

    def __init__(self, steps: int, share: float = 0.5, scale=(0.45, 0.65)):
        self.coarse, self.fine = standard_with(scale=scale), T.standard(224)
        self.until, self.calls = share * steps, 0

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        self.calls += 1
        return (self.coarse if self.calls <= self.until else self.fine)(x, g)


class DepthRamp:
    """The standard set, and a stochastic-depth rate that rises from ``start`` to ``end`` over
    ``steps`` calls (one per step): the class forms under light drops, then must hold under heavy
    ones."""

    def __init__(self, net: torch.nn.Module, steps: int, start: float = 0.1, end: float = 0.4):
        self.blocks, self.inner = droppable_blocks(net), T.standard(224)
        self.steps, self.start, self.end, self.calls = steps, start, end, 0

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        rate = self.start + (self.end - self.start) * min(self.calls / max(self.steps - 1, 1), 1.0)
        for b, r in zip(self.blocks, drop_schedule(len(self.blocks), rate), strict=True):
            b.branch_drop = r
        self.calls += 1
        return self.inner(x, g)


class Admix:
    """The standard set, then each view gets ``eta`` of another image of the batch added, as a
    constant (Wang et al. 2021's Admix): the class must be read through another class's evidence."""

    def __init__(self, eta: float = 0.2):
        self.eta, self.inner = eta, T.standard(224)

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        v = self.inner(x, g)
        return v + self.eta * v.roll(1, 0).detach() if v.shape[0] > 1 else v


class Cutout:
    """With probability ``p``, each image loses a random rectangle of ``area`` of its surface to
    a flat random colour (random erasing, Zhong et al. 2020: the class must be told from what is
    left, so its evidence spreads over the frame instead of resting on one patch)."""

    def __init__(self, p: float = 0.5, area=(0.05, 0.25)):
        self.p, self.area = p, area

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        hit = torch.rand(b, generator=g) < self.p
        a = self.area[0] + (self.area[1] - self.area[0]) * torch.rand(b, generator=g)
        aspect = torch.exp((torch.rand(b, generator=g) - 0.5) * 2 * 0.69)  # 0.5-2
        rh = (a * h * w * aspect).sqrt().clamp(max=h).round().long()
        rw = (a * h * w / aspect).sqrt().clamp(max=w).round().long()
        top = (torch.rand(b, generator=g) * (h - rh + 1)).long()
        left = (torch.rand(b, generator=g) * (w - rw + 1)).long()
        fill = torch.rand(b, c, 1, 1, generator=g).to(x)
        ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        box = (
            hit.view(b, 1, 1)
            & (ys >= top.view(b, 1, 1)) & (ys < (top + rh).view(b, 1, 1))
            & (xs >= left.view(b, 1, 1)) & (xs < (left + rw).view(b, 1, 1))
        )  # fmt: skip
        m = box.unsqueeze(1).to(x)
        return m * fill + (1 - m) * x


class ColourJitter:
    """Per image, a random contrast (``1 +- contrast``) about its mean and a random brightness
    shift (``+- brightness``): colour alone stops being the class's cheapest evidence."""

    def __init__(self, contrast: float = 0.2, brightness: float = 0.1):
        self.contrast, self.brightness = contrast, brightness

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b = x.shape[0]
        c = (1 + self.contrast * (2 * torch.rand(b, 1, 1, 1, generator=g) - 1)).to(x)
        s = (self.brightness * (2 * torch.rand(b, 1, 1, 1, generator=g) - 1)).to(x)
        mean = x.mean((1, 2, 3), keepdim=True)
        return (x - mean) * c + mean + s


def standard_with(
    *,
    flip: bool = False,
    resolution_p: float = 0.5,
    scale=(0.7, 1.2),
    noise: float | None = None,
    cutout: Cutout | None = None,
    colour: ColourJitter | None = None,
) -> T.Compose:
    """The standard set at 224 px with one of its knobs moved (``cutout`` and ``colour`` go after
    the affine, before the lower resolution)."""
    base = T.standard(224).transforms
    out = []
    for t in base:
        if isinstance(t, T.RandomResolution):
            out += [u for u in (cutout, colour) if u is not None]
            t = T.RandomResolution(t.factors, p=resolution_p, quantum=t.quantum)
        elif isinstance(t, T.RandomScale):
            t = T.RandomScale(scale, quantum=t.quantum)
        elif isinstance(t, T.Noise) and noise is not None:
            t = T.Noise(noise)
        out.append(t)
    return T.Compose(out + ([Flip()] if flip else []))


class _LinearBackClamp(torch.autograd.Function):
    """ReLU6 forward, identity backward (Guo et al. 2020's linear backpropagation)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.clamp(0, 6)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class LinearBackReLU6(torch.nn.ReLU6):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LinearBackClamp.apply(x) if torch.is_grad_enabled() else super().forward(x)


@contextlib.contextmanager
def linear_backprop(net: torch.nn.Module, first: int, head: bool = True) -> Iterator[None]:
    """The ReLU6 gradients of blocks ``first`` on (and of the head) pass straight through."""
    swaps = []
    for block in list(net._blocks)[first:]:
        for attr in ("_expand_act", "_depthwise_act"):
            if getattr(block, attr, None) is not None:
                swaps.append((block, attr))
    if head:
        swaps.append((net, "_head_act"))
    before = [getattr(m, a) for m, a in swaps]
    for m, a in swaps:
        setattr(m, a, LinearBackReLU6())
    try:
        yield
    finally:
        for (m, a), b in zip(swaps, before, strict=True):
            setattr(m, a, b)


@contextlib.contextmanager
def smooth_stem() -> Iterator[None]:
    """The smooth gradient on every ReLU module, the stem's too (the library keeps the first true)."""
    every = smooth_relu.relu_modules
    with mock.patch.object(smooth_relu, "relu_modules", lambda net: [(None, 0.0), *every(net)]):
        yield


@contextlib.contextmanager
def head_dropout(net: torch.nn.Module, rate: float) -> Iterator[None]:
    """Dropout of ``rate`` on the pooled features during the steps, as EfficientNet-Lite was trained
    (a free ensemble of heads; the final, gradient-free evaluation sees them all)."""
    pool = net._avg_pooling
    plain = pool.forward
    with mock.patch.object(
        pool, "forward", lambda x: torch.nn.functional.dropout(plain(x), rate, training=torch.is_grad_enabled())
    ):
        yield


@contextlib.contextmanager
def skip_erosion(delta: float) -> Iterator[None]:
    """Each pass, each image's identity path through a residual block is scaled by a random factor
    in ``1 +- delta`` (Li et al. 2020's skip erosion, the other half of their ghost networks)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.skip:
            return self.branch(x)
        keep = branch_keep(x, self.branch_drop)
        h = keep_branch(self.branch(x), keep, self.branch_drop)
        lam = 1 + delta * (2 * torch.rand(x.shape[0], 1, 1, 1) - 1)
        return scale_gradient(h, self.branch_gradient) + lam.to(x) * x

    with mock.patch.object(efficientnet_lite.MBConvBlock, "forward", forward):
        yield


def logit(c: int, i: int) -> Objective:
    return O.class_logit(c, batch=i)


def logit_plus_logp(c: int, i: int) -> Objective:
    return O.class_logit(c, batch=i) + O.class_log_prob(c, batch=i)


def margin_log_odds(kappa: float):
    """log sigmoid(log-odds - kappa): the log-odds' gradient, weighted by how far a view still is
    from a margin ``kappa``; views already past it (p > sigmoid(kappa)) stop pulling, so the steps
    go to the views, and images, where the class is still weak."""

    def one(c: int, i: int) -> Objective:
        lo = O.class_log_odds(c)
        return Objective(
            lambda acts: _at(torch.nn.functional.logsigmoid(lo(acts) - kappa), i),
            lo.layers, f"margin{kappa:g}:{c}@{i}", lo.checks,
        )  # fmt: skip

    return one


def log_odds(c: int, i: int) -> Objective:
    """What ``render`` maximizes for ``class:N``: log(p / (1 - p))."""
    return O.class_log_odds(c, batch=i)


#: name -> (what changes, options for the render of a batch); ``views`` > 1 sums that many views.
VARIANTS: dict[str, tuple[str, dict]] = {
    "defaults": (
        "render's defaults (a class render: the log-odds, skip gradient 0.5, stochastic depth 0.2, "
        "smooth ReLU gradients at temperature 3, iterate average 0.97, Adam 0.1)",
        {},
    ),
    "true-relu": (
        "the ReLUs' true gradient (the defaults before the smooth gradient, which the variants up to "
        "soft-backprop-3 in RESULTS.md were judged against)",
        {"smooth_relu": 0.0},
    ),
    "true-gradient": (
        "the whole network and its true gradient, the last step's images (skip gradient 1, no stochastic "
        "depth, true ReLU gradients, no average): the defaults before the rewrites",
        {"skip_gradient": 1.0, "stochastic_depth": 0.0, "smooth_relu": 0.0, "average": 0.0},
    ),
    "last-step": ("the last step's images, not the iterate average (the defaults before it)", {"average": 0.0}),
    "skip-gradient-0.3": ("residual branches pass 0.3 of their gradient, not 0.5", {"skip_gradient": 0.3}),
    "skip-gradient-0.7": ("residual branches pass 0.7 of their gradient, not 0.5", {"skip_gradient": 0.7}),
    "stochastic-depth-0.1": ("residual branches dropped at up to 0.1, not 0.2", {"stochastic_depth": 0.1}),
    "stochastic-depth-0.3": ("residual branches dropped at up to 0.3, not 0.2", {"stochastic_depth": 0.3}),
    "stochastic-depth-0.4": ("residual branches dropped at up to 0.4, not 0.2", {"stochastic_depth": 0.4}),
    "logit": ("objective: the class logit, not its log-odds (the objective before)", {"objective": logit}),
    "logit+logp": ("objective: logit + log-softmax (a margin over the other classes)", {"objective": logit_plus_logp}),
    "resolution-0.8": (
        "lower resolution on 80 % of the steps, not 50 %",
        {"transforms": standard_with(resolution_p=0.8)},
    ),
    "scale-0.9-1.3": (
        "final random scale 0.9-1.3 (the judges see 240-260 px)",
        {"transforms": standard_with(scale=(0.9, 1.3))},
    ),
    "scale-0.6-1.1": (
        "final random scale 0.6-1.1, not 0.7-1.2 (smaller views: the network's input is a fifth cheaper)",
        {"transforms": standard_with(scale=(0.6, 1.1))},
    ),
    "noise-0.08": ("pixel noise of std 0.08, not 0.03", {"transforms": standard_with(noise=0.08)}),
    "flip": ("a random horizontal flip per image", {"transforms": standard_with(flip=True)}),
    "two-views": (
        "two transformed views per image per step, each pulled by its log-odds",
        {"views": 2},
    ),
    "tv-30": ("minus 30 x total variation of the image (less fine speckle)", {"penalty": 30 * O.total_variation()}),
    "tv-100": ("minus 100 x total variation of the image", {"penalty": 100 * O.total_variation()}),
    "margin-12": (
        "objective: log sigmoid(log-odds - 12), views past p = 0.999994 stop pulling",
        {"objective": margin_log_odds(12.0)},
    ),
    "margin-8": ("objective: log sigmoid(log-odds - 8)", {"objective": margin_log_odds(8.0)}),
    "cutout": (
        "random erasing: half the views lose 5-25 % of the frame to a flat colour",
        {"transforms": standard_with(cutout=Cutout())},
    ),
    "cutout-strong": (
        "random erasing on 3 views of 4, 10-35 % of the frame",
        {"transforms": standard_with(cutout=Cutout(p=0.75, area=(0.1, 0.35)))},
    ),
    "cutout-light": (
        "random erasing on a quarter of the views, 5-20 % of the frame",
        {"transforms": standard_with(cutout=Cutout(p=0.25, area=(0.05, 0.2)))},
    ),
    "colour-jitter": (
        "per-view random contrast 0.8-1.2 and brightness +-0.1",
        {"transforms": standard_with(colour=ColourJitter())},
    ),
    "decay-1.5": (
        "Fourier spectrum 1/f^1.5, not 1/f (same overall scale: more of each step in coarse shapes)",
        {"decay_power": 1.5},
    ),
    "decay-0.8": ("Fourier spectrum 1/f^0.8, not 1/f (same overall scale: more fine detail)", {"decay_power": 0.8}),
    "maco": ("MACO parameterization (magnitude fixed, phase optimized)", {"param": "maco"}),
    "coarse-to-fine": ("the first half of the steps at 0.45-0.65 of the side", {"coarse_to_fine": True}),
    "linear-backprop-8": (
        "ReLU6 gradients pass straight through from block 8 on and in the head",
        {"linear_backprop": 8, "smooth_relu": 0.0},
    ),
    "linear-backprop-12": (
        "ReLU6 gradients pass straight through from block 12 on and in the head",
        {"linear_backprop": 12, "smooth_relu": 0.0},
    ),
    "linear-backprop-head": (
        "the head's ReLU6 gradient passes straight through (LinBP; deeper, the gradient explodes)",
        {"linear_backprop": 16, "smooth_relu": 0.0},
    ),
    "average-0.9": ("an iterate average of decay 0.9, not 0.97 (about the last 10 steps)", {"average": 0.9}),
    "average-0.99": ("an iterate average of decay 0.99, not 0.97 (about the last 100 steps)", {"average": 0.99}),
    "lr-0.05": ("learning rate 0.05, not 0.1 (the rate before)", {"lr": 0.05}),
    "lr-0.15": ("learning rate 0.15, not 0.1", {"lr": 0.15}),
    "lr-0.07": ("learning rate 0.07, not 0.1", {"lr": 0.07}),
    "cosine": ("the learning rate decays to 10 % on a cosine, not constant", {"schedule": "cosine"}),
    "head-dropout-0.2": (
        "dropout 0.2 on the pooled features during the steps (lite0's training rate)",
        {"head_dropout": 0.2},
    ),
    "head-dropout-0.4": ("dropout 0.4 on the pooled features during the steps", {"head_dropout": 0.4}),
    "skip-erosion-0.2": (
        "each image's identity path through a residual block scaled by a random 0.8-1.2 per pass",
        {"skip_erosion": 0.2},
    ),
    "depth-ramp": (
        "stochastic depth rising from 0.1 to 0.4 over the steps, not 0.2 throughout",
        {"depth_ramp": (0.1, 0.4)},
    ),
    "admix-0.2": ("each view plus 0.2 of another image's view of the batch (a constant)", {"transforms": Admix(0.2)}),
    "adam-beta2-0.99": (
        "Adam's second moment over about the last 100 steps (beta2 0.99), not 1000",
        {"optimizer": lambda ps: Adam(ps, lr=0.1, betas=(0.9, 0.99))},
    ),
    "adam-beta1-0.8": (
        "Adam's momentum over about the last 5 steps (beta1 0.8), not 10",
        {"optimizer": lambda ps: Adam(ps, lr=0.1, betas=(0.8, 0.999))},
    ),
    "smooth-relu-1": (
        "smooth ReLU gradients at temperature 1, not 3 (soft-backprop-1 in RESULTS.md)",
        {"smooth_relu": 1.0},
    ),
    "smooth-stem": (
        "the smooth gradient on the stem's ReLU6 too (the library keeps the first ReLU's true gradient)",
        {"smooth_stem": True},
    ),
    "smooth-relu-2": ("smooth ReLU gradients at temperature 2, not 3", {"smooth_relu": 2.0}),
    "smooth-relu-5": ("smooth ReLU gradients at temperature 5, not 3", {"smooth_relu": 5.0}),
    "ensemble-3": (
        "random erasing, head dropout 0.2 and stochastic depth 0.3 at once (each alone lifted the worst class "
        "on most seeds)",
        {"transforms": standard_with(cutout=Cutout()), "head_dropout": 0.2, "stochastic_depth": 0.3},
    ),
}


def views_log_odds(z: torch.Tensor, idx: torch.Tensor, n: int) -> torch.Tensor:
    """Per image, the sum over its views of the log-odds of its class (``z``: views x n rows of
    logits, view-major, as ``Views`` stacks them)."""
    z = z.float().view(-1, n, z.shape[-1])
    target = z[:, torch.arange(n), idx]
    rest = z.scatter(-1, idx.view(1, n, 1).expand(z.shape[0], n, 1), float("-inf"))
    return (target - rest.logsumexp(-1)).sum(0)


def fourier_with_decay(n: int, power: float, seed: int) -> tuple[FourierImage, torch.Generator]:
    """A 224-px Fourier batch with spectrum 1/f^power, rescaled to the 1/f scale's RMS (so Adam's
    rate moves the image as far), drawn from the stream ``visualize`` would seed."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    p = FourierImage(n, 224, decay_power=power, generator=g)
    ref = spectrum_scale(224, 224, 1.0)
    p.scale.mul_(ref.square().mean().sqrt() / (p.scale * 4).square().mean().sqrt())
    return p, g


def render_variant(
    lite0: fv.FeatureModel, name: str, seed: int, steps: int, shots: list[int], batch: int, classes=CLASSES
):
    """``classes`` rendered with variant ``name``: {step: images}, seconds per image."""
    _, opts = VARIANTS[name]
    views = opts.get("views", 1)
    one = opts.get("objective", log_odds)
    images: dict[int, list[torch.Tensor]] = {k: [] for k in shots}
    t0 = time.perf_counter()
    for start in range(0, len(classes), batch):
        chunk = classes[start : start + batch]
        n = len(chunk)
        if views > 1:  # the final, untransformed evaluation sees n images, the steps k*n
            idx = torch.tensor(chunk)
            obj = Objective(
                lambda acts, idx=idx, n=n: views_log_odds(acts[LOGITS], idx, n),
                frozenset({LOGITS}),
                f"{views} views",
                tuple((LOGITS, c) for c in chunk),
            )
            tf = Views(views, T.standard(224))
        else:
            obj = sum(one(c, i) for i, c in enumerate(chunk))
            if "penalty" in opts:
                obj = obj - opts["penalty"]
            if opts.get("coarse_to_fine"):
                tf = CoarseToFine(steps)
            elif "depth_ramp" in opts:
                tf = DepthRamp(lite0.net, steps, *opts["depth_ramp"])
            else:
                tf = opts.get("transforms", "auto")
        lin, drop, erosion = opts.get("linear_backprop"), opts.get("head_dropout"), opts.get("skip_erosion")
        with (
            linear_backprop(lite0.net, lin) if lin is not None else contextlib.nullcontext(),
            head_dropout(lite0.net, drop) if drop else contextlib.nullcontext(),
            skip_erosion(erosion) if erosion else contextlib.nullcontext(),
            smooth_stem() if opts.get("smooth_stem") else contextlib.nullcontext(),
        ):
            param, g = opts.get("param", "fourier"), None
            if "decay_power" in opts:
                param, g = fourier_with_decay(n, opts["decay_power"], seed)
            r = visualize(
                lite0, obj, batch=n, size=224, steps=steps, seed=seed, param=param, generator=g,
                transforms=tf, snapshots=shots, check=False, progress=False,
                skip_gradient=opts.get("skip_gradient"), stochastic_depth=opts.get("stochastic_depth"),
                smooth_relu=opts.get("smooth_relu"),
                lr=opts.get("lr"), average=opts.get("average"), schedule=opts.get("schedule", "constant"),
                optimizer=opts.get("optimizer"),
            )  # fmt: skip
        for k in shots:
            images[k].append(r.snapshots.get(k, r.images))
    return {k: torch.cat(v) for k, v in images.items()}, (time.perf_counter() - t0) / len(classes)


@contextlib.contextmanager
def drops_from(seed: int | None) -> Iterator[None]:
    """EfficientNet-Lite's branch drops drawn from their own generator seeded ``seed`` (None: as usual)."""
    if seed is None:
        yield
        return
    g = torch.Generator().manual_seed(seed)
    drops = 0

    def own(x: torch.Tensor, rate: float) -> torch.Tensor | None:
        nonlocal drops
        if rate == 0.0:
            return None
        drops += 1
        with torch.random.fork_rng():
            torch.set_rng_state(g.get_state())
            keep = branch_keep(x, rate)
            g.set_state(torch.get_rng_state())
        return keep

    with mock.patch.object(efficientnet_lite, "branch_keep", own):
        yield
    if not drops:  # a figure labelled with a drop seed that no drop used would be a wrong answer
        raise SystemExit("--drop-seed: no stochastic-depth drop ran (the variant has none, or the zoo changed)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variant", nargs="?", choices=list(VARIANTS))
    ap.add_argument("--list", action="store_true", help="name and describe every variant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=384)
    ap.add_argument("--shots", default="", help="comma-separated snapshot steps (default: --steps)")
    ap.add_argument("--batch", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-class", action="store_true", help="print every judge's p(target) per class")
    ap.add_argument("--drop-seed", type=int, help="stochastic-depth drops from their own stream, seeded so")
    ap.add_argument(
        "--first", type=int, help="only the first N classes (a quick screen: the first batch holds the toy poodle)"
    )
    ap.add_argument("--grid", help="save the last snapshot's images as one PNG grid here (to look at)")
    args = ap.parse_args()
    if args.list or not args.variant:
        for name, (what, _) in VARIANTS.items():
            print(f"{name:16s} {what}")
        return
    torch.set_num_threads(args.threads)
    shots = sorted({int(s) for s in args.shots.split(",") if s} | {args.steps})
    lite0 = fv.load_model("efficientnet_lite0")
    views = VARIANTS[args.variant][1].get("views", 1)
    classes = CLASSES[: args.first] if args.first else CLASSES
    with drops_from(args.drop_seed):
        images, per_image = render_variant(lite0, args.variant, args.seed, args.steps, shots, args.batch, classes)
    if args.grid:
        save_image(make_grid(quantize(images[shots[-1]]), ncols=10), args.grid)
    judges = {name: fv.load_model(name) for name in JUDGES}
    target = torch.tensor(classes)
    label = f"{args.variant} seed {args.seed}" + ("" if args.drop_seed is None else f" drops {args.drop_seed}")
    label += f" (first {len(classes)} classes)" if args.first else ""
    for k in shots:
        rep = judged(lite0, judges, images[k], classes)
        l1, l2 = rep[JUDGES[0]], rep[JUDGES[1]]
        d1, d2 = rep[JUDGES[0] + " degraded"], rep[JUDGES[1] + " degraded"]
        print(
            f"{label} @{k} steps{f' x {views} views' if views > 1 else ''}: "
            f"{per_image * k / shots[-1]:.1f} s/image | plain mean p {l1['mean_p']:.3f} / {l2['mean_p']:.3f}, "
            f"min {min(l1['min_p'], l2['min_p']):.2f} | degraded top-1 {d1['top1']:.0%} / {d2['top1']:.0%}, "
            f"mean p {d1['mean_p']:.3f} / {d2['mean_p']:.3f} | quality {quality(rep):.3f}",
            flush=True,
        )
        if args.per_class:
            q = quantize(images[k])
            for name, m in judges.items():
                for kind, x in (("plain", q), ("degraded", degrade(q))):
                    probs = m.predict(resize(x, m.input_size))
                    p = probs[torch.arange(len(classes)), target]
                    rivals = [
                        f"{c}->{int(probs[i].argmax())} ({m.class_name(int(probs[i].argmax()))}) "
                        f"{float(probs[i].max()):.2f}"
                        for i, c in enumerate(classes)
                        if int(probs[i].argmax()) != c
                    ]
                    print(
                        f"  {name} {kind:8s} "
                        + " ".join(f"{v:.2f}" for v in p.tolist())
                        + (f"  | top-1 elsewhere: {'; '.join(rivals)}" if rivals else "")
                    )


if __name__ == "__main__":
    main()
