"""Train a generator prior for *your* model: invert one of its layers (Dosovitskiy & Brox 2016).

DGN-AM works best when the generator inverts the same kind of network that is inspected. This
trains an :class:`~featurevis.generator.UpconvGenerator` that maps layer ``L``'s activations of
a photo back to the photo, with an image loss plus a feature loss measured in the model's own
feature space (relative squared error at ``L`` and at a middle layer) and, optionally, an
adversarial term from a small discriminator. The per-unit clip bounds DGN-AM needs (3 standard
deviations of each unit over the same images) are recorded in the same file.

Training runs on the one loop, :func:`~featurevis.core.engine.optimize`, like fast-style
training: the generator is a parameterization that draws a new batch of photos each step and
hands them (with their codes and features) to the loss as extras; the discriminator's step
and the atomic checkpoints run in the ``after_step`` hook.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..core.engine import activations, optimize, resolve_device
from ..core.errors import FeaturevisError
from ..core.generators import FORMAT, Generator, UpconvGenerator, activation_bounds, load_generator, save_generator
from ..core.images import ImageLike
from ..core.losses import relative_error
from ..core.model import INPUT, FeatureModel
from ..core.objectives import Objective
from ..core.params import Parameterization
from ..core.photos import random_crops, training_photos
from ..zoo import as_model

#: Crops used to estimate the per-unit clip bounds, and fixed crops (never trained on, but from
#: the same photos) that measure progress.
BOUND_CROPS, EVAL_CROPS = 64, 8


def jitter_colors(x: torch.Tensor, g: torch.Generator, amount: float = 0.2) -> torch.Tensor:
    """Random per-image brightness, contrast and saturation changes of up to ``amount``."""
    n = len(x)

    def factor() -> torch.Tensor:
        return (1 + amount * (2 * torch.rand(n, 1, 1, 1, generator=g) - 1)).to(x)

    x = x * factor()
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * factor() + gray
    return x.clamp(0, 1)


def default_feature_layer(model: FeatureModel, size: int) -> str:
    """A top-level spatial layer about halfway through the network: parts, not pixels."""
    spatial = [i.name for i in model.layers(size) if len(i.shape) == 3 and i.name.count(".") <= 1]
    if not spatial:
        raise FeaturevisError("give --feature-layer: the model has no spatial layers to compare images in")
    return spatial[len(spatial) // 2]


class _Discriminator(nn.Module):
    """A small conv net scoring how photo-like an image is (the optional adversarial term)."""

    def __init__(self, width: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        c = 3
        for i in range(4):
            layers += [nn.Conv2d(c, width << i, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c = width << i
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1).squeeze(1)


#: Names of the extras a :class:`_GeneratorOnBatches` draw hands to the objective.
PHOTOS, CODES, TARGET = "photos", "codes", "target"


class _GeneratorOnBatches(Parameterization):
    """The generator applied to the codes of a fresh batch of training crops each call, so
    :func:`~featurevis.core.engine.optimize` trains its weights.

    :meth:`images_and_extras` returns the reconstructions with the crops, their codes (layer
    ``layer``) and their features (``feature_layer``) as extras, from the same draw, for the
    image and feature losses. The latest draw is also kept in :attr:`drawn`, for the
    discriminator's own step after each generator step.
    """

    def __init__(
        self,
        net: UpconvGenerator,
        encode: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
        photos: Sequence[torch.Tensor],
        batch: int,
        size: int,
        g: torch.Generator,
    ):
        super().__init__()
        self.net, self.encode, self.photos, self.g = net, encode, list(photos), g
        self.batch, self.size = batch, (size, size)
        self.drawn: tuple[torch.Tensor, torch.Tensor] | None = None

    def images_and_extras(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        dev = next(self.net.parameters()).device
        x = jitter_colors(random_crops(self.photos, self.batch, self.size[0], self.g), self.g).to(dev)
        with torch.no_grad():
            codes, target = self.encode(x)
        rec = self.net(codes)
        self.drawn = (x, rec.detach())
        return rec, {PHOTOS: x, CODES: codes, TARGET: target}

    def forward(self) -> torch.Tensor:
        return self.images_and_extras()[0]


def _inversion_loss(
    layer: str,
    feature_layer: str,
    batch: int,
    image_weight: float,
    feature_weight: float,
    adversarial: float,
    disc: nn.Module | None,
) -> Objective:
    """Minus the generator's loss per image: pixel MSE (x10), relative feature errors at the
    feature layer and at the code layer, and optionally the adversarial term. Each image's
    share is divided by the batch, so the engine's sum over the batch is the batch mean."""

    def fn(acts: dict[str, torch.Tensor]) -> torch.Tensor:
        rec, x = acts[INPUT], acts[PHOTOS]
        loss = image_weight * 10 * (rec - x).pow(2).flatten(1).mean(1)
        feat = relative_error(acts[feature_layer], acts[TARGET]) + relative_error(acts[layer], acts[CODES])
        loss = loss + feature_weight * feat
        if disc is not None:
            loss = loss + adversarial * F.softplus(-disc(rec))
        return -loss / batch

    return Objective(fn, frozenset({layer, feature_layer}), "inversion", ((layer, None), (feature_layer, None)))


