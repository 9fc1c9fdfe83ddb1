"""Explain one photo against a catalog run: the explorer's live layer view.

After Yosinski et al.'s DeepVis toolbox (2015), which showed a network's layers reacting to a
live image, and Olah et al.'s "Building Blocks" (2018): for each layer, the channels the photo
excites most, where in the photo each one fires, and the catalog's picture of what that channel
detects beside it; then the photo's neuron groups at one layer (NMF: parts of the photo that
the layer sees as one thing, each with a picture of its direction) and a caricature (an image
whose activations exaggerate the photo's). Feature visualization answers "what does this unit
respond to?"; this page answers "what did the network see in *my* photo?" with the same units.

The work is one function of (model, photo, settings) that writes its images into a folder and
returns a JSON-able manifest, so the explorer's job queue runs it and a page shows the manifest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..core.engine import activations
from ..core.errors import FeaturevisError
from ..core.heatmaps import overlay
from ..core.images import fit_size, save_image
from ..core.layers import spread
from ..core.model import LOGITS, FeatureModel
from ..recipes.caricature import caricature
from ..recipes.groups import groups as neuron_groups
from .build import _safe
from .store import CatalogStore

#: Manifest file written beside an explanation's images.
MANIFEST = "explain.json"


@dataclass(frozen=True)
class ExplainSettings:
    """What one explanation computes; every number bounded by the explorer's form."""

    layers: tuple[str, ...]  #: layers to rank channels in (spatial maps only)
    top: int = 8  #: channels shown per layer
    size: int = 160  #: the photo's longest side while explaining
    groups_layer: str | None = None  #: where to factor the photo into neuron groups (None: skip)
    groups: int = 5
    caricature_layer: str | None = None  #: the caricature's layer (None: skip)
    steps: int = 128  #: optimization steps of the group and caricature renders
    seed: int = 0

    def total_steps(self) -> int:
        """Progress units: one per layer ranked, plus each render's steps."""
        return len(self.layers) + self.steps * ((self.groups_layer is not None) + (self.caricature_layer is not None))


def check_settings(model: FeatureModel, s: ExplainSettings) -> None:
    """Every layer exists and has a spatial map at the working size: one line before any work."""
    if not s.layers and s.groups_layer is None and s.caricature_layer is None:
        raise FeaturevisError("nothing to explain: give at least one layer")
    for layer in {*s.layers, s.groups_layer, s.caricature_layer} - {None}:
        model.check_layer(layer)
        shape = model.layer_shape(layer, s.size)
        if len(shape) != 3:
            raise FeaturevisError(f"layer {layer!r} has no spatial map (shape {tuple(shape)}): choose a C×H×W layer")
        if s.groups_layer == layer and not 1 <= s.groups <= shape[0]:
            raise FeaturevisError(f"groups must be 1..{shape[0]} for {layer}, not {s.groups}")


def _heat(photo: torch.Tensor, amap: torch.Tensor) -> torch.Tensor:
    """``amap`` (h×w, any sign) as a colour heat map over ``photo``: where it is positive."""
    return overlay(photo, amap.clamp_min(0))


def explain_photo(
    model: FeatureModel,
    photo: torch.Tensor,
    s: ExplainSettings,
    out: str | Path,
    *,
    catalog: tuple[CatalogStore, str] | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict:
    """Explain ``photo`` (``1×3×H×W`` in [0, 1]) and write the images and ``explain.json`` in ``out``.

    Args:
        catalog: a readable store and run: top channels then link to, and show, that run's
            renders of them (where the run catalogued that layer).
        on_step: called with the progress so far (see :meth:`ExplainSettings.total_steps`); the
            explorer's job raises there to cancel.
    Returns:
        The manifest: file names relative to ``out`` and the figures shown.
    """
    check_settings(model, s)
    out = Path(out)
    done = 0

    def tick(n: int = 1) -> None:
        nonlocal done
        done += n
        if on_step is not None:
            on_step(done)

    photo = fit_size(photo, s.size, enlarge=True).to(model.device)
    save_image(photo[0], out / "photo.png")
    manifest: dict = dict(photo="photo.png", size=list(photo.shape[-2:]), layers=[], settings=asdict(s))
    if catalog is not None:
        manifest["run"] = catalog[1]
    with torch.no_grad():
        acts = activations(model, photo, {*s.layers, LOGITS})
    probs = acts[LOGITS].flatten(1).softmax(-1)[0] if acts[LOGITS].dim() >= 2 else None
    if probs is not None and probs.numel() > 1:
        p, idx = probs.topk(min(5, probs.numel()))
        manifest["prediction"] = [
            dict(cls=int(i), name=model.class_name(int(i)), p=float(v)) for v, i in zip(p, idx, strict=True)
        ]
    for layer in s.layers:
        a = acts[layer][0].float().cpu()  # C×h×w
        means = a.flatten(1).mean(1)
        top = means.topk(min(s.top, len(means))).indices.tolist()
        stored = _catalog_channels(catalog, layer)
        entries = []
        for rank, ch in enumerate(top):
            name = f"{_safe(layer)}-{ch}.jpg"
            save_image(_heat(photo.cpu(), a[ch]), out / name, quality=88)
            entries.append(
                dict(
                    rank=rank,
                    channel=ch,
                    mean=float(means[ch]),
                    max=float(a[ch].max()),
                    map=name,
                    vis=stored.get(ch),
                )
            )
        where = f"{_safe(layer)}-norm.jpg"
        save_image(_heat(photo.cpu(), a.norm(dim=0)), out / where, quality=88)
        manifest["layers"].append(
            dict(
                layer=layer,
                channels=len(means),
                hw=list(a.shape[-2:]),
                norm=where,
                top=entries,
                catalogued=bool(stored),
            )
        )
        tick()
    if s.groups_layer is not None:
        g = neuron_groups(
            model, photo, s.groups_layer, groups=s.groups, steps=s.steps, seed=s.seed, progress=False,
            on_step=lambda: tick(),
        )  # fmt: skip
        items = []
        for i in range(len(g.maps)):
            save_image(g.overlay(i)[0], out / f"group-{i}.jpg", quality=88)
            save_image(g.images[i], out / f"group-{i}-vis.png")
            items.append(
                dict(map=f"group-{i}.jpg", vis=f"group-{i}-vis.png", share=float(g.maps[i].sum() / g.maps.sum()))
            )
        save_image(g.image, out / "groups.jpg", quality=90)
        manifest["groups"] = dict(layer=s.groups_layer, error=float(g.error), panel="groups.jpg", items=items)
    if s.caricature_layer is not None:
        c = caricature(
            model, photo, [s.caricature_layer], steps=s.steps, seed=s.seed, progress=False, on_step=lambda: tick()
        )
        save_image(c.images[0], out / "caricature.png")
        manifest["caricature"] = dict(
            layer=s.caricature_layer, image="caricature.png", cosine_start=c.cosine_start[0], cosine=c.cosine[0]
        )
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _catalog_channels(catalog: tuple[CatalogStore, str] | None, layer: str) -> dict[int, str]:
    """The run's rendered channels of ``layer``: channel -> visualization file (catalog-relative)."""
    if catalog is None:
        return {}
    store, run = catalog
    return {int(r["channel"]): r["vis"] for r in store.channels(run, layer)}


def default_layers(names: Sequence[str], n: int = 4) -> list[str]:
    """Up to ``n`` of a catalog's layers (in order), spread from the first to the last."""
    return spread(names, n)
