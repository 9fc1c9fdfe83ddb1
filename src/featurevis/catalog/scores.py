"""Fidelity scores for every catalogued unit: how far to trust its pictures.

A feature visualization should not be trusted by eye: people predict a unit's behaviour from
synthetic images barely better than from natural exemplars (Borowski et al. 2021; Zimmermann et
al. 2021), and a network can be rigged so that its visualizations show anything while the unit
does something else (Geirhos et al. 2024). So every unit gets numbers beside its pictures:

``activation_ratio``
    the unit's objective on the visualization over its best value on the top dataset examples
    (both measured here, the same objective on 96-px-like images, no transforms). Below 1 the
    optimization did not reach what a natural image reaches.
``transfer``
    class units only (the ``logits`` pseudo-layer): the mean probability that other zoo networks
    with the same labels give the target class on the visualization (lite1 and lite2 for lite0).
    ``None`` for every other unit: not applicable, never a made-up number.
``mis``
    a machine 2AFC score after Zimmermann, Klindt and Brendel (2024), "Measuring Mechanistic
    Interpretability at Scale": with the visualization (and its diversity set) as the reference,
    the fraction of (top exemplar, bottom exemplar) pairs in which the top one is the more similar
    to the reference. 0.5 is chance. Deviations from the paper: DreamSim is replaced by
    :class:`Similarity` (EfficientNet-Lite1's intermediate features, each position's channel
    vector unit-normalized as in LPIPS, averaged over positions, cosine averaged over five
    layers, ``_blocks.3, 6, 10, 14, 19``, at 128 px); the references are synthetic (the
    visualization) instead of natural exemplars, without min-activating references; the
    decision is hard (ties count half) instead of the
    paper's sigmoid of the similarity difference; trials are all top×bottom pairs of the
    catalog's crops (6×6 by default) of its dataset instead of sampled ImageNet trials.
``path``
    a path check after Geirhos et al. (2024): for three layers below the unit, the Spearman rank
    correlation between the visualization's per-channel mean activations and the top examples'
    (their mean), both centred on the mean of all the unit's examples (top and bottom: what every
    image has is not this unit's route), averaged over those layers. Low means the picture
    reaches the unit by another route than the natural images that excite it.
``diversity``
    1 − the mean pairwise cosine of the diversity set's Gram matrices at the unit's layer (the
    same measure :func:`~featurevis.core.objectives.diversity` optimizes); 0 means the set is
    one picture repeated.

:func:`score_unit` takes an :class:`~featurevis.core.objectives.Objective` and images, so a
channel, a neuron or a direction (a concept atom) is scored by the same code;
:func:`score_catalog` scores a catalog's units that have no scores yet (``featurevis score``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..core import objectives as O
from ..core.engine import resolve_device
from ..core.errors import FeaturevisError
from ..core.images import atomic_write, check_path, load_image
from ..core.layers import depth_layers
from ..core.model import LOGITS, FeatureModel
from ..zoo import label_peers, load_model
from .build import LayerStats, _safe, bottom_examples, load_model_spec
from .concepts import unit_objective
from .store import SCORE_COLUMNS, SCORES, CatalogStore

#: The network whose features judge perceptual similarity (a second network, not the one scored).
SIMILARITY_MODEL = "efficientnet_lite1"
#: Side images are compared at (crops are 96 px, catalog visualizations 128 px by default).
SIMILARITY_SIDE = 128
#: Layers below a unit that the path check compares.
PATH_LAYERS = 3


@dataclass
class UnitScores:
    """One unit's scores; ``None`` where a score does not apply (or its inputs are missing)."""

    activation_ratio: float | None = None
    transfer: float | None = None
    mis: float | None = None
    path: float | None = None
    diversity: float | None = None
    details: dict = field(default_factory=dict)  # the figures behind each score

    def values(self) -> dict[str, float | None]:
        return {k: getattr(self, k) for k in SCORE_COLUMNS}


