"""Concept atoms as units: a layer's activations factored into directions (NMF or a TopK sparse
autoencoder), each direction catalogued like a channel beside the channels.

A channel is one axis of a layer's space, chosen by the architecture; the network's concepts need
not line up with those axes (Olah et al. 2018, "Building Blocks"; Elhage et al. 2022,
"Toy Models of Superposition"). Factoring the activations over many images finds directions that
the data uses: NMF's non-negative parts (:func:`featurevis.core.factorize.nmf`) or the
dictionary of a TopK sparse autoencoder (:mod:`featurevis.core.sae`, Gao et al. 2024). Each atom
is then rendered through a cosine-weighted direction objective (``O.direction(layer, d,
cossim_pow=1)``: pointing *along* the atom is rewarded, not just a large norm) with the
catalog's own :func:`~featurevis.catalog.build.render_objective`, and its dataset examples are
the positions with the largest atom weight.

Storage: the fit (method, k, figures) and every atom's direction go in one transaction
(``unit_sets``, ``atoms``) before any atom is rendered; the atoms' renders are rows of the
``channels`` table under the set's name (``_blocks.8~nmf64``), written shard by shard like a
catalog build, so a killed run resumes and a finished one does nothing.
:func:`unit_objective` rebuilds any unit's objective (channel or atom) from the store.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..core import objectives as O
from ..core.engine import resolve_device
from ..core.errors import FeaturevisError, unknown
from ..core.factorize import nmf
from ..core.model import LOGITS, FeatureModel
from ..core.photos import random_crops
from ..core.sae import reconstruction_figures, train_sae
from ..core.samples import Samples, layer_samples
from ..zoo.hub import RANDOM
from .build import (
    CatalogSettings,
    ChannelResult,
    LayerStats,
    ShardResult,
    _examples,
    _png,
    _safe,
    _store_shard,
    bottom_examples,
    dataset_digest,
    load_dataset,
    load_model_spec,
    normalize_spec,
    open_run,
    render_objective,
    validate_settings,
)
from .store import CatalogStore

#: The ways atoms are fitted.
METHODS = ("nmf", "sae")
#: Cosine weighting of the atoms' direction objective (Lucid's ``direction_neuron_cossim``).
COSSIM_POW = 1.0
#: Most atoms an SAE may have (beyond this a catalog of renders is hours of work per layer).
MAX_SAE_ATOMS = 4096
#: Most samples the random crops add to a fit (every position of the images themselves is kept).
MAX_CROP_SAMPLES = 200_000


def unit_set_name(layer: str, method: str, k: int) -> str:
    """The name a set of atoms is stored and browsed under: ``_blocks.8~nmf64``."""
    return f"{layer}~{method}{k}"


@dataclass
class AtomFit:
    """Atoms of one layer: ``directions`` (k×C) in the layer's channel space, and the fit's figures."""

    layer: str
    method: str
    directions: torch.Tensor
    figures: dict  # error, explained_variance, samples, (SAE) losses, dead, topk
    dataset_weights: torch.Tensor  # N×k×h×w: each atom's weight at each position of the dataset images

    @property
    def k(self) -> int:
        return len(self.directions)


def check_atoms(model: FeatureModel, layer: str, method: str, k: int, topk: int, side: int) -> int:
    """Refuse, before any work, what cannot be fitted; returns the layer's channel count."""
    if method not in METHODS:
        raise unknown("method", method, METHODS)
    shape = model.layer_shape(layer, side)  # an unknown layer fails here, naming the closest
    if len(shape) != 3:
        raise FeaturevisError(
            f"{layer} has no positions (shape {tuple(shape)}): atoms are fitted to the activation "
            "vectors at each position (or token) of a spatial map"
        )
    c = shape[0]
    if method == "nmf" and not 1 <= k <= c:
        raise FeaturevisError(f"--k must be 1..{c} for NMF of {layer} ({c} channels), not {k}")
    if method == "sae":
        if not 1 <= k <= MAX_SAE_ATOMS:
            raise FeaturevisError(f"--k must be 1..{MAX_SAE_ATOMS} SAE atoms, not {k}")
        if not 1 <= topk <= k:
            raise FeaturevisError(f"active latents per sample (--active, the TopK) must be 1..{k}, not {topk}")
    return c


