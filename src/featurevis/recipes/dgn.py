"""DGN-AM (Nguyen et al. 2016): maximize a unit through a generator, so the image looks learned.

Instead of pixels, the code ``h`` of a generator ``G`` is optimized and the model sees
``G(h)``. The published recipe, all of it through :func:`featurevis.optimize`:

- the code is a :class:`CodeImage` parameterization; after every step its ``constrain()``
  multiplies the code by ``decay`` (an L2 prior, 0.99) and clips each unit to ``[low, high]``
  (``[0, a]``: ``a`` is 3 standard deviations of the unit's activations on real images);
- :class:`~featurevis.render.NormalizedSGD` divides each gradient by its mean magnitude, with a
  linear learning-rate decay to zero;
- the code starts from noise or from a real image's code (encoded by the generator's encoder
  layer), and several restarts keep each image's best.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..core.engine import NormalizedSGD, RenderResult, optimize, resolve_device, validate
from ..core.errors import FeaturevisError
from ..core.generators import Generator, encode
from ..core.images import ImageLike, as_image
from ..core.model import FeatureModel
from ..core.objectives import Objective, as_objective
from ..core.params import CodeImage
from ..core.targets import parse_target
from ..core.transforms import resolve_transforms
from ..zoo import as_model, load_model

#: DGN-AM's defaults: 200 steps, code decay 0.99 per step; the learning rate is a fraction of
#: the generator's typical code range (so one value fits codes of any scale).
DGN_STEPS, DGN_DECAY, DGN_LR = 200, 0.99, 0.1


def encode_images(
    generator: Generator, images: Sequence[ImageLike] | ImageLike, encoder: tuple[FeatureModel, str] | None = None
) -> torch.Tensor:
    """Codes of real images by the generator's encoder (``(model, layer)``; default: the
    zoo model and layer recorded in the generator), clipped into its range. Images are
    resized to the side the generator was trained at (default: the model's input size)."""
    if encoder is None:
        if generator.encoder is None:
            raise FeaturevisError("this generator has no known encoder; pass encoder=(model, layer)")
        name, layer = generator.encoder
        encoder = (load_model(name), layer)
    model, layer = encoder
    items = images if isinstance(images, (list, tuple)) else [images]
    side = (int(generator.meta.get("size", model.input_size)),) * 2
    x = [F.interpolate(as_image(i, "start image"), size=side, mode="bilinear", antialias=True) for i in items]
    x = torch.cat(x)
    codes = encode(model, layer, x).reshape(len(x), *generator.code_shape)
    return torch.maximum(torch.minimum(codes, generator.high), generator.low)


def dgn(
    model: str | torch.nn.Module | FeatureModel,
    objective: Objective | str,
    generator: Generator,
    *,
    batch: int = 1,
    steps: int = DGN_STEPS,
    lr: float = DGN_LR,
    decay: float = DGN_DECAY,
    restarts: int = 1,
    init: Sequence[ImageLike] | ImageLike | torch.Tensor | None = None,
    encoder: tuple[FeatureModel, str] | None = None,
    size: int | None = None,
    transforms: str | Callable | None = "auto",
    schedule: str = "linear",
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> RenderResult:
    """Maximize ``objective`` over ``generator``'s codes (DGN-AM); returns the best of
    ``restarts`` runs per image.

    Args:
        lr: step size as a fraction of the generator's typical code range (``high - low``).
        decay: per-step multiplier of the code (L2 prior); 1 turns it off.
        init: start images (encoded; see :func:`encode_images`) or codes; default noise.
        size: side the model sees (default: the generator's own output side).
        transforms: ``"auto"`` (default: ``"standard"``, on lite0 its renders transfer to
            lite1/lite2 far better, ``benchmarks/RESULTS.md``; ``"patch"`` for a vision
            transformer), ``"none"`` (the paper's) or a callable.
    """
    if restarts < 1 or steps < 1:
        raise FeaturevisError("steps and restarts must be at least 1")
    fm = as_model(model)
    fm.require_rgb("DGN-AM (its generator)")
    dev = resolve_device(device)
    fm.to(dev)
    generator.to(dev)
    obj = parse_target(fm, objective) if isinstance(objective, str) else as_objective(objective)
    start_codes = None
    if init is not None:
        if isinstance(init, torch.Tensor) and init.shape[-len(generator.code_shape) :] == generator.code_shape:
            start_codes = init.float()
        else:
            start_codes = encode_images(generator, init, encoder)
        start_codes = start_codes.to(dev)
    t0 = time.perf_counter()
    best: RenderResult | None = None
    for r in range(restarts):
        g = torch.Generator().manual_seed(seed + r)
        torch.manual_seed(seed + r)
        p = CodeImage(generator, batch, init=start_codes, decay=decay, size=size, rng=g).to(dev)
        side = p.size[0]
        if r == 0:
            validate(fm, obj, side, batch)
        tf = resolve_transforms(transforms, side, patch_px=fm.patch_px)
        step_size = float(lr * generator.code_range)

        def sgd(params, step_size=step_size):
            return NormalizedSGD(params, lr=step_size)

        res = optimize(
            fm,
            obj,
            p,
            steps=steps,
            transforms=tf,
            generator=g,
            optimizer=sgd,
            progress=progress,
            description=f"dgn {r + 1}/{restarts}" if restarts > 1 else "dgn",
            schedule=schedule,
        )
        res.settings = {"codes": p.code.detach().cpu()}
        best = res if best is None else _keep_best(best, res)
        if res.interrupted:
            break
    assert best is not None
    best.seconds = time.perf_counter() - t0
    best.settings.update(
        model=fm.name,
        objective=obj.name,
        prior="dgn",
        steps=steps,
        lr=lr,
        decay=decay,
        restarts=restarts,
        seed=seed,
        schedule=schedule,
        transforms=transforms if isinstance(transforms, str) or transforms is None else repr(transforms),
    )
    return best


def _keep_best(a: RenderResult, b: RenderResult) -> RenderResult:
    """Per image, the result with the higher final objective."""
    take_b = b.values > a.values
    pick = take_b.view(-1, 1, 1, 1)
    hist = a.history
    if a.history.shape == b.history.shape:
        hist = torch.where(take_b[None], b.history, a.history)
    ca, cb = a.settings["codes"], b.settings["codes"]
    codes = torch.where(take_b.view(-1, *[1] * (ca.dim() - 1)), cb, ca)
    return RenderResult(
        images=torch.where(pick, b.images, a.images),
        history=hist,
        objective=a.objective,
        values=torch.where(take_b, b.values, a.values),
        settings={"codes": codes},
        interrupted=a.interrupted or b.interrupted,
    )