class Similarity:
    """An offline stand-in for DreamSim: images as unit vectors whose dot product is the mean,
    over a few layers of a second network, of the cosine between LPIPS-normalized (each
    position's channel vector scaled to length 1) and spatially averaged features."""

    def __init__(
        self,
        model: FeatureModel | str = SIMILARITY_MODEL,
        layers: Sequence[str] | None = None,
        side: int = SIMILARITY_SIDE,
    ):
        self.model = load_model(model) if isinstance(model, str) else model
        self.layers = list(layers) if layers else _similarity_layers(self.model, side)
        self.side = side

    def to(self, device: torch.device | str) -> Similarity:
        self.model.to(device)
        return self

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """``N×D`` unit vectors (``D`` = all layers' channels), one per image."""
        x = F.interpolate(
            images.float(), size=(self.side, self.side), mode="bilinear", antialias=True, align_corners=False
        )
        acts = self.model(x.to(self.model.device), self.layers)
        parts = [F.normalize(F.normalize(acts[n].float(), dim=1).flatten(2).mean(2), dim=1) for n in self.layers]
        return torch.cat(parts, 1).cpu() / math.sqrt(len(parts))

    def __repr__(self) -> str:
        return f"Similarity({self.model.name}, layers={self.layers}, side={self.side})"


#: LPIPS compares five depths of one network; these are lite1's, from edges to parts.
LITE1_LAYERS = ("_blocks.3", "_blocks.6", "_blocks.10", "_blocks.14", "_blocks.19")


def _similarity_layers(model: FeatureModel, side: int) -> list[str]:
    """Five maps spread from shallow to deep (past the stem, before any 1×1 pooling)."""
    if model.name == SIMILARITY_MODEL:
        return list(LITE1_LAYERS)
    maps = [n for n in depth_layers(model, 8)[1:] if math.prod(model.layer_shape(n, side)[1:]) > 1]
    return maps[-5:]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float | None:
    """Spearman's rank correlation (ties get their mean rank); ``None`` when either is constant."""
    ra, rb = _ranks(a.flatten().double()), _ranks(b.flatten().double())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = ra.norm() * rb.norm()
    return None if denom == 0 else float((ra @ rb) / denom)


def _ranks(x: torch.Tensor) -> torch.Tensor:
    _, inverse, counts = torch.unique(x, sorted=True, return_inverse=True, return_counts=True)
    end = counts.cumsum(0).double()
    return (end - (counts.double() - 1) / 2)[inverse]


def layers_below(model: FeatureModel, layer: str, n: int = PATH_LAYERS, size: int = 64) -> list[str]:
    """``n`` top-level feature maps before ``layer``, spread over that depth (the path check's)."""
    infos = [
        i for i in model.layers(size) if i.name.count(".") <= 1 and i.spatial and i.kind not in ("Identity", "Dropout")
    ]
    names = [i.name for i in infos]
    if layer == LOGITS:
        below = names
    elif layer in names:
        below = names[: names.index(layer)]
    else:  # a sub-module: the top-level maps that run before it
        order = [i.name for i in model.layers(size)]
        if layer not in order:
            return []
        below = [m for m in names if order.index(m) < order.index(layer) and not layer.startswith(m + ".")]
    if len(below) <= n:
        return below
    return [below[round((k + 1) * len(below) / n) - 1] for k in range(n)]


@torch.no_grad()
def _values(model: FeatureModel, objective: O.Objective, images: torch.Tensor) -> torch.Tensor:
    out = [objective(model(chunk.to(model.device), objective.layers)).float().cpu() for chunk in images.split(16)]
    return torch.cat(out)


@torch.no_grad()
def _channel_means(model: FeatureModel, layers: Sequence[str], images: torch.Tensor) -> dict[str, torch.Tensor]:
    acts = model(images.to(model.device), layers)
    return {n: acts[n].float().flatten(2).mean(2).cpu() for n in layers}