def fit_atoms(
    model: FeatureModel,
    layer: str,
    images: torch.Tensor,
    method: str = "nmf",
    k: int = 64,
    *,
    topk: int = 8,
    crops: int = 64,
    sae_steps: int = 2000,
    seed: int = 0,
    progress: bool = False,
) -> AtomFit:
    """Fit ``k`` atoms of ``layer`` to its activations over ``images`` (N×3×S×S squares) and
    ``crops`` random crops of them (a few photos give few samples: crops add scales and
    positions). Every position (or token) of every image is a sample."""
    check_atoms(model, layer, method, k, topk, images.shape[-1])
    table, data = fit_samples(model, layer, images, crops=crops, seed=seed, progress=progress)
    if len(table) < k and method == "nmf":
        raise FeaturevisError(f"{len(table)} samples are too few for {k} atoms; give more images or crops")
    figures: dict = dict(samples=len(table), images=len(images), crops=crops)
    if method == "nmf":
        f = nmf(table, k, seed=seed)
        directions, weights = f.directions, f.transform(data.values)
        recon = f.weights @ f.directions
        figures["nmf_error"] = f.error  # on the (split) table NMF factored
    else:
        f = train_sae(table, k, topk=topk, steps=sae_steps, seed=seed)
        directions, weights = f.directions, f.transform(data.values)
        recon = f.reconstruct(table)
        figures.update(topk=topk, steps=sae_steps, losses=f.losses, dead=f.dead, sae_loss=f.losses[-1])
    figures["error"], figures["explained_variance"] = reconstruction_figures(table, recon)
    return AtomFit(layer, method, directions, figures, _maps(weights, data))


