"""Evolved fooling images: patterns a network calls a class with high confidence, found with
no gradients at all (Nguyen, Yosinski & Clune 2015, "Deep neural networks are easily fooled").

Black box: the network is only asked for its softmax confidence (``torch.no_grad``). A
population of genomes is drawn, mutated and recombined; the fittest survive. Selection is
**MAP-Elites** over classes: the archive has one cell per target class, each keeping the
genomes with the highest confidence *for that class* seen so far, so one run evolves images for
several classes at once and a pattern that happens to suit another class is kept there too.
Each forward pass scores a batch of images (at most :data:`EVAL_BATCH`) against all classes.

Encodings:

- ``cppn`` (indirect): a genome is a small network from pixel coordinates to colour
  (:class:`featurevis.cppn.CPPNGenome`); offspring have weights perturbed, nodes inserted,
  connections added, activations swapped. The images are regular, geometric patterns, and the
  genome can be drawn again at any size.
- ``direct``: a genome is the image itself, stored at a lower resolution (``genome_size``²,
  default 32²) and upsampled bilinearly to the evaluation size; each value mutates with
  probability ``rate`` by Deb's polynomial mutation (bounded to [0, 1], as in Nguyen et al.),
  and crossover swaps a random rectangle. Storing 32² rather than 160² values makes the search
  space 25x smaller, yet it still gets less far than the CPPN on the same budget.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..core.engine import resolve_device
from ..core.errors import FeaturevisError
from ..core.images import atomic_write, make_grid, save_image
from ..core.model import LOGITS, FeatureModel
from ..core.params import cppn
from ..core.results import Result
from ..zoo import as_model

#: Side (px) the genomes are drawn at for the network: lite0 scores 160 px images 2.8x faster
#: than 224 px ones on a CPU. The confidence holds at this size: the network's response depends
#: on scale, and a CPPN champion drawn at 224 px keeps it only sometimes (benchmarks/RESULTS.md).
DEFAULT_SIZE = 160
DEFAULT_POPULATION = 64
DEFAULT_GENERATIONS = 150
ENCODINGS = ("cppn", "direct")
#: Most images made and scored at once: a population larger than this is drawn and scored in
#: pieces, so its memory stays bounded and Ctrl-C keeps every piece already scored.
EVAL_BATCH = 256


# -- encodings --------------------------------------------------------------------------------
class CPPNEncoding:
    """Genomes are :class:`~featurevis.cppn.CPPNGenome` networks (the indirect encoding)."""

    name = "cppn"

    def __init__(self, hidden: int = 5, rates: cppn.MutationRates | None = None) -> None:
        self.hidden = hidden
        self.rates = rates or cppn.MutationRates()
        self.innovations = cppn.Innovations()

    def random(self, rng: random.Random) -> cppn.CPPNGenome:
        return cppn.random_genome(rng, self.innovations, hidden=self.hidden)

    def mutate(self, g: cppn.CPPNGenome, rng: random.Random) -> cppn.CPPNGenome:
        return cppn.mutate(g, rng, self.innovations, self.rates)

    def crossover(self, a: cppn.CPPNGenome, b: cppn.CPPNGenome, rng: random.Random) -> cppn.CPPNGenome:
        return cppn.crossover(a, b, rng)

    def render(self, genomes: Sequence[cppn.CPPNGenome], size: int, device=None) -> torch.Tensor:
        return cppn.render_genomes(genomes, size, device)


class DirectEncoding:
    """Genomes are ``3×g×g`` images in [0, 1], upsampled to the evaluation size."""

    name = "direct"

    def __init__(self, genome_size: int = 32, rate: float = 0.1, eta: float = 15.0) -> None:
        if genome_size < 2:
            raise FeaturevisError(f"genome_size must be at least 2, got {genome_size}")
        if not 0 < rate <= 1:
            raise FeaturevisError(f"mutation rate must be in (0, 1], got {rate}")
        self.genome_size, self.rate, self.eta = genome_size, rate, eta

    @staticmethod
    def _gen(rng: random.Random) -> torch.Generator:
        return torch.Generator().manual_seed(rng.getrandbits(62))

    def random(self, rng: random.Random) -> torch.Tensor:
        return torch.rand(3, self.genome_size, self.genome_size, generator=self._gen(rng))

    def mutate(self, g: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """Polynomial mutation (Deb & Agrawal) of each value with probability ``rate``: small
        steps are likely, a jump to either bound is possible, values stay in [0, 1]."""
        gen = self._gen(rng)
        mask = torch.rand(g.shape, generator=gen) < self.rate
        if not mask.any():
            mask.view(-1)[int(torch.randint(mask.numel(), (1,), generator=gen))] = True
        u = torch.rand(g.shape, generator=gen)
        p = 1.0 / (self.eta + 1.0)
        delta = torch.where(u < 0.5, (2 * u) ** p - 1, 1 - (2 * (1 - u)) ** p)
        return (g + mask * delta).clamp(0, 1)

    def crossover(self, a: torch.Tensor, b: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """``a`` with a random rectangle taken from ``b``."""
        n = self.genome_size
        y0, y1 = sorted(rng.sample(range(n + 1), 2))
        x0, x1 = sorted(rng.sample(range(n + 1), 2))
        child = a.clone()
        child[:, y0:y1, x0:x1] = b[:, y0:y1, x0:x1]
        return child

    def render(self, genomes: Sequence[torch.Tensor], size: int, device=None) -> torch.Tensor:
        batch = torch.stack(list(genomes)).to(device)
        return F.interpolate(batch, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def make_encoding(encoding: str | CPPNEncoding | DirectEncoding) -> CPPNEncoding | DirectEncoding:
    if not isinstance(encoding, str):
        return encoding
    if encoding == "cppn":
        return CPPNEncoding()
    if encoding == "direct":
        return DirectEncoding()
    raise FeaturevisError(f"unknown encoding {encoding!r}: choose cppn or direct")


# -- the archive ------------------------------------------------------------------------------
class Archive:
    """MAP-Elites over classes: cell ``k`` keeps the ``per_cell`` genomes with the highest
    confidence for class ``k`` (best first)."""

    def __init__(self, n_cells: int, per_cell: int) -> None:
        self.per_cell = per_cell
        self.cells: list[list[tuple[float, object]]] = [[] for _ in range(n_cells)]

    def add(self, genomes: Sequence[object], conf: torch.Tensor) -> int:
        """Offer every genome to every cell (``conf`` is ``len(genomes)×cells``); returns how
        many cells got a new champion."""
        improved = 0
        for k, cell in enumerate(self.cells):
            col = conf[:, k]
            top = torch.topk(col, min(self.per_cell, len(genomes))).indices.tolist()
            old_best = cell[0][0] if cell else -math.inf
            cell.extend((float(col[i]), genomes[i]) for i in top)
            cell.sort(key=lambda e: e[0], reverse=True)
            del cell[self.per_cell :]
            improved += cell[0][0] > old_best
        return improved

    def best(self) -> list[tuple[float, object]]:
        return [cell[0] for cell in self.cells]

    def copy(self) -> Archive:
        """The cells as they are now (the genomes shared, not copied): a generation's parents."""
        out = Archive(len(self.cells), self.per_cell)
        out.cells = [list(cell) for cell in self.cells]
        return out

    def parent(self, rng: random.Random) -> object:
        """A uniformly chosen cell, then one of its elites: every class gets offspring."""
        return rng.choice(rng.choice(self.cells))[1]


