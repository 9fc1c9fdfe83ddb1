"""Compositional pattern-producing networks (CPPNs): images as functions of position.

A CPPN maps each pixel's coordinates ``(x, y, r = √(x²+y²))`` and a bias to a colour. Its nodes
use functions with regularities (sine: repetition, Gaussian: symmetry, abs: mirroring, sigmoid
and tanh: soft edges), so even a small network draws a regular, geometric pattern, and since
the network sees coordinates, not pixels, it draws the same pattern at any resolution.

Two kinds live here:

- :class:`CPPNGenome`, an evolvable network (NEAT-style: nodes and connections that mutation
  adds to and that crossover aligns by innovation), used by :mod:`featurevis.evolve` as the
  indirect encoding of fooling images (Nguyen et al. 2015);
- :class:`CPPNImage`, a fixed, dense CPPN whose weights gradient descent trains, a
  parameterization for :func:`featurevis.optimize` (Mordvintsev et al. 2018, "Differentiable
  Image Parameterizations"), so any objective renders as a smooth pattern that can be drawn
  again at a larger size (:meth:`CPPNImage.render_at`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import FeaturevisError
from .base import Parameterization, _to_unit, decorrelated_to_rgb

# -- coordinates ------------------------------------------------------------------------------


def coordinate_grid(size: int | tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
    """``H×W×3`` tensor of ``(x, y, r)`` at pixel centres; the longer side spans [-1, 1].

    Pixel centres (not edges) keep the pattern in the same place at every resolution.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if h < 1 or w < 1:
        raise FeaturevisError(f"image size must be positive, got {h}x{w}")
    side = max(h, w)
    ys = (torch.arange(h, dtype=torch.float32, device=device) + 0.5 - h / 2) * (2 / side)
    xs = (torch.arange(w, dtype=torch.float32, device=device) + 0.5 - w / 2) * (2 / side)
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y, torch.sqrt(x * x + y * y)], dim=-1)


# -- activation functions ---------------------------------------------------------------------

#: Node functions evolution may choose; each maps a tensor to a tensor of the same shape.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sin": lambda t: torch.sin(t),
    "cos": lambda t: torch.cos(t),
    "gauss": lambda t: torch.exp(-t * t) * 2 - 1,
    "sigmoid": lambda t: torch.sigmoid(t) * 2 - 1,
    "tanh": torch.tanh,
    "abs": torch.abs,
    "identity": lambda t: t,
    "square": lambda t: (t * t).clamp_max(10.0),
    "relu": torch.relu,
}

#: Number of input nodes: x, y, r and a constant bias of 1.
N_INPUTS = 4
#: Output nodes (R, G, B): squashed by a sigmoid so colours lie in [0, 1].
N_OUTPUTS = 3
INPUT_IDS = tuple(range(N_INPUTS))
OUTPUT_IDS = tuple(range(N_INPUTS, N_INPUTS + N_OUTPUTS))
#: Weights stay within ±this: it bounds how fine a stripe can get (finer ones alias to noise
#: at the evaluation size and change with it).
MAX_WEIGHT = 16.0
#: Spread of new weights: coordinates in [-1, 1] times weights of this size make a few to a
#: dozen stripes or rings across the image. Against all 1000 lite0 classes (64 x 61
#: evaluations) sd 4 gave 13 classes at >= 90 % confidence, sd 2 (smoother patterns) only 7.
WEIGHT_SD = 4.0


class Innovations:
    """Gives the node made by splitting connection ``a→b`` the same id in every genome.

    Crossover aligns genes by these ids (NEAT's historical markings), so two genomes that
    grew the same structure independently still line up gene for gene.
    """

    def __init__(self, next_id: int = N_INPUTS + N_OUTPUTS) -> None:
        self.next_id = next_id
        self._splits: dict[tuple[int, int], int] = {}

    def split_node(self, a: int, b: int, taken: Container[int]) -> int:
        """The id for the node splitting ``a→b``; a fresh one if ``taken`` (the genome's node
        ids) already holds it, e.g. when a re-enabled ``a→b`` is split a second time."""
        nid = self._splits.get((a, b))
        if nid is None or nid in taken:
            nid = self.fresh()
            self._splits.setdefault((a, b), nid)
        return nid

    def fresh(self) -> int:
        nid = self.next_id
        self.next_id += 1
        return nid


