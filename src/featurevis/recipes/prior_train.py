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
from ..core.memory import check_request
from ..core.model import INPUT, FeatureModel
from ..core.objectives import Objective
from ..core.params import NetOnPhotoBatches, Parameterization
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
    spatial = [i.name for i in model.layers(size) if i.spatial and i.name.count(".") <= 1]
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


class _GeneratorOnBatches(NetOnPhotoBatches):
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
        super().__init__(net, photos, batch, size, g)
        self.encode = encode
        self.drawn: tuple[torch.Tensor, torch.Tensor] | None = None

    def images_and_extras(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = jitter_colors(self.crops(), self.g)
        with torch.no_grad():
            codes, target = self.encode(x)
        rec = self.net(codes)
        self.drawn = (x, rec.detach())
        return rec, {PHOTOS: x, CODES: codes, TARGET: target}


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
    fm.require_rgb("prior-train (its generator)")
    dev = resolve_device(device)
    fm.to(dev)
    fm.check_layer(layer)
    size = size or fm.input_size
    check_request(fm, batch, size, size, what=f"training on {batch} crop(s) of {size} px", device=dev)
    feature_layer = feature_layer or default_feature_layer(fm, size)
    fm.check_layer(feature_layer)
    code_shape = fm.layer_shape(layer, size)
    if not code_shape:
        raise FeaturevisError(f"layer {layer!r} has no tensor output to invert")
    photos = training_photos(images, 2 * size)
    torch.manual_seed(seed)
    settings = dict(model=fm.name, layer=layer, feature_layer=feature_layer, size=size, width=width, batch=batch)
    settings.update(lr=lr, image_weight=image_weight, feature_weight=feature_weight, adversarial=adversarial)
    t = _Training(fm, layer, feature_layer, tuple(code_shape), settings, Path(out), photos, seed, adversarial > 0)
    if resume and t.out.exists():
        t.resume()
    else:
        t.measure_bounds(photos, n_std)
    if not t.history:
        t.history.append((0, *t.evaluate()))
    param = _GeneratorOnBatches(t.net, t.encode, photos, batch, size, t.g)
    objective = _inversion_loss(layer, feature_layer, batch, image_weight, feature_weight, adversarial, t.disc)

    def after_step(_: Parameterization) -> None:
        t.discriminator_step(*param.drawn)
        t.step += 1
        if t.step % checkpoint_every == 0 or t.step == steps:
            t.checkpoint()

    r = optimize(
        fm,
        objective,
        param,
        steps=max(steps - t.step, 0),
        generator=t.g,
        optimizer=t.optimizer,
        progress=progress,
        description="prior-train",
        after_step=after_step,
    )
    if r.interrupted:
        tqdm.write("featurevis: interrupted; saving the checkpoint")
    if t.history[-1][0] != t.step:
        t.checkpoint()
    if t.step < steps and not r.interrupted:  # the engine stopped at a NaN and restored the last good weights
        raise FeaturevisError(
            f"training diverged at step {t.step}; the last good weights are saved in {out}; lower --lr"
        )
    gen = t.generator(freeze=True)
    gen.meta["interrupted"] = r.interrupted
    return gen


class _Training:
    """What prior training keeps between steps and across resumes: the generator, the optional
    discriminator and their optimizers, the random state, the clip bounds and the eval history;
    with the checkpoint written as one atomic file (weights + everything a resume needs)."""

    def __init__(
        self,
        fm: FeatureModel,
        layer: str,
        feature_layer: str,
        code_shape: tuple[int, ...],
        settings: dict,
        out: Path,
        photos: Sequence[torch.Tensor],
        seed: int,
        adversarial: bool,
    ):
        dev, size, lr = fm.device, settings["size"], settings["lr"]
        self.fm, self.layer, self.feature_layer, self.code_shape = fm, layer, feature_layer, code_shape
        self.settings, self.out = settings, out
        self.g = torch.Generator().manual_seed(seed)
        self.net = UpconvGenerator(code_shape, size, settings["width"]).to(dev)
        self.disc = _Discriminator().to(dev) if adversarial else None
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=(0.5, 0.999)) if self.disc else None
        self.opt: torch.optim.Optimizer | None = None  # the engine builds it through optimizer()
        self.opt_state: dict | None = None
        crops = random_crops(photos, EVAL_CROPS, size, torch.Generator().manual_seed(10_000))
        self.eval_x = jitter_colors(crops, self.g).to(dev)
        self.step, self.history, self.seconds = 0, [], 0.0
        self.low = self.high = torch.zeros(0)
        self.t0 = time.perf_counter()

    def measure_bounds(self, photos: Sequence[torch.Tensor], n_std: float) -> None:
        crops = random_crops(photos, BOUND_CROPS, self.settings["size"], torch.Generator().manual_seed(20_000))
        bounds = activation_bounds(self.fm, self.layer, jitter_colors(crops, self.g), n_std)
        self.low, self.high = (b.reshape(self.code_shape) for b in bounds)

    def resume(self) -> None:
        state = _load_state(self.out)
        st, was = state["train"], state["train"]["settings"]
        if (was["model"], was["layer"]) != (self.fm.name, self.layer):
            raise FeaturevisError(
                f"{self.out} was trained on {was['model']} {was['layer']}, not {self.fm.name} {self.layer}"
            )
        if (was["width"], was["size"]) != (self.settings["width"], self.settings["size"]):
            raise FeaturevisError(f"{self.out} has width {was['width']} and size {was['size']}; pass those")
        self.net.load_state_dict(state["state_dict"])
        self.opt_state = st["optimizer"]
        if self.disc is not None and st.get("disc"):
            self.disc.load_state_dict(st["disc"])
            self.opt_d.load_state_dict(st["disc_optimizer"])
        self.g.set_state(st["rng"])
        self.step, self.history, self.seconds = st["step"], list(state["meta"]["eval"]), state["meta"]["seconds"]
        self.t0 = time.perf_counter() - self.seconds
        self.low, self.high = state["low"], state["high"]

    def optimizer(self, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        """The generator's Adam, resumed when there is a saved state; kept for the checkpoints."""
        self.opt = torch.optim.Adam(params, lr=self.settings["lr"], betas=(0.5, 0.999))
        if self.opt_state is not None:
            self.opt.load_state_dict(self.opt_state)
        return self.opt

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The codes (at the inverted layer) and features (at the feature layer) of photos."""
        acts = activations(self.fm, x, [self.layer, self.feature_layer])
        return acts[self.layer], acts[self.feature_layer]

    def evaluate(self) -> tuple[float, float]:
        """Pixel MSE and relative feature error of the held-out crops' reconstructions."""
        self.net.eval()
        with torch.no_grad():
            codes, f_x = self.encode(self.eval_x)
            rec = self.net(codes)
            f_rec = activations(self.fm, rec, [self.feature_layer])[self.feature_layer]
            mse, feat = F.mse_loss(rec, self.eval_x).item(), relative_error(f_rec, f_x).mean().item()
        self.net.train()
        return mse, feat

    def discriminator_step(self, photos: torch.Tensor, reconstructions: torch.Tensor) -> None:
        if self.disc is None:
            return
        loss = F.softplus(-self.disc(photos)).mean() + F.softplus(self.disc(reconstructions)).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()

    def generator(self, freeze: bool = False) -> Generator:
        return _as_generator(
            self.net, self.code_shape, (self.low, self.high), self.fm, self.layer, self.settings, self.history,
            self.seconds, self.step, freeze=freeze,
        )  # fmt: skip

    def checkpoint(self) -> None:
        """Evaluate, then write weights + resume state in one atomic write."""
        self.seconds = time.perf_counter() - self.t0
        self.history.append((self.step, *self.evaluate()))
        train_state = {
            "step": self.step,
            "optimizer": self.opt.state_dict() if self.opt else self.opt_state,
            "disc": self.disc.state_dict() if self.disc else None,
            "disc_optimizer": self.opt_d.state_dict() if self.opt_d else None,
            "rng": self.g.get_state(),
            "settings": self.settings,
        }
        save_generator(self.generator(), self.out, {"train": train_state})


def _as_generator(net, code_shape, bounds, fm, layer, settings, history, seconds, step, freeze=False) -> Generator:
    meta = {**settings, "steps": step, "seconds": seconds, "eval": [list(h) for h in history]}
    return Generator(net, code_shape, low=bounds[0], high=bounds[1], encoder=(fm.name, layer), meta=meta, freeze=freeze)


def _load_state(path: Path) -> dict:
    load_generator(path)  # one-line errors for anything that is not a generator file
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT or "train" not in payload:
        raise FeaturevisError(f"{path}: has no training state to resume from")
    return payload