def score_unit(
    model: FeatureModel,
    objective: O.Objective,
    visualization: torch.Tensor,
    *,
    diversity: torch.Tensor | None = None,
    top: torch.Tensor | None = None,
    bottom: torch.Tensor | None = None,
    similarity: Similarity | None = None,
    lower_layers: Sequence[str] = (),
    target_class: int | None = None,
    transfer_models: Sequence[FeatureModel] = (),
) -> UnitScores:
    """Score one unit (any objective: a channel, a neuron, a direction, a class logit).

    Args:
        visualization: ``1×3×H×W`` (or a batch: the first is the visualization), in [0, 1].
        diversity: the unit's diversity set, ``n×3×H×W`` (n >= 2), or None.
        top, bottom: the unit's most and least activating dataset examples (``k×3×h×w``).
        similarity: the perceptual similarity of the 2AFC score (default: a new :class:`Similarity`).
        lower_layers: the path check's layers (e.g. :func:`layers_below`); none: no path score.
        target_class, transfer_models: a class unit's class and the networks that judge transfer.
    Returns:
        :class:`UnitScores`; a score whose inputs are missing or do not apply is ``None``.
    """
    for name, images in [("visualization", visualization), ("diversity", diversity), ("top", top), ("bottom", bottom)]:
        _check_images(name, images)
    vis = visualization[:1]
    out = UnitScores()
    d = out.details
    v_vis = float(_values(model, objective, vis)[0])
    d["visualization_value"] = v_vis
    if top is not None and len(top):
        best = float(_values(model, objective, top).max())
        d["best_example_value"] = best
        out.activation_ratio = v_vis / best if best > 0 else None  # a ratio to a non-positive best means nothing
    if top is not None and bottom is not None and len(top) and len(bottom):
        similarity = similarity or Similarity()
        refs = vis if diversity is None else torch.cat([vis, _fit(diversity, vis)])
        e_ref = similarity.embed(refs).mean(0)
        s_top, s_bottom = similarity.embed(top) @ e_ref, similarity.embed(bottom) @ e_ref
        diff = s_top[:, None] - s_bottom[None, :]
        out.mis = float((diff > 0).double().mean() + 0.5 * (diff == 0).double().mean())
        d["mis_trials"] = diff.numel()
        d["similarity"] = repr(similarity)
    if lower_layers and top is not None and len(top):
        m_vis = _channel_means(model, lower_layers, vis)
        m_top = _channel_means(model, lower_layers, top)
        m_all = _channel_means(model, lower_layers, top if bottom is None else torch.cat([top, _fit(bottom, top)]))
        base = {n: m_all[n].mean(0) for n in lower_layers}  # what every example has: not this unit's route
        rhos = {n: spearman(m_vis[n][0] - base[n], m_top[n].mean(0) - base[n]) for n in lower_layers}
        d["path_layers"] = rhos
        known = [r for r in rhos.values() if r is not None]
        out.path = sum(known) / len(known) if known else None
    if diversity is not None and len(diversity) >= 2 and len(objective.layers) == 1:
        (layer,) = objective.layers
        with torch.no_grad():
            acts = model(diversity.to(model.device), [layer])
        out.diversity = 1 + float(O.diversity(layer)(acts).float().mean())
    if target_class is not None and transfer_models:
        probs = {}
        with torch.no_grad():
            for m in transfer_models:
                x = F.interpolate(vis.float(), size=(m.input_size,) * 2, mode="bilinear", align_corners=False)
                logits = m(x.to(m.device), [LOGITS])[LOGITS].float()
                probs[m.name] = float(logits.softmax(-1)[0, target_class])
        d["transfer_models"] = probs
        out.transfer = sum(probs.values()) / len(probs)
    return out


def _check_images(name: str, images: torch.Tensor | None) -> None:
    """A batch of RGB images in [0, 1] (or None), else one line: a score of garbage is a guess."""
    if images is None:
        return
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3 or not len(images):
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise FeaturevisError(f"{name} must be a batch of RGB images (N×3×H×W), got {shape}")
    if not torch.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        raise FeaturevisError(f"{name} must hold finite values in [0, 1]")