def train_prior(
    model: str | torch.nn.Module | FeatureModel,
    layer: str,
    images: Sequence[ImageLike] | str | os.PathLike | None = None,
    *,
    out: str | os.PathLike,
    steps: int = 300,
    batch: int = 4,
    lr: float = 1e-3,
    width: int = 64,
    size: int | None = None,
    feature_layer: str | None = None,
    image_weight: float = 1.0,
    feature_weight: float = 1.0,
    adversarial: float = 0.0,
    n_std: float = 3.0,
    checkpoint_every: int = 50,
    resume: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> Generator:
    """Train (or, with ``resume``, continue training) a generator inverting ``layer``.

    ``out`` is both the checkpoint (written atomically every ``checkpoint_every`` steps, on
    Ctrl-C and at the end) and the finished generator for ``featurevis render --prior dgn``.
    Returns the generator; ``meta["eval"]`` lists ``(step, pixel MSE, feature error)`` on
    held-out crops. Training runs on :func:`~featurevis.core.engine.optimize`: the generator is
    a parameterization that draws a new batch each step; the discriminator's step and the
    checkpoints run in its ``after_step`` hook.
    """
    fm = as_model(model)
    dev = resolve_device(device)
    fm.to(dev)
    fm.check_layer(layer)
    size = size or fm.input_size
    out = Path(out)
    feature_layer = feature_layer or default_feature_layer(fm, size)
    fm.check_layer(feature_layer)
    code_shape = fm.layer_shape(layer, size)
    if not code_shape:
        raise FeaturevisError(f"layer {layer!r} has no tensor output to invert")
    photos = training_photos(images, 2 * size)

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = UpconvGenerator(code_shape, size, width).to(dev)
    disc = _Discriminator().to(dev) if adversarial > 0 else None
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999)) if disc else None
    eval_x = jitter_colors(random_crops(photos, EVAL_CROPS, size, torch.Generator().manual_seed(10_000)), g).to(dev)
    step, history, seconds, opt_state = 0, [], 0.0, None
    settings = dict(model=fm.name, layer=layer, feature_layer=feature_layer, size=size, width=width, batch=batch)
    settings.update(lr=lr, image_weight=image_weight, feature_weight=feature_weight, adversarial=adversarial)

    if resume and out.exists():
        state = _load_state(out)
        st = state["train"]
        was = st["settings"]
        if (was["model"], was["layer"]) != (fm.name, layer):
            raise FeaturevisError(f"{out} was trained on {was['model']} {was['layer']}, not {fm.name} {layer}")
        if was["width"] != width or was["size"] != size:
            raise FeaturevisError(f"{out} has width {was['width']} and size {was['size']}; pass those")
        net.load_state_dict(state["state_dict"])
        opt_state = st["optimizer"]
        if disc is not None and st.get("disc"):
            disc.load_state_dict(st["disc"])
            opt_d.load_state_dict(st["disc_optimizer"])
        g.set_state(st["rng"])
        step, history, seconds = st["step"], list(state["meta"]["eval"]), state["meta"]["seconds"]
        low, high = state["low"], state["high"]
    else:
        bound_x = jitter_colors(random_crops(photos, BOUND_CROPS, size, torch.Generator().manual_seed(20_000)), g)
        low, high = (b.reshape(code_shape) for b in activation_bounds(fm, layer, bound_x, n_std))

    def encode(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        acts = activations(fm, x, [layer, feature_layer])
        return acts[layer], acts[feature_layer]

    def evaluate() -> tuple[float, float]:
        net.eval()
        with torch.no_grad():
            codes, f_x = encode(eval_x)
            rec = net(codes)
            f_rec = activations(fm, rec, [feature_layer])[feature_layer]
            mse, feat = F.mse_loss(rec, eval_x).item(), relative_error(f_rec, f_x).mean().item()
        net.train()
        return mse, feat

    opt: list[torch.optim.Optimizer] = []  # the engine builds the generator's optimizer; kept for checkpoints

    def adam(params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        o = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))
        if opt_state is not None:
            o.load_state_dict(opt_state)
        opt.append(o)
        return o

    def save() -> None:
        gen = _as_generator(net, code_shape, (low, high), fm, layer, settings, history, seconds, step)
        train_state = {
            "step": step,
            "optimizer": opt[0].state_dict() if opt else opt_state,
            "disc": disc.state_dict() if disc else None,
            "disc_optimizer": opt_d.state_dict() if opt_d else None,
            "rng": g.get_state(),
            "settings": settings,
        }
        save_generator(gen, out, {"train": train_state})  # one atomic write: weights + resume state

    param = _GeneratorOnBatches(net, encode, photos, batch, size, g)
    t0 = time.perf_counter() - seconds

    def after_step(_: Parameterization) -> None:
        nonlocal step, seconds
        if disc is not None:
            x, rec = param.drawn
            d_loss = F.softplus(-disc(x)).mean() + F.softplus(disc(rec)).mean()
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
        step += 1
        if step % checkpoint_every == 0 or step == steps:
            seconds = time.perf_counter() - t0
            history.append((step, *evaluate()))
            save()

    if not history:
        history.append((0, *evaluate()))
    objective = _inversion_loss(layer, feature_layer, batch, image_weight, feature_weight, adversarial, disc)
    r = optimize(
        fm,
        objective,
        param,
        steps=max(steps - step, 0),
        generator=g,
        optimizer=adam,
        progress=progress,
        description="prior-train",
        after_step=after_step,
    )
    seconds = time.perf_counter() - t0
    if r.interrupted:
        tqdm.write("featurevis: interrupted; saving the checkpoint")
    if history[-1][0] != step:
        history.append((step, *evaluate()))
        save()
    if step < steps and not r.interrupted:  # the engine stopped at a NaN and restored the last good weights
        raise FeaturevisError(f"training diverged at step {step}; the last good weights are saved in {out}; lower --lr")
    gen = _as_generator(net, code_shape, (low, high), fm, layer, settings, history, seconds, step, freeze=True)
    gen.meta["interrupted"] = r.interrupted
    return gen


def _as_generator(net, code_shape, bounds, fm, layer, settings, history, seconds, step, freeze=False) -> Generator:
    meta = {**settings, "steps": step, "seconds": seconds, "eval": [list(h) for h in history]}
    return Generator(net, code_shape, low=bounds[0], high=bounds[1], encoder=(fm.name, layer), meta=meta, freeze=freeze)


def _load_state(path: Path) -> dict:
    load_generator(path)  # one-line errors for anything that is not a generator file
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT or "train" not in payload:
        raise FeaturevisError(f"{path}: has no training state to resume from")
    return payload