def fit_samples(
    model: FeatureModel, layer: str, images: torch.Tensor, *, crops: int = 64, seed: int = 0, progress: bool = False
) -> tuple[torch.Tensor, Samples]:
    """The table atoms are fitted to: ``layer``'s vectors at every position of ``images`` (the
    second value, whose order the dataset's weight maps follow) and of ``crops`` random crops."""
    side = images.shape[-1]
    data = layer_samples(model, list(images.split(1)), layer, side=side, progress=progress, description="atoms")
    if not crops:
        return data.values, data
    augmented = random_crops(list(images.split(1)), crops, side, torch.Generator().manual_seed(seed))
    # an early layer's large maps: the crops add at most MAX_CROP_SAMPLES positions, drawn at random
    per_image = max(1, MAX_CROP_SAMPLES // crops) if crops * data.hw[0] * data.hw[1] > MAX_CROP_SAMPLES else None
    extra = layer_samples(model, list(augmented.split(1)), layer, side=side, per_image=per_image, seed=seed,
                          progress=progress, description="crops")  # fmt: skip
    return torch.cat([data.values, extra.values]), data


def _maps(weights: torch.Tensor, data: Samples) -> torch.Tensor:
    """Sample weights (M×k, image-major, row-major positions) as N×k×h×w maps."""
    h, w = data.hw
    n = int(data.image.max()) + 1
    return weights.reshape(n, h, w, -1).permute(0, 3, 1, 2).contiguous()


def atoms_objective(layer: str, directions: torch.Tensor, cossim_pow: float = COSSIM_POW) -> O.Objective:
    """Image ``i`` of a batch maximizes atom ``directions[i]`` (cosine-weighted projection)."""
    obj = O.direction(layer, directions[0], batch=0, cossim_pow=cossim_pow)
    for i in range(1, len(directions)):
        obj = obj + O.direction(layer, directions[i], batch=i, cossim_pow=cossim_pow)
    return obj


def atom_cosines(model: FeatureModel, layer: str, images: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """B×k: each image's mean cosine (over positions) between its activation vectors and each atom."""
    with torch.no_grad():
        a = model(images.to(model.device), [layer])[layer].float().cpu()
    a = a.flatten(2).transpose(1, 2)  # B×P×C
    d = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (a / a.norm(dim=2, keepdim=True).clamp_min(1e-6) @ d.t()).mean(1)


def render_atoms(
    model: FeatureModel,
    s: CatalogSettings,
    fit_layer: str,
    unit_set: str,
    directions: torch.Tensor,
    atoms: Sequence[int],
    stats: LayerStats,
    images: torch.Tensor,
) -> ShardResult:
    """One shard of atoms: visualization, diversity set, dataset examples, like a channel shard."""
    atoms = list(atoms)
    start = time.perf_counter()
    seed = s.shard_seed(unit_set, atoms[0])
    dirs = directions[atoms]
    vis = render_objective(model, atoms_objective(fit_layer, dirs), len(atoms), s, seed)
    cos = atom_cosines(model, fit_layer, vis.images, directions)
    results = []
    for j, a in enumerate(atoms):
        r = ChannelResult(unit_set, a, _png(vis.images[j]), float(vis.values[j]))
        r.dataset_max, r.examples = _examples(stats, images, a, s.top_k)
        r.examples += bottom_examples(stats, images, a, s.top_k)  # the 2AFC score's least-weighted crops
        others = torch.cat([cos[j, :a], cos[j, a + 1 :]])
        r.extra = dict(own_cosine=float(cos[j, a]), best_other_cosine=float(others.max()) if len(others) else None)
        results.append(r)
    if s.diversity:
        n = s.diversity
        rep = dirs.repeat_interleave(n, 0)
        obj = atoms_objective(fit_layer, rep) + s.diversity_weight * O.diversity(fit_layer, group=n)
        div = render_objective(model, obj, len(rep), s, seed + 1)
        own = atoms_objective(fit_layer, rep)
        with torch.no_grad():
            values = own(model(div.images.to(model.device), list(own.layers))).float().cpu()
        for j, r in enumerate(results):
            for q in range(j * n, (j + 1) * n):
                r.diversity.append(_png(div.images[q]))
                r.diversity_activations.append(float(values[q]))
    return ShardResult(unit_set, atoms, seed, time.perf_counter() - start, results)


@dataclass
class ConceptReport:
    folder: Path
    run: str
    unit_set: str
    fitted: bool  # the atoms were fitted now (not found in the store)
    atoms: int  # rendered now
    skipped: int  # already rendered before
    figures: dict
    seconds: float


def build_concepts(
    model: str,
    out: str | os.PathLike,
    *,
    layer: str,
    method: str = "nmf",
    k: int = 64,
    weights: str | os.PathLike | None = None,
    images: str | os.PathLike | None = None,
    size: int = 128,
    steps: int = 256,
    batch: int = 16,
    diversity: int = 3,
    top_k: int = 6,
    topk: int = 8,
    crops: int = 64,
    sae_steps: int = 2000,
    seed: int = 0,
    lr: float = 0.05,
    device: str | None = None,
    progress: bool = True,
    scores: bool = True,
) -> ConceptReport:
    """Fit ``k`` atoms of ``layer`` (``method`` ``"nmf"`` or ``"sae"``) and catalog each like a channel.

    The atoms join the catalog run with the same model, render settings and dataset (a channel
    catalog built with them shows its channels and these atoms side by side), else a new run.

    Args:
        images: a folder of images (default: the scikit-image samples a catalog uses); the atoms
            are fitted to every position of every image and of ``crops`` random crops of them.
        topk: (SAE) latents active per sample. sae_steps: Adam steps of the SAE's training.
    Returns:
        A :class:`ConceptReport`; a run repeated with the same settings fits and renders nothing.
    """
    model = normalize_spec(model)
    if weights is not None:
        weights = RANDOM if str(weights) == RANDOM else str(Path(weights).resolve())
    fm = load_model_spec(model, weights)
    fm.to(resolve_device(device))
    s = CatalogSettings(
        model=model, size=size, steps=steps, lr=lr, seed=seed, batch=batch, diversity=diversity, top_k=top_k,
        weights=weights,
    )  # fmt: skip
    validate_settings(s)
    for name, v in (("crops", crops), ("sae_steps", sae_steps)):
        if v < 0 or (name == "sae_steps" and v == 0):
            raise FeaturevisError(f"{name} must be {'positive' if name == 'sae_steps' else 'non-negative'}, got {v}")
    check_atoms(fm, layer, method, k, topk, s.dataset_size)
    names, data = load_dataset(images, s.dataset_size)
    s = replace(s, dataset=dataset_digest(names, data))
    run, unit_set = s.key, unit_set_name(layer, method, k)
    fit_settings = dict(layer=layer, method=method, k=k, crops=crops, seed=seed)
    if method == "sae":
        fit_settings.update(topk=topk, sae_steps=sae_steps)
    start = time.perf_counter()
    with CatalogStore(out) as store:
        open_run(store, run, fm.name, s, names, data)
        row = store.unit_set(run, unit_set)
        weights_file = f"{run}/{_safe(unit_set)}/weights.pt"
        if row is not None:
            fit = json.loads(row["fit"])
            if fit["settings"] != fit_settings:
                raise FeaturevisError(
                    f"{out}: {unit_set} was fitted with other settings ({fit['settings']}); use another catalog folder"
                )
            directions = torch.tensor(store.atom_directions(run, unit_set))
            maps = torch.load(store.folder / weights_file, weights_only=True)
            figures, fitted = fit["figures"], False
        else:
            f = fit_atoms(
                fm, layer, data, method, k, topk=topk, crops=crops, sae_steps=sae_steps, seed=seed, progress=progress
            )
            buf = io.BytesIO()
            torch.save(f.dataset_weights, buf)
            store.write_file(weights_file, buf.getvalue())  # before the row that points at it
            figures, fitted, directions, maps = f.figures, True, f.directions, f.dataset_weights
            store.add_unit_set(
                run, unit_set, layer, method, dict(settings=fit_settings, figures=figures, cossim_pow=COSSIM_POW),
                directions.tolist(),
            )  # fmt: skip
        stats = LayerStats([maps])
        done = store.done_channels(run, unit_set)
        todo = [a for a in range(k) if a not in done]
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"atoms {unit_set}", unit="atom", disable=not progress, dynamic_ncols=True)
        scorer = None
        if scores:
            from .scores import CatalogScorer, similarity_model

            sim = similarity_model(device=fm.device)
            scorer = CatalogScorer(store, run, fm, data, similarity=sim, top_k=s.top_k)
        try:
            for i in range(0, len(todo), s.batch):
                shard = render_atoms(fm, s, layer, unit_set, directions, todo[i : i + s.batch], stats, data)
                _store_shard(store, run, shard)
                if scorer is not None:
                    for a in shard.channels:
                        scorer.score(unit_set, a)
                bar.update(len(shard.channels))
            if scorer is not None:  # atoms a run stopped before scoring
                have = store.scores(run)
                for a in sorted(store.done_channels(run, unit_set)):
                    if (unit_set, a) not in have:
                        scorer.score(unit_set, a)
        finally:
            bar.close()
        store.sweep(run)
    return ConceptReport(Path(out), run, unit_set, fitted, len(todo), k - len(todo), figures,
                         time.perf_counter() - start)  # fmt: skip


def unit_objective(store: CatalogStore, run: str, layer: str, unit: int) -> O.Objective:
    """The objective of unit ``unit`` of ``layer`` in catalog run ``run``: a channel's mean
    activation (``O.channel``), or, where ``layer`` names a set of atoms (``_blocks.8~nmf64``),
    the cosine-weighted direction objective the atom was rendered with. Scores and re-renders
    rebuild any unit the catalog shows from this."""
    if layer == LOGITS:
        return O.class_logit(unit)
    row = store.unit_set(run, layer)
    if row is None:
        for r in store.layers(run):
            if r["layer"] == layer:
                if not 0 <= unit < r["channels"]:
                    raise FeaturevisError(f"channel {unit} out of range: {layer} has channels 0..{r['channels'] - 1}")
                return O.channel(layer, unit)
        sets = [u["unit_set"] for u in store.unit_sets(run)]
        raise unknown("layer or set of atoms", layer, [r["layer"] for r in store.layers(run)] + sets)
    if not 0 <= unit < row["k"]:
        raise FeaturevisError(f"atom {unit} out of range: {layer} has atoms 0..{row['k'] - 1}")
    d = store.atom_directions(run, layer)[unit]
    pow_ = json.loads(row["fit"]).get("cossim_pow", COSSIM_POW)
    return O.direction(row["layer"], d, cossim_pow=pow_)