def _fit(images: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if images.shape[-2:] == like.shape[-2:]:
        return images
    return F.interpolate(images.float(), size=like.shape[-2:], mode="bilinear", antialias=True, align_corners=False)


# -- a catalog -----------------------------------------------------------------------------------
@dataclass
class ScoreReport:
    folder: Path
    scored: int  # units scored now
    skipped: int  # units that had scores already
    interrupted: bool = False


class CatalogScorer:
    """Scores one run's stored units (their images and examples read back from the catalog
    folder), computing and storing the bottom examples they lack from the run's dataset."""

    def __init__(
        self,
        store: CatalogStore,
        run: str,
        model: FeatureModel,
        dataset: torch.Tensor,
        *,
        similarity: Similarity,
        top_k: int,
    ):
        self.store, self.run, self.model, self.dataset = store, run, model, dataset
        self.similarity, self.top_k = similarity, top_k
        self._stats: dict[str, LayerStats] = {}
        self._below: dict[str, list[str]] = {}
        self._peers: list[FeatureModel] | None = None

    def _image(self, rel: str) -> torch.Tensor:
        return load_image(self.store.folder / rel)

    def _stack(self, rels: Sequence[str]) -> torch.Tensor | None:
        return torch.cat([self._image(r) for r in rels]) if rels else None

    def _bottom(self, layer: str, channel: int) -> list[str]:
        """The channel's bottom crops' files, computed (and stored) when the catalog has none."""
        stats = self._stats.get(layer)
        if stats is None:
            self._stats.clear()  # one layer at a time: channels come in layer order
            stats = self._stats[layer] = LayerStats.of_layer(self.model, layer, self.dataset)
        examples = bottom_examples(stats, self.dataset, channel, self.top_k)
        base = f"{self.run}/{_safe(layer)}/{channel}"  # beside the unit's other files
        for ex in examples:
            ex["file"] = f"{base}/bottom{ex['rank']}.png"
            self.store.write_file(ex["file"], ex.pop("png"))
        self.store.add_examples(self.run, layer, channel, examples)
        return [ex["file"] for ex in examples]

    def transfer_models(self) -> list[FeatureModel]:
        if self._peers is None:
            self._peers = [load_model(name).to(self.model.device) for name in label_peers(self.model.name)]
        return self._peers

    def score(self, layer: str, channel: int) -> UnitScores:
        """Score the stored unit ``(layer, channel)`` and commit its scores."""
        row = self.store.channel(self.run, layer, channel)
        if row is None:
            raise FeaturevisError(f"{layer}:{channel} is not in catalog run {self.run}")
        examples = self.store.examples(self.run, layer, channel)
        top = [e["file"] for e in examples if e["kind"] == "crop"]
        objective = unit_objective(self.store, self.run, layer, channel)  # a channel, class or atom
        atoms = self.store.unit_set(self.run, layer)
        bottom = [e["file"] for e in examples if e["kind"] == "bottom"]
        if not bottom and atoms is None:  # a channel of a catalog built before bottom examples
            bottom = self._bottom(layer, channel)
        if layer not in self._below:  # an atom's path runs below the layer it was fitted in
            self._below[layer] = layers_below(self.model, atoms["layer"] if atoms else layer)
        is_class = layer == LOGITS
        scores = score_unit(
            self.model,
            objective,
            self._image(row["vis"]),
            diversity=self._stack(json.loads(row["diversity"])),
            top=self._stack(top),
            bottom=self._stack(bottom),
            similarity=self.similarity,
            lower_layers=self._below[layer],
            target_class=channel if is_class else None,
            transfer_models=self.transfer_models() if is_class else (),
        )
        self.store.add_scores(self.run, layer, channel, scores.values(), scores.details)
        return scores


_SIMILARITY: dict[tuple[str, str], Similarity] = {}


def similarity_model(name: str = SIMILARITY_MODEL, device: torch.device | str = "cpu") -> Similarity:
    """The :class:`Similarity` on network ``name`` (loaded once per process)."""
    key = (name, str(device))
    if key not in _SIMILARITY:
        _SIMILARITY.clear()
        _SIMILARITY[key] = Similarity(load_model(name)).to(device)
    return _SIMILARITY[key]


def stored_dataset(store: CatalogStore, run: str) -> torch.Tensor:
    """The dataset a run was built on, read back from the catalog's stored copy (JPEG, so pixels
    differ slightly from the originals the top examples were chosen from)."""
    rows = store.dataset(run)
    if not rows:
        raise FeaturevisError(
            f"{store.folder}: run {run} has no stored dataset; rebuild it with featurevis catalog build"
        )
    return torch.cat([load_image(store.folder / r["file"]) for r in rows])


def check_catalog(folder: str | os.PathLike) -> Path:
    """``folder`` if it holds a readable catalog, else one line saying why (nothing created)."""
    p = Path(folder)
    if not p.is_dir():
        raise FeaturevisError(f"{p}: no such catalog folder")
    CatalogStore(p, readonly=True).close()
    return p


def score_catalog(
    folder: str | os.PathLike,
    *,
    similarity: str = SIMILARITY_MODEL,
    device: str | None = None,
    progress: bool = True,
) -> ScoreReport:
    """Score every stored unit of every run in catalog ``folder`` that has no scores yet.

    Idempotent: units with scores are skipped. Each unit's scores are committed as it finishes,
    so Ctrl-C keeps the ones done (the report says ``interrupted``)."""
    folder = check_catalog(folder)
    dev = resolve_device(device)
    scored = skipped = 0
    with CatalogStore(folder) as store:  # writing: the table is added to an older catalog here
        todo_by_run = []
        for run in store.runs():
            have = store.scores(run["run"])
            rows = [r for r in store.all_channels(run["run"]) if (r["layer"], r["channel"]) not in have]
            skipped += len(have)
            if rows:
                todo_by_run.append((run, rows))
        total = sum(len(rows) for _, rows in todo_by_run)
        if not total:
            return ScoreReport(folder, 0, skipped)
        sim = similarity_model(similarity, dev)
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"scores {folder.name}", unit="unit", disable=not progress, dynamic_ncols=True)
        try:
            for run, rows in todo_by_run:
                settings = json.loads(run["settings"])
                model = load_model_spec(settings["model"], settings.get("weights")).to(dev)
                scorer = CatalogScorer(
                    store,
                    run["run"],
                    model,
                    stored_dataset(store, run["run"]),
                    similarity=sim,
                    top_k=settings.get("top_k", 6),
                )
                for r in rows:
                    scorer.score(r["layer"], r["channel"])
                    scored += 1
                    bar.update(1)
        except KeyboardInterrupt:
            return ScoreReport(folder, scored, skipped, interrupted=True)
        finally:
            bar.close()
    return ScoreReport(folder, scored, skipped)