# -- the result -------------------------------------------------------------------------------
@dataclass
class EvolveResult(Result):
    """The champion of each class cell and its confidence. ``save()`` writes the grid,
    :meth:`save_all` a folder with one image per class."""

    images: torch.Tensor  # K×3×H×W in [0, 1], CPU: each class's champion at the evaluation size
    classes: list[int]
    names: list[str]
    confidences: torch.Tensor  # K: softmax probability of each class for its champion
    genomes: list = field(repr=False)
    encoding: str = "cppn"
    #: each class's best confidence after the initial population and after each generation (R×K;
    #: a generation cut short by Ctrl-C adds a row for its scored part)
    history: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    evaluations: int = 0
    generations: int = 0  # completed after the initial population

    @property
    def image(self) -> torch.Tensor:
        return self.images

    def shown(self) -> torch.Tensor:
        return make_grid(self.images) if len(self.images) > 1 else self.images[0]

    def top(self, n: int) -> EvolveResult:
        """The ``n`` classes with the most confident champions, most confident first (for
        ``classes="all"``, where a thousand cells are more than anyone wants to look at)."""
        keep = torch.argsort(self.confidences, descending=True, stable=True)[:n].tolist()
        return dataclasses.replace(
            self,
            images=self.images[keep],
            classes=[self.classes[i] for i in keep],
            names=[self.names[i] for i in keep],
            confidences=self.confidences[keep],
            genomes=[self.genomes[i] for i in keep],
            history=self.history[:, keep],
        )

    def render_at(self, size: int) -> torch.Tensor:
        """The champions drawn again at ``size`` px: a CPPN redraws its pattern sharply, a
        direct genome is upsampled from its stored resolution."""
        return make_encoding(self.encoding).render(self.genomes, size).cpu()

    def save_all(self, folder: str | Path, size: int | None = None) -> Path:
        """One PNG per class (named after it), ``grid.png`` and ``confidences.json``, each
        written atomically; ``size`` redraws the champions at that side first."""
        out = Path(folder)
        images = self.images if size is None else self.render_at(size)
        for idx, name, img in zip(self.classes, self.names, images, strict=True):
            save_image(img, out / f"{idx:04d}-{_safe(name)}.png")
        save_image(make_grid(images) if len(images) > 1 else images[0], out / "grid.png")
        record = dict(
            encoding=self.encoding,
            evaluations=self.evaluations,
            generations=self.generations,
            seconds=round(self.seconds, 1),
            interrupted=self.interrupted,
            confidences={n: round(float(c), 4) for n, c in zip(self.names, self.confidences, strict=True)},
            settings=self.settings,
        )
        with atomic_write(out / "confidences.json") as tmp:
            Path(tmp).write_text(json.dumps(record, indent=2) + "\n")
        return out

    def __repr__(self) -> str:
        conf = ", ".join(f"{n} {c:.3f}" for n, c in zip(self.names[:6], self.confidences.tolist(), strict=False))
        more = ", ..." if len(self.names) > 6 else ""
        note = ", interrupted" if self.interrupted else ""
        return f"EvolveResult({self.encoding}, {self.evaluations} evaluations: {conf}{more}{note})"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name).strip("_") or "class"