@dataclass
class CPPNGenome:
    """An acyclic network: ``nodes`` (id → activation name) and ``conns`` ((src, dst) → weight,
    with an enabled flag). Ids 0-3 are the inputs (x, y, r, bias), 4-6 the outputs (R, G, B)."""

    nodes: dict[int, str] = field(default_factory=dict)
    conns: dict[tuple[int, int], tuple[float, bool]] = field(default_factory=dict)

    def copy(self) -> CPPNGenome:
        return CPPNGenome(dict(self.nodes), dict(self.conns))

    @property
    def hidden(self) -> list[int]:
        return [n for n in self.nodes if n >= N_INPUTS + N_OUTPUTS]

    def enabled(self) -> list[tuple[int, int, float]]:
        return [(a, b, w) for (a, b), (w, on) in self.conns.items() if on]

    def order(self) -> list[int]:
        """Non-input nodes in topological order over enabled connections (Kahn's algorithm);
        raises if the network has a cycle, which mutation and crossover never make."""
        indeg = {n: 0 for n in self.nodes}
        out: dict[int, list[int]] = {n: [] for n in self.nodes}
        for a, b, _ in self.enabled():
            indeg[b] += 1
            out[a].append(b)
        ready = [n for n in self.nodes if indeg[n] == 0]
        seen: list[int] = []
        while ready:
            n = ready.pop()
            seen.append(n)
            for m in out[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
        if len(seen) != len(self.nodes):
            raise ValueError("CPPN genome has a cycle")
        return [n for n in seen if n >= N_INPUTS]

    def is_valid(self) -> bool:
        """Every connection joins existing nodes, none enters an input or leaves an output,
        and the enabled graph is acyclic."""
        if any(self.nodes.get(i) != "input" for i in INPUT_IDS) or any(o not in self.nodes for o in OUTPUT_IDS):
            return False
        for a, b in self.conns:
            if a not in self.nodes or b not in self.nodes or b in INPUT_IDS or a in OUTPUT_IDS or a == b:
                return False
        try:
            self.order()
        except ValueError:
            return False
        return True

    def _reaches(self, src: int, dst: int) -> bool:
        """Whether ``dst`` is reachable from ``src`` along any connection (enabled or not, so a
        connection that crossover or a later mutation re-enables can never close a cycle)."""
        out: dict[int, list[int]] = {}
        for a, b in self.conns:
            out.setdefault(a, []).append(b)
        stack, seen = [src], {src}
        while stack:
            n = stack.pop()
            if n == dst:
                return True
            for m in out.get(n, ()):
                if m not in seen:
                    seen.add(m)
                    stack.append(m)
        return False

    def render(self, size: int | tuple[int, int], device: torch.device | str | None = None) -> torch.Tensor:
        """The pattern as a ``3×H×W`` image in [0, 1]: every pixel evaluated at once."""
        grid = coordinate_grid(size, device)
        return self.render_grid(grid)

    def render_grid(self, grid: torch.Tensor) -> torch.Tensor:
        h, w = grid.shape[:2]
        values = {0: grid[..., 0], 1: grid[..., 1], 2: grid[..., 2], 3: torch.ones_like(grid[..., 0])}
        incoming: dict[int, list[tuple[int, float]]] = {}
        for a, b, wt in self.enabled():
            incoming.setdefault(b, []).append((a, wt))
        for n in self.order():
            total = torch.zeros(h, w, device=grid.device)
            for a, wt in incoming.get(n, ()):
                total = total + wt * values[a]  # topological order: every source is done
            values[n] = torch.sigmoid(total) if n in OUTPUT_IDS else ACTIVATIONS[self.nodes[n]](total)
        return torch.stack([values[o] for o in OUTPUT_IDS])

    def __repr__(self) -> str:
        acts = sorted(self.nodes[n] for n in self.hidden)
        return f"CPPNGenome({len(self.hidden)} hidden {acts}, {len(self.enabled())} connections)"


def render_genomes(genomes: Sequence[CPPNGenome], size: int | tuple[int, int], device=None) -> torch.Tensor:
    """A batch ``B×3×H×W`` of patterns, sharing one coordinate grid."""
    grid = coordinate_grid(size, device)
    return torch.stack([g.render_grid(grid) for g in genomes])


# -- variation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MutationRates:
    """How often each kind of change happens to one offspring (Picbreeder/NEAT-like defaults)."""

    weight: float = 0.8  # perturb the weights (each one with probability ``weight_each``)
    weight_each: float = 0.3
    weight_sd: float = 0.6
    replace: float = 0.1  # chance a perturbed weight is drawn anew instead
    add_node: float = 0.15
    add_conn: float = 0.25
    activation: float = 0.15
    toggle: float = 0.03  # disable an enabled connection or re-enable a disabled one


def _random_weight(rng: random.Random, sd: float = WEIGHT_SD) -> float:
    return max(-MAX_WEIGHT, min(MAX_WEIGHT, rng.gauss(0.0, sd)))


def random_genome(
    rng: random.Random,
    innovations: Innovations,
    *,
    hidden: int = 5,
    activations: Sequence[str] = tuple(ACTIVATIONS),
) -> CPPNGenome:
    """Inputs fully connected to the outputs, grown by ``hidden`` node splits and as many new
    connections, so the first generation already holds curved, repeating patterns."""
    g = CPPNGenome({i: "input" for i in INPUT_IDS} | {o: "sigmoid" for o in OUTPUT_IDS})
    for a in INPUT_IDS:
        for b in OUTPUT_IDS:
            g.conns[(a, b)] = (_random_weight(rng), True)
    for _ in range(hidden):
        add_node(g, rng, innovations, activations)
        add_connection(g, rng)
    return g


def add_node(g: CPPNGenome, rng: random.Random, innovations: Innovations, activations: Sequence[str]) -> bool:
    """Split a random enabled connection ``a→b`` into ``a→n→b`` (weights 1 and the old one)."""
    live = [k for k, (_, on) in g.conns.items() if on]
    if not live:
        return False
    a, b = rng.choice(live)
    w, _ = g.conns[(a, b)]
    n = innovations.split_node(a, b, g.nodes)
    g.nodes[n] = rng.choice(list(activations))
    g.conns[(a, b)] = (w, False)
    g.conns[(a, n)] = (1.0, True)
    g.conns[(n, b)] = (w, True)
    return True


def add_connection(g: CPPNGenome, rng: random.Random, tries: int = 20) -> bool:
    """Join two unconnected nodes with a random weight, never closing a cycle."""
    sources = [n for n in g.nodes if n not in OUTPUT_IDS]
    targets = [n for n in g.nodes if n not in INPUT_IDS]
    for _ in range(tries):
        a, b = rng.choice(sources), rng.choice(targets)
        if a == b or (a, b) in g.conns or g._reaches(b, a):
            continue
        g.conns[(a, b)] = (_random_weight(rng), True)
        return True
    return False


def mutate(
    g: CPPNGenome,
    rng: random.Random,
    innovations: Innovations,
    rates: MutationRates = MutationRates(),
    activations: Sequence[str] = tuple(ACTIVATIONS),
) -> CPPNGenome:
    """A changed copy: weights perturbed, and sometimes a node split, a connection added, an
    activation swapped or a connection toggled. At least one change always happens."""
    child = g.copy()
    changed = False
    if rng.random() < rates.add_node:
        changed |= add_node(child, rng, innovations, activations)
    if rng.random() < rates.add_conn:
        changed |= add_connection(child, rng)
    if rng.random() < rates.activation and child.hidden:
        n = rng.choice(child.hidden)
        options = [a for a in activations if a != child.nodes[n]]
        if options:
            child.nodes[n] = rng.choice(options)
            changed = True
    if rng.random() < rates.toggle and child.conns:
        key = rng.choice(list(child.conns))
        w, on = child.conns[key]
        child.conns[key] = (w, not on)
        changed = True
    if rng.random() < rates.weight or not changed:
        keys = list(child.conns)
        picked = [k for k in keys if rng.random() < rates.weight_each] or [rng.choice(keys)]
        for k in picked:
            w, on = child.conns[k]
            w = _random_weight(rng) if rng.random() < rates.replace else w + rng.gauss(0.0, rates.weight_sd)
            child.conns[k] = (max(-MAX_WEIGHT, min(MAX_WEIGHT, w)), on)
    return child


def crossover(fitter: CPPNGenome, other: CPPNGenome, rng: random.Random) -> CPPNGenome:
    """NEAT crossover: the structure of ``fitter``; genes both share take their weight or
    activation from either parent at random. Keeping one parent's structure keeps it acyclic."""
    child = fitter.copy()
    for key, (_, on) in fitter.conns.items():
        if key in other.conns and rng.random() < 0.5:
            child.conns[key] = (other.conns[key][0], on)
    for n in fitter.hidden:
        if n in other.nodes and rng.random() < 0.5:
            child.nodes[n] = other.nodes[n]
    return child


# -- the differentiable CPPN parameterization -------------------------------------------------


def _composite(t: torch.Tensor) -> torch.Tensor:
    """``atan`` and its square side by side, scaled to about unit variance: odd and even parts,
    so stacked layers make both stripes and symmetric blobs."""
    a = torch.atan(t)
    return torch.cat([a / 0.67, a * a / 0.6], dim=-1)


class CPPNImage(Parameterization):
    """Images drawn by a dense CPPN whose weights are the parameters (one network per image).

    ``layers`` hidden layers of ``width`` units map ``(x, y, r)`` to RGB (or ``channels``
    outputs) through a sigmoid.
    Gradient descent on the weights gives smooth, resolution-independent patterns: optimize
    at a small ``size``, then :meth:`render_at` a large one.
    """

    resolution_independent = True
    #: Every weight shapes the whole image, so Adam steps must be small: at 0.01 and above the
    #: atan layers saturate within ~100 steps and the image collapses to one flat colour
    #: (lite0, 160 px, 256-384 steps); 0.002-0.005 all work, 0.003 balances channels and classes.
    default_lr = 0.003

    def __init__(
        self,
        batch: int = 1,
        size: int | tuple[int, int] = 224,
        *,
        layers: int = 8,
        width: int = 24,
        squash: str = "sigmoid",
        decorrelate: bool = False,
        scale: float = math.sqrt(3),
        channels: int = 3,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.channels = channels
        if layers < 1 or width < 1:
            raise FeaturevisError(f"a CPPN needs at least one layer and unit, got {layers}x{width}")
        h, w = (size, size) if isinstance(size, int) else size
        self.batch, self.size = batch, (h, w)
        self.squash, self.decorrelate, self.scale = squash, decorrelate, scale
        self.register_buffer("grid", coordinate_grid((h, w)), persistent=False)
        weights, biases = [], []
        fan_in = 3
        for _ in range(layers):
            weights.append(nn.Parameter(torch.randn(batch, width, fan_in, generator=generator) / math.sqrt(fan_in)))
            biases.append(nn.Parameter(torch.zeros(batch, width)))
            fan_in = 2 * width
        # The output layer starts at zero: every image starts a uniform grey, like the other
        # parameterizations, and the first steps choose where colour goes.
        weights.append(nn.Parameter(torch.zeros(batch, channels, fan_in)))
        biases.append(nn.Parameter(torch.zeros(batch, channels)))
        self.weights, self.biases = nn.ParameterList(weights), nn.ParameterList(biases)

    def draw(self, grid: torch.Tensor) -> torch.Tensor:
        h, w = grid.shape[:2]
        # The coordinates span about ±√3 so the first layer's inputs have unit variance.
        t = (grid * self.scale).reshape(1, h * w, 3).expand(self.batch, -1, -1)
        n = len(self.weights)
        for i, (wt, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            t = torch.baddbmm(b[:, None, :], t, wt.transpose(1, 2))
            if i < n - 1:
                t = _composite(t)
        t = t.transpose(1, 2).reshape(self.batch, self.channels, h, w)
        if self.decorrelate:
            t = decorrelated_to_rgb(t)
        return _to_unit(t if self.squash == "sigmoid" else t + 0.5, self.squash)

    def forward(self) -> torch.Tensor:
        return self.draw(self.grid)

    def render_at(self, size: int | tuple[int, int]) -> torch.Tensor:
        """The same images drawn at another resolution (no gradients; drawn in bands of rows
        so a 4096-px image needs no more memory than a few hundred thousand pixels at once)."""
        grid = coordinate_grid(size, self.grid.device)
        rows = max(1, _PIXELS_PER_BAND // grid.shape[1])
        with torch.no_grad():
            return torch.cat([self.draw(grid[i : i + rows]) for i in range(0, grid.shape[0], rows)], dim=2)


_PIXELS_PER_BAND = 1 << 18