# -- export --------------------------------------------------------------------------------------
EXPORT_FORMATS = (".csv", ".json")


def check_export(path: str | os.PathLike) -> Path:
    """``path`` if scores can be exported there (``.csv`` or ``.json``, writable), else one line."""
    p = Path(path)
    if p.suffix.lower() not in EXPORT_FORMATS:
        raise FeaturevisError(f"{p}: export scores as .csv or .json, not {p.suffix or 'a file without a suffix'!r}")
    return check_path(p)


def score_rows(folder: str | os.PathLike) -> list[dict]:
    """Every unit's scores as plain rows (run, model, layer, channel, the scores; ``None`` where a
    score does not apply or the unit is not scored yet)."""
    with CatalogStore(check_catalog(folder), readonly=True) as store:
        out = []
        for run in store.runs():
            have = store.scores(run["run"])
            for r in store.all_channels(run["run"]):
                s: sqlite3.Row | None = have.get((r["layer"], r["channel"]))
                row = dict(run=run["run"], model=run["model"], layer=r["layer"], channel=r["channel"])
                row.update({k: (s[k] if s is not None else None) for k in SCORE_COLUMNS})
                row["scored"] = s is not None
                out.append(row)
        return out


def export_scores(folder: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Write every unit's scores to ``path`` (``.csv``: empty cells where ``None``; ``.json``: a
    list of objects with ``null``), atomically."""
    p = check_export(path)
    rows = score_rows(folder)
    if p.suffix.lower() == ".json":
        text = json.dumps(rows, indent=1)
    else:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["run", "model", "layer", "channel", *SCORE_COLUMNS, "scored"])
        writer.writeheader()
        writer.writerows(rows)
        text = buf.getvalue()
    try:
        with atomic_write(p) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    except OSError as e:
        raise FeaturevisError(f"{p}: cannot write ({e.strerror or e})") from None
    return p


__all__ = [
    "SCORES",
    "CatalogScorer",
    "ScoreReport",
    "Similarity",
    "UnitScores",
    "export_scores",
    "layers_below",
    "score_catalog",
    "score_rows",
    "score_unit",
    "spearman",
]