# -- the search -------------------------------------------------------------------------------
def _class_list(model: FeatureModel, classes: int | str | Sequence[int | str], size: int) -> list[int]:
    n_out = model.layer_shape(LOGITS, size)
    n = n_out[0] if n_out else 0
    if isinstance(classes, str) and classes.strip().lower() == "all":
        return list(range(n))
    if isinstance(classes, (int, str)):
        items: list[int | str] = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else [classes]
    else:
        items = list(classes)
    items = [c for c in items if not (isinstance(c, str) and not c)]
    if not items:
        raise FeaturevisError("no target class given: e.g. --class 'king penguin,starfish' or --class 145")
    out: list[int] = []
    for c in items:
        idx = model.class_index(c)
        if not 0 <= idx < n:
            raise FeaturevisError(f"class {idx} out of range: {model.name} has classes 0..{n - 1}")
        if idx not in out:
            out.append(idx)
    return out


def confidences(model: FeatureModel, images: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Softmax probability of each of ``classes`` for each image (``B×K``): the only thing the
    black-box search sees. One forward pass for the whole batch."""
    with torch.no_grad():
        logits = model(images.to(model.device), [LOGITS])[LOGITS].float()
        return logits.softmax(-1)[:, list(classes)].cpu()


def evolve(
    model: str | torch.nn.Module | FeatureModel,
    classes: int | str | Sequence[int | str],
    *,
    encoding: str | CPPNEncoding | DirectEncoding = "cppn",
    population: int = DEFAULT_POPULATION,
    generations: int = DEFAULT_GENERATIONS,
    size: int = DEFAULT_SIZE,
    elites: int = 4,
    crossover: float = 0.2,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> EvolveResult:
    """Evolve images the model assigns to ``classes`` with high confidence, using only its output.

    Args:
        model: a zoo name, a :class:`FeatureModel` or any classifier module.
        classes: a class index or name, ``"name,name"``, a list, or ``"all"``; one archive
            cell each (scoring more classes costs nothing: it is the same forward pass).
        encoding: ``"cppn"`` (patterns from coordinate networks) or ``"direct"`` (pixels).
        population: offspring per generation (drawn and scored :data:`EVAL_BATCH` at a time).
        generations: generations after the random initial population; the budget in network
            evaluations is ``population × (generations + 1)``.
        size: side (px) the genomes are drawn at for the network.
        elites: genomes each class cell keeps as parents (its best is the class's champion).
        crossover: probability an offspring recombines two elites before mutating.
    Returns:
        An :class:`EvolveResult`; Ctrl-C stops and returns the champions among every image
        scored so far (a generation cut short counts its scored part); before any image was
        scored it raises ``KeyboardInterrupt``.
    """
    for name, value, low in (("population", population, 2), ("size", size, 16), ("elites", elites, 1)):
        if not isinstance(value, int) or value < low:
            raise FeaturevisError(f"{name} must be an integer >= {low}, got {value!r}")
    if not isinstance(generations, int) or generations < 0:
        raise FeaturevisError(f"generations must be an integer >= 0, got {generations!r}")
    if not 0 <= crossover <= 1:
        raise FeaturevisError(f"crossover must be a probability in [0, 1], got {crossover}")
    enc = make_encoding(encoding)
    fm = as_model(model)
    fm.require_rgb("evolve (its CPPN and pixel genomes)")
    fm.to(resolve_device(device))
    targets = _class_list(fm, classes, size)
    names = [fm.class_name(i) for i in targets]
    rng = random.Random(seed)
    start = time.perf_counter()
    archive = Archive(len(targets), elites)
    history: list[torch.Tensor] = []
    evaluations, recorded, done, interrupted = 0, 0, 0, False

    def score(make: Callable[[], object], n: int) -> None:
        """Make ``n`` genomes with ``make`` and score them, :data:`EVAL_BATCH` at a time."""
        nonlocal evaluations
        for first in range(0, n, EVAL_BATCH):
            genomes = [make() for _ in range(min(EVAL_BATCH, n - first))]
            archive.add(genomes, confidences(fm, enc.render(genomes, size, fm.device), targets))
            evaluations += len(genomes)
            bar.update(len(genomes))

    def record() -> None:
        """One row of ``history``: each class's best confidence after the images scored so far."""
        nonlocal recorded
        history.append(torch.tensor([c for c, _ in archive.best()]))
        recorded = evaluations
        bar.set_postfix(best=f"{history[-1].max():.2f}", mean=f"{history[-1].mean():.2f}", refresh=False)

    def child(parents: Archive) -> object:
        parent = parents.parent(rng)
        if rng.random() < crossover:
            parent = enc.crossover(parent, parents.parent(rng), rng)
        return enc.mutate(parent, rng)

    bar = tqdm(
        total=population * (generations + 1),
        desc=f"evolve ({enc.name})",
        unit="img",
        disable=not progress,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        score(lambda: enc.random(rng), population)
        record()
        while done < generations:
            parents = archive.copy()  # every child of a generation has parents from before it
            score(lambda parents=parents: child(parents), population)
            done += 1
            record()
    except KeyboardInterrupt:
        interrupted = True
        tqdm.write("featurevis: interrupted; keeping the best images so far")
    finally:
        bar.close()
    if not evaluations:  # interrupted before the first image was scored
        raise KeyboardInterrupt
    if evaluations > recorded:  # a generation cut short: its scored part counts
        record()
    champions = archive.best()
    genomes = [g for _, g in champions]
    return EvolveResult(
        images=enc.render(genomes, size).cpu(),
        classes=targets,
        names=names,
        confidences=torch.tensor([c for c, _ in champions]),
        genomes=genomes,
        encoding=enc.name,
        history=torch.stack(history),
        evaluations=evaluations,
        generations=done,
        settings=dict(
            model=fm.name,
            encoding=enc.name,
            population=population,
            generations=generations,
            size=size,
            elites=elites,
            crossover=crossover,
            seed=seed,
        ),
        interrupted=interrupted,
        seconds=time.perf_counter() - start,
    )
