"""A catalog of every channel of chosen layers: visualization, diversity set, negative image and
the dataset examples that excite it most, stored for browsing (``featurevis serve``).

Work is cut into *shards* (one layer, up to ``batch`` channels). One shard is a few batched
optimizations through :func:`featurevis.core.engine.optimize`: image ``i`` of the batch maximizes
channel ``i`` (``objectives.channels``), so many channels share every step. A shard is a pure
function of (model, settings, layer, channels): its seed is derived from the settings hash and
its position, so it gives the same images in-process, in a Ray task, or after a resume.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import io
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core import objectives as O
from ..core.engine import RenderResult, resolve_device
from ..core.errors import FeaturevisError
from ..core.images import for_channels, to_pil
from ..core.model import FeatureModel
from ..core.photos import named_folder, named_sample_photos
from ..core.visualize import visualize
from ..zoo import ALIASES, ZOO, as_model, load_model
from ..zoo.hub import RANDOM, is_hub_name
from .store import CatalogStore, ChannelRecord

#: Seconds a Ray cluster address has to accept a connection before the build is refused.
RAY_CONNECT_TIMEOUT = 5.0

#: scikit-image's bundled photos, the dataset when no ``--images`` folder is given.
SAMPLE_NAMES = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "brick",
    "grass",
    "gravel",
    "camera",
    "coins",
    "moon",
    "page",
    "text",
    "clock",
)


# -- settings ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CatalogSettings:
    """Everything that changes the images; their hash (:attr:`key`) names a run."""

    model: str
    size: int = 128
    steps: int = 256
    lr: float = 0.05
    seed: int = 0
    batch: int = 16  # channels per shard
    diversity: int = 3  # images per channel in the diversity set (0: none)
    diversity_weight: float = 10.0  # visibly different images, activations ~15 % below the best
    negative: bool = True
    top_k: int = 6
    dataset_size: int = 224
    dataset: str = "samples"  # a digest of the dataset images
    weights: str | None = None  # a zoo model's checkpoint file (absolute path), when not the default

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def shard_seed(self, layer: str, first: int) -> int:
        digest = hashlib.sha256(f"{self.key}:{layer}:{first}".encode()).digest()
        return int.from_bytes(digest[:4], "little")


def validate_settings(s: CatalogSettings) -> None:
    for name in ("size", "steps", "batch", "top_k", "dataset_size"):
        if getattr(s, name) < 1:
            raise FeaturevisError(f"{name} must be positive, got {getattr(s, name)}")
    if s.diversity < 0 or s.diversity == 1:
        raise FeaturevisError(f"diversity is a number of images per channel: 0 (none) or at least 2, got {s.diversity}")
    if not s.lr > 0:
        raise FeaturevisError(f"lr must be positive, got {s.lr}")


# -- models by name or spec ----------------------------------------------------------------------
def load_model_spec(spec: str, weights: str | os.PathLike | None = None) -> FeatureModel:
    """A zoo name (``lite0``), ``timm:NAME`` or ``clip:ARCH[:TAG]`` (each with an optional
    checkpoint file ``weights``), or ``module:factory`` / ``path/to/file.py:factory`` for your own model.

    Why a string: Ray workers and resumed builds rebuild the same model from it. The factory is
    called without arguments and returns a ``FeatureModel`` or any ``nn.Module``.
    """
    if ALIASES.get(spec, spec) in ZOO or ":" not in spec or is_hub_name(spec):
        return load_model(spec, weights)
    if weights is not None:
        raise FeaturevisError("weights apply to zoo models; a factory loads its own")
    where, _, attr = spec.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where).resolve()
            if not path.is_file():
                raise FeaturevisError(f"{where}: no such model file")
            name = "featurevis_user_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:10]
            module = sys.modules.get(name)
            if module is None:
                mspec = importlib.util.spec_from_file_location(name, path)
                module = importlib.util.module_from_spec(mspec)
                sys.modules[name] = module
                mspec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ImportError as e:
        raise FeaturevisError(f"cannot import {where!r} for model {spec!r} ({e})") from None
    factory = getattr(module, attr, None)
    if factory is None:
        raise FeaturevisError(f"{where!r} has no {attr!r} (model spec {spec!r})")
    model = factory() if callable(factory) and not isinstance(factory, torch.nn.Module) else factory
    fm = as_model(model)
    if not isinstance(model, FeatureModel):
        fm.name = spec
    return fm


def normalize_spec(spec: str) -> str:
    """One spelling per model (``lite0`` -> ``efficientnet_lite0``; a file path made absolute), so
    the settings hash, and thus resume, does not depend on how it was typed or where from."""
    spec = ALIASES.get(spec, spec)
    where, sep, attr = spec.rpartition(":")
    if sep and where.endswith(".py"):
        return f"{Path(where).resolve()}:{attr}"
    return spec


def catalog_layers(model: FeatureModel, layers: str | Sequence[str], size: int) -> list[tuple[str, int, tuple]]:
    """(name, channels, shape) for ``"all"`` (every top-level block with a C×H×W map) or a list."""
    infos = model.layers(size)
    if isinstance(layers, str):
        if layers == "all":
            chosen = [
                i.name
                for i in infos
                if i.spatial and i.shape[1] * i.shape[2] > 1 and i.kind != "Identity" and i.name.count(".") <= 1
            ]
            # keep only the outermost modules: a block, not also its children
            names = [n for n in chosen if not any(n != o and n.startswith(o + ".") for o in chosen)]
        else:
            names = [n.strip() for n in layers.split(",") if n.strip()]
    else:
        names = list(layers)
    if not names:
        raise FeaturevisError("no layers given; e.g. --layers _blocks.4,_blocks.8 or --layers all")
    out = []
    for name in names:
        shape = model.layer_shape(name, size)
        if len(shape) != 3:
            raise FeaturevisError(f"layer {name!r} has output shape {shape}; a catalog needs C×H×W feature maps")
        out.append((name, shape[0], shape))
    return out


# -- dataset -----------------------------------------------------------------------------------
def load_dataset(folder: str | os.PathLike | None, side: int) -> tuple[list[str], torch.Tensor]:
    """Names and an N×3×side×side batch (short side resized, centre square) of the dataset."""
    images = named_sample_photos(SAMPLE_NAMES) if folder is None else named_folder(folder)
    if not images:
        raise FeaturevisError("the dataset is empty")
    return [n for n, _ in images], torch.cat([_square(t, side) for _, t in images])


def _square(img: torch.Tensor, side: int) -> torch.Tensor:
    h, w = img.shape[-2:]
    s = side / min(h, w)
    nh, nw = max(side, round(h * s)), max(side, round(w * s))
    img = F.interpolate(img, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    y, x = (nh - side) // 2, (nw - side) // 2
    return img[..., y : y + side, x : x + side].clamp(0, 1)


def dataset_digest(names: Sequence[str], images: torch.Tensor) -> str:
    h = hashlib.sha256(json.dumps(list(names)).encode())
    h.update((images * 255).round().to(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


# -- one shard ---------------------------------------------------------------------------------
@dataclass
class ChannelResult:
    """A rendered channel before storage: PNG bytes and figures."""

    layer: str
    channel: int
    vis: bytes
    activation: float
    diversity: list[bytes] = field(default_factory=list)
    diversity_activations: list[float] = field(default_factory=list)
    negative: bytes | None = None
    negative_activation: float | None = None
    dataset_max: float | None = None
    examples: list[dict] = field(default_factory=list)  # kind, rank, image, value, box, png (crops)
    extra: dict = field(default_factory=dict)  # further figures for the unit's page (an atom's cosines)


@dataclass
class ShardResult:
    layer: str
    channels: list[int]
    seed: int
    seconds: float
    results: list[ChannelResult]


def _png(img: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    to_pil(img).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def render_objective(
    model: FeatureModel,
    objective: O.Objective,
    n: int,
    s: CatalogSettings,
    seed: int,
    on_step: Callable[[], None] | None = None,
) -> RenderResult:
    """``n`` images optimized for ``objective`` exactly as a catalog renders them: the Fourier
    parameterization, the standard transforms, the settings' size, steps and lr, everything seeded
    by ``seed``. The explorer's on-demand renders call it too, so they follow the same recipe as
    the catalog's images beside them. ``on_step`` is called after every step (progress). Raises
    ``KeyboardInterrupt`` when the loop was interrupted: a partial result must never be stored as
    if it were finished."""
    result = visualize(
        model,
        objective,
        batch=n,
        size=s.size,
        steps=s.steps,
        lr=s.lr,
        seed=seed,
        redirect_relu=0,
        progress=False,
        after_step=(lambda _p: on_step()) if on_step else None,
        check=False,
    )
    if result.interrupted:
        raise KeyboardInterrupt
    return result


def shard_steps(s: CatalogSettings) -> int:
    """Optimization steps one shard runs (for progress reports)."""
    return s.steps * (1 + (s.diversity > 0) + s.negative)


class LayerStats:
    """Per-unit summaries of the dataset's maps (N×C×h×w, given in chunks of images): mean, max
    and min per image, and where the max and min are (top and bottom examples). Channels of a
    layer and atoms of a factorization (their weight maps) are summarized alike, so their
    dataset examples are chosen the same way."""

    def __init__(self, maps: Iterable[torch.Tensor]):
        means, maxes, where, mins, where_min = [], [], [], [], []
        for a in maps:
            flat = a.flatten(2)
            means.append(flat.mean(2))
            m, idx = flat.max(2)
            maxes.append(m)
            where.append(idx)
            m, idx = flat.min(2)
            mins.append(m)
            where_min.append(idx)
            self.hw = tuple(a.shape[-2:])
        self.mean = torch.cat(means)  # N×C
        self.max = torch.cat(maxes)  # N×C
        self.argmax = torch.cat(where)  # N×C (flat index into h×w)
        self.min = torch.cat(mins)  # N×C: the least-activating position of each image (bottom examples)
        self.argmin = torch.cat(where_min)

    @classmethod
    def of_layer(cls, model: FeatureModel, layer: str, images: torch.Tensor) -> LayerStats:
        def maps() -> Iterator[torch.Tensor]:
            with torch.no_grad():
                for chunk in images.split(8):
                    yield model(chunk.to(model.device), [layer])[layer].float().cpu()

        return cls(maps())


_MODELS: dict[tuple[str, str | None], FeatureModel] = {}
_STATS: dict[tuple[str, str], LayerStats] = {}


def _examples(stats: LayerStats, images: torch.Tensor, ch: int, k: int) -> tuple[float, list[dict]]:
    """Top-k whole images (by mean activation) and top-k crops around each image's peak."""
    k = min(k, images.shape[0])
    out: list[dict] = []
    for rank, i in enumerate(stats.mean[:, ch].argsort(descending=True)[:k].tolist()):
        out.append(dict(kind="image", rank=rank, image=i, value=float(stats.mean[i, ch]), box=None))
    for rank, i in enumerate(stats.max[:, ch].argsort(descending=True)[:k].tolist()):
        out.append(_crop(stats, images, "crop", rank, i, int(stats.argmax[i, ch]), float(stats.max[i, ch])))
    return float(stats.max[:, ch].max()), out


def bottom_examples(stats: LayerStats, images: torch.Tensor, ch: int, k: int) -> list[dict]:
    """The ``k`` least-activating crops (kind ``bottom``): around each image's lowest position,
    from the images whose lowest is lowest. The 2AFC score (:mod:`.scores`) asks whether a
    visualization tells these from the top crops, as Zimmermann et al. (2024) ask people."""
    k = min(k, images.shape[0])
    order = stats.min[:, ch].argsort()[:k].tolist()
    return [
        _crop(stats, images, "bottom", rank, i, int(stats.argmin[i, ch]), float(stats.min[i, ch]))
        for rank, i in enumerate(order)
    ]


def _crop(stats: LayerStats, images: torch.Tensor, kind: str, rank: int, i: int, where: int, value: float) -> dict:
    """A 96 px crop of image ``i`` around the layer's cell ``where`` (a flat index), about three
    cells wide, as an example row with its PNG."""
    side = images.shape[-1]
    h, w = stats.hw
    crop = max(side // 4, min(side, round(3 * side / max(h, w))))
    y, x = divmod(where, w)
    cy, cx = (y + 0.5) * side / h, (x + 0.5) * side / w
    top = int(min(max(cy - crop / 2, 0), side - crop))
    left = int(min(max(cx - crop / 2, 0), side - crop))
    patch = images[i : i + 1, :, top : top + crop, left : left + crop]
    patch = F.interpolate(patch, size=(96, 96), mode="bilinear", antialias=True, align_corners=False)
    return dict(kind=kind, rank=rank, image=i, value=value, box=[left, top, crop, crop], png=_png(patch[0]))


def render_shard(
    model: FeatureModel,
    s: CatalogSettings,
    layer: str,
    chs: Sequence[int],
    images: torch.Tensor | None = None,
    on_step: Callable[[], None] | None = None,
) -> ShardResult:
    """Render channels ``chs`` of ``layer``: visualization, diversity set, negative, examples."""
    chs = list(chs)
    start = time.perf_counter()
    seed = s.shard_seed(layer, chs[0])
    vis = render_objective(model, O.channels(layer, chs), len(chs), s, seed, on_step)
    results = [
        ChannelResult(layer, c, _png(img), float(v)) for c, img, v in zip(chs, vis.images, vis.values, strict=True)
    ]
    if s.diversity:
        n = s.diversity
        obj = O.channels(layer, [c for c in chs for _ in range(n)]) + s.diversity_weight * O.diversity(layer, group=n)
        div = render_objective(model, obj, len(chs) * n, s, seed + 1, on_step)
        with torch.no_grad():
            acts = model(div.images.to(model.device), [layer])[layer].float().cpu()
        for j, r in enumerate(results):
            for q in range(j * n, (j + 1) * n):
                r.diversity.append(_png(div.images[q]))
                r.diversity_activations.append(float(acts[q, r.channel].mean()))
    if s.negative:
        neg = render_objective(model, -O.channels(layer, chs), len(chs), s, seed + 2, on_step)
        for r, img, v in zip(results, neg.images, neg.values, strict=True):
            r.negative, r.negative_activation = _png(img), -float(v)
    if images is not None:
        key = (s.key, layer)
        if key not in _STATS:
            _STATS.clear()
            _STATS[key] = LayerStats.of_layer(model, layer, images)
        for r in results:
            r.dataset_max, r.examples = _examples(_STATS[key], images, r.channel, s.top_k)
    return ShardResult(layer, chs, seed, time.perf_counter() - start, results)


def _shard_task(s_dict: dict, layer: str, chs: list[int], images: torch.Tensor | None) -> ShardResult:
    """A Ray task: one thread, the model rebuilt (once per worker) from the settings' spec."""
    torch.set_num_threads(1)
    s = CatalogSettings(**s_dict)
    model = _MODELS.get((s.model, s.weights))
    if model is None:
        _MODELS.clear()
        model = _MODELS[(s.model, s.weights)] = load_model_spec(s.model, s.weights)
    device = "cuda" if torch.cuda.is_available() and _ray_gpu_ids() else "cpu"
    model.to(device)
    return render_shard(model, s, layer, chs, images)


def _ray_gpu_ids() -> list:
    try:
        import ray

        return ray.get_gpu_ids()
    except Exception:
        return []


# -- the build ---------------------------------------------------------------------------------
@dataclass
class BuildReport:
    folder: Path
    run: str
    channels: int  # rendered now
    skipped: int  # already done before
    seconds: float

    @property
    def per_minute(self) -> float:
        return 60 * self.channels / self.seconds if self.seconds else 0.0


def plan_shards(s: CatalogSettings, layers: Sequence[tuple[str, int, tuple]]) -> list[tuple[str, list[int]]]:
    """Every shard of the build, in order; fixed by the settings (so a resume redoes the same)."""
    return [(name, list(range(i, min(i + s.batch, n)))) for name, n, _ in layers for i in range(0, n, s.batch)]


def _store_shard(store: CatalogStore, run: str, shard: ShardResult) -> None:
    """Files first (each atomic), then the rows in one transaction."""
    records = []
    for r in shard.results:
        base = f"{run}/{_safe(r.layer)}/{r.channel}"
        store.write_file(f"{base}/vis.png", r.vis)
        div_files = []
        for q, png in enumerate(r.diversity):
            store.write_file(f"{base}/div{q}.png", png)
            div_files.append(f"{base}/div{q}.png")
        neg_file = None
        if r.negative is not None:
            neg_file = f"{base}/neg.png"
            store.write_file(neg_file, r.negative)
        examples = []
        for ex in r.examples:
            ex = dict(ex)
            png = ex.pop("png", None)
            if png is not None:
                ex["file"] = f"{base}/{ex['kind']}{ex['rank']}.png"
                store.write_file(ex["file"], png)
            else:
                ex["file"] = f"{run}/dataset/{ex['image']}.jpg"
            examples.append(ex)
        figures = dict(
            activation=r.activation,
            diversity_activations=r.diversity_activations,
            negative_activation=r.negative_activation,
            dataset_max=r.dataset_max,
            seed=shard.seed,
            shard_seconds=round(shard.seconds, 3),
            shard_channels=len(shard.channels),
            **r.extra,
        )
        records.append(
            ChannelRecord(
                layer=r.layer,
                channel=r.channel,
                vis=f"{base}/vis.png",
                negative=neg_file,
                diversity=div_files,
                activation=r.activation,
                negative_activation=r.negative_activation,
                dataset_max=r.dataset_max,
                seed=shard.seed,
                seconds=shard.seconds / len(shard.channels),
                figures=figures,
                examples=examples,
            )
        )
    store.add_channels(run, records)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def build_catalog(
    model: str,
    out: str | os.PathLike,
    *,
    weights: str | os.PathLike | None = None,
    layers: str | Sequence[str] = "all",
    images: str | os.PathLike | None = None,
    size: int = 128,
    steps: int = 256,
    batch: int = 16,
    diversity: int = 3,
    negative: bool = True,
    top_k: int = 6,
    seed: int = 0,
    lr: float = 0.05,
    device: str | None = None,
    ray: str | None = None,
    ray_num_cpus: int | None = None,
    progress: bool = True,
    scores: bool = True,
) -> BuildReport:
    """Build (or resume) a catalog of ``model``'s channels in folder ``out``.

    Args:
        model: a zoo name, ``timm:NAME``, ``clip:ARCH[:TAG]`` or ``module:factory`` / ``file.py:factory``
            (see :func:`load_model_spec`).
        weights: a named model's checkpoint file (default: the zoo's lookup: package, cache, download),
            or ``"random"`` for a timm/open_clip model's untrained weights.
        layers: ``"all"``, ``"a,b"`` or a list of layer names.
        images: a folder of dataset images (default: scikit-image's sample photos).
        batch: channels rendered together in one shard.
        diversity: images per channel in the diversity set (0: none).
        ray: run shards as Ray tasks: ``"local"`` starts a local cluster, else a cluster address.
        scores: score each channel once its shard is stored (:mod:`.scores`; in this process,
            also under Ray), and at the end every stored channel still without scores.
    Returns:
        A :class:`BuildReport`. Finished shards are committed as they complete, so an
        interrupted build resumes where it stopped; channels already done are skipped.
    """
    if ray is not None:
        _check_ray_address(ray)  # in seconds, before a model is loaded or a file written
    model = normalize_spec(model)
    if weights is not None:
        weights = RANDOM if str(weights) == RANDOM else str(Path(weights).resolve())
    fm = load_model_spec(model, weights)
    if ray is None:
        fm.to(resolve_device(device))
    s = CatalogSettings(
        model=model,
        size=size,
        steps=steps,
        lr=lr,
        seed=seed,
        batch=batch,
        diversity=diversity,
        negative=negative,
        top_k=top_k,
        weights=weights,
    )
    validate_settings(s)  # every user mistake fails here, before the dataset is read
    chosen = catalog_layers(fm, layers, size)
    names, data = load_dataset(images, s.dataset_size)
    data = for_channels(data, fm.channels, "the dataset")  # grey for a grayscale model, with a note
    s = replace(s, dataset=dataset_digest(names, data))
    run = s.key
    with contextlib.ExitStack() as stack:
        if ray:
            stack.enter_context(_ray_session(ray, ray_num_cpus))
        store = stack.enter_context(CatalogStore(out))
        open_run(store, run, fm.name, s, names, data)
        store.add_layers(run, chosen)
        todo, skipped = [], 0
        for layer, chs in plan_shards(s, chosen):
            if set(chs) <= store.done_channels(run, layer):
                skipped += len(chs)
            else:
                todo.append((layer, chs))
        total = sum(len(c) for _, c in todo)
        start = time.perf_counter()
        done = 0
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"catalog {fm.name}", unit="ch", disable=not progress, dynamic_ncols=True)
        scorer = None
        if scores:
            from .scores import CatalogScorer, similarity_model

            scorer = CatalogScorer(store, run, fm, data, similarity=similarity_model(device=fm.device), top_k=top_k)
        try:
            shards = _ray_shards(s, todo, data) if ray else (render_shard(fm, s, l, c, data) for l, c in todo)
            for shard in shards:
                _store_shard(store, run, shard)
                if scorer is not None:
                    for c in shard.channels:
                        scorer.score(shard.layer, c)
                done += len(shard.channels)
                bar.update(len(shard.channels))
            if scorer is not None:  # channels a build stopped before scoring
                have = store.scores(run)
                for row in store.all_channels(run):
                    if (row["layer"], row["channel"]) not in have:
                        scorer.score(row["layer"], row["channel"])
        finally:
            bar.close()
        store.sweep(run)
        return BuildReport(Path(out), run, done, skipped, time.perf_counter() - start)


def open_run(
    store: CatalogStore, run: str, model_name: str, s: CatalogSettings, names: Sequence[str], data: torch.Tensor
) -> None:
    """Start or resume ``run`` in ``store``: a killed build's temporary files swept, the run's
    row and its dataset images (files, then rows) written."""
    store.sweep(run)  # the temporary files of a build that was killed
    store.add_run(run, model_name, asdict(s))
    for i in range(len(names)):
        store.write_file(f"{run}/dataset/{i}.jpg", _jpeg(data[i]))
    store.add_dataset(run, [(i, n, f"{run}/dataset/{i}.jpg") for i, n in enumerate(names)])


def _jpeg(img: torch.Tensor) -> bytes:
    buf = io.BytesIO()
    to_pil(img).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _check_ray_address(address: str) -> None:
    """Refuse, in seconds, a Ray cluster address (``HOST:PORT`` or ``ray://HOST:PORT``) where
    nothing answers: ``ray.init`` would wait minutes on it. ``local`` and ``auto`` pass."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise FeaturevisError("--ray needs Ray: pip install 'featurevis[ray]'") from None
    if address in ("local", "auto"):
        return
    where = address.removeprefix("ray://")
    host, sep, port = where.rpartition(":")
    host = host.strip("[]")  # an IPv6 address in brackets
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FeaturevisError(f"Ray address {address!r} is not HOST:PORT (or ray://HOST:PORT, local, auto)")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT).close()
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise FeaturevisError(f"cannot reach Ray at {address!r} ({reason}); is the cluster running?") from None


@contextlib.contextmanager
def _ray_session(address: str, num_cpus: int | None) -> Iterator[None]:
    """Ray, connected (``local`` starts a cluster on this machine) for the length of a build, and
    shut down after it unless it was running before."""
    import ray

    if ray.is_initialized():
        yield
        return
    env = {"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}
    try:
        if address == "local":
            ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env=env, log_to_driver=False)
        else:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
    except Exception as e:  # connection refused, bad address...
        raise FeaturevisError(f"cannot start or reach Ray at {address!r}: {e}") from None
    try:
        yield
    finally:
        ray.shutdown()


def _ray_shards(s: CatalogSettings, todo: list[tuple[str, list[int]]], data: torch.Tensor) -> Iterator[ShardResult]:
    """Run shards as Ray tasks (one GPU each when the cluster has GPUs) and yield them as they
    finish; a task whose worker dies is retried by Ray, so no shard is lost."""
    import ray

    gpus = ray.cluster_resources().get("GPU", 0)
    task = ray.remote(_shard_task).options(num_cpus=1, num_gpus=1 if gpus else 0, max_retries=3, retry_exceptions=False)
    data_ref = ray.put(data)
    sd = asdict(s)
    pending = [task.remote(sd, layer, chs, data_ref) for layer, chs in todo]
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        try:
            yield ray.get(ready[0])
        except ray.exceptions.RayTaskError as e:
            cause = e.as_instanceof_cause()
            if isinstance(cause, FeaturevisError):
                raise FeaturevisError(str(cause).splitlines()[-1]) from None
            raise
