"""Browsing: the catalogs, a run's layers, a layer's channel grid, one channel, and search."""

import json
import math
import sqlite3
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ...core.errors import unknown
from ..store import SCORE_COLUMNS, SCORES
from .state import SCORE_LABELS, ExplorerDep, Problem, fmt, units

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def home(request: Request, ex: ExplorerDep):
    with ex.store() as s:
        runs = s.runs()
    return ex.page(request, "index.html", "catalogs", folder=ex.root.name, runs=runs)


@router.get("/run/{run}", response_class=HTMLResponse)
def run_page(request: Request, ex: ExplorerDep, run: str):
    with ex.store() as s:
        row = ex.run(s, run)
        layers = units(s, run)
        previews = {r["layer"]: s.channels(run, r["layer"])[:6] for r in layers}
    crumbs = [(row["model"], f"/run/{run}")]
    return ex.page(
        request, "run.html", row["model"], crumbs, {"up": "/"}, row=row, run=run, layers=layers, previews=previews
    )


#: What the layer grid can be sorted by: the channel number, or one of the fidelity scores.
SORT_KEYS = ("channel", *SCORE_COLUMNS)


@router.get("/run/{run}/layer/{layer}", response_class=HTMLResponse)
def layer_page(
    request: Request,
    ex: ExplorerDep,
    run: str,
    layer: str,
    sort: str = "channel",
    order: str = "",
    low: Annotated[str, Query(alias="min")] = "",
):
    """The layer's channel grid, in channel order or sorted by a score (``?sort=mis&order=desc``),
    optionally only the channels whose sorting score is at least ``min``."""
    if sort not in SORT_KEYS:
        raise Problem(400, str(unknown("sort key", sort, SORT_KEYS)))
    order = order or ("asc" if sort == "channel" else "desc")
    if order not in ("asc", "desc"):
        raise Problem(400, f"order must be asc or desc, got {order!r}")
    low = _finite(low, "min") if low.strip() else None
    if low is not None and sort == "channel":
        raise Problem(400, "min filters by a score: choose one to sort by first")
    with ex.store() as s:
        row = ex.run(s, run)
        info, layers = ex.layer(s, run, layer)
        chans = {c["channel"]: c for c in s.channels(run, layer)}
        scores = {ch: r for (_, ch), r in s.scores(run, layer).items()}
    grid = list(range(info["channels"]))
    if sort != "channel":
        scored = [ch for ch in grid if scores.get(ch) is not None and scores[ch][sort] is not None]
        scored.sort(key=lambda ch: scores[ch][sort], reverse=order == "desc")
        if low is not None:
            scored = [ch for ch in scored if scores[ch][sort] >= low]
        # channels without this score (not applicable, or not scored yet) go last, unless filtered out
        grid = scored + ([] if low is not None else [ch for ch in grid if ch not in scored])
    elif order == "desc":
        grid.reverse()
    names = [r["layer"] for r in layers]
    i = names.index(layer)
    base = f"/run/{run}/layer/"
    nav = {
        "prev": base + names[i - 1] if i > 0 else "",
        "next": base + names[i + 1] if i + 1 < len(names) else "",
        "up": f"/run/{run}",
    }
    crumbs = [(row["model"], f"/run/{run}"), (layer, base + layer)]
    view = dict(sort=sort, order=order, min="" if low is None else f"{low:g}", labels=SCORE_LABELS)
    title = f"{info['of']} {info['atoms']}" if info["atoms"] else layer
    context = dict(layer=layer, info=info, chans=chans, scores=scores, grid=grid, view=view, base=base + layer)
    return ex.page(request, "layer.html", title, crumbs, nav, heading=title, fit=_fit(info), **context)


def _fit(info: dict) -> list[tuple[str, str]]:
    """A set of atoms' fit, as its pages show it (nothing for a layer)."""
    if not info["fit"]:
        return []
    st, f = info["fit"]["settings"], info["fit"]["figures"]
    rows = [
        (
            "method",
            f"{st['method'].upper()}, k={st['k']}" + (f", {st['topk']} active per sample" if "topk" in st else ""),
        ),
        ("fitted on", f"{f['samples']} positions of {f['images']} images and {f['crops']} random crops"),
        ("relative reconstruction error", fmt(f["error"])),
        ("explained variance", fmt(f["explained_variance"])),
    ]
    if "sae_loss" in f:
        rows.append(("SAE loss (normalized MSE, last steps)", fmt(f["sae_loss"])))
        rows.append(("dead latents", str(f["dead"])))
    rows.append(("objective", f"direction in {st['layer']}, cosine-weighted (power {info['fit']['cossim_pow']:g})"))
    return rows


def _finite(text: str, name: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise Problem(400, f"{name} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(v):
        raise Problem(400, f"{name} must be a finite number, got {text[:40]!r}")
    return v


@router.get("/run/{run}/layer/{layer}/{channel}", response_class=HTMLResponse)
def channel_page(request: Request, ex: ExplorerDep, run: str, layer: str, channel: int):
    with ex.store() as s:
        row = ex.run(s, run)
        info, _ = ex.layer(s, run, layer)
        if not 0 <= channel < info["channels"]:
            raise Problem(404, f"channel {channel} out of range: {layer} has channels 0..{info['channels'] - 1}")
        c = s.channel(run, layer, channel)
        examples = s.examples(run, layer, channel) if c else []
        score = s.scores(run, layer).get((layer, channel)) if c else None
    base = f"/run/{run}/layer/{layer}"
    nav = {
        "prev": f"{base}/{channel - 1}" if channel > 0 else "",
        "next": f"{base}/{channel + 1}" if channel + 1 < info["channels"] else "",
        "up": base,
    }
    crumbs = [(row["model"], f"/run/{run}"), (layer, base), (str(channel), f"{base}/{channel}")]
    again = "" if info["atoms"] else f"/new?run={run}&layer={layer}&channel={channel}"
    title = f"{info['of']} {info['atoms'][:-1]} {channel}" if info["atoms"] else f"{layer}:{channel}"
    if c is None:
        return ex.page(request, "channel_missing.html", title, crumbs, nav, layer=layer, channel=channel, again=again)
    images = [e for e in examples if e["kind"] == "image"]
    crops = [e for e in examples if e["kind"] == "crop"]
    bottom = [e for e in examples if e["kind"] == "bottom"]
    figures = json.loads(c["figures"])
    diversity = list(zip(json.loads(c["diversity"]), figures.get("diversity_activations", []), strict=False))
    context = dict(
        layer=layer, channel=channel, again=again, c=c, images=images, crops=crops, bottom=bottom, diversity=diversity
    )
    context["scores"] = _scores(score)
    context["folder"] = ex.root.name
    table = _figures(c, figures, images, row["settings"])
    if info["atoms"]:
        table = _atom_figures(figures) + _fit(info) + [t for t in table[1:] if not t[0].startswith("negative")]
    return ex.page(
        request, "channel.html", title, crumbs, nav, figures=table, heading=title, atom=bool(info["atoms"]), **context
    )


def _atom_figures(figures: dict) -> list[tuple[str, str]]:
    """What an atom's visualization achieves: its objective and how closely it points along the atom."""
    return [
        ("achieved objective (cosine-weighted projection)", fmt(figures.get("activation"))),
        ("mean cosine to its own atom", fmt(figures.get("own_cosine"))),
        ("highest mean cosine to another atom", fmt(figures.get("best_other_cosine"))),
    ]


def _scores(score: sqlite3.Row | None) -> list[tuple[str, str, str]] | None:
    """The channel page's fidelity scores: (label, value, what it means); ``None`` when the
    channel has not been scored yet."""
    if score is None:
        return None
    return [(label, "not applicable" if score[key] is None else fmt(score[key]), what) for key, label, what in SCORES]


def _figures(c: sqlite3.Row, figures: dict, images: list[sqlite3.Row], settings: str) -> list[tuple[str, str]]:
    """The channel page's table: what the images achieve, and how they were made."""
    st = json.loads(settings)
    return [
        ("achieved activation (mean over positions)", fmt(c["activation"])),
        ("best dataset image (mean over positions)", fmt(images[0]["value"]) if images else "–"),
        ("max activation over the dataset (one position)", fmt(c["dataset_max"])),
        ("negative image's activation", fmt(c["negative_activation"])),
        ("seed", str(c["seed"])),
        ("render time per channel (shard time / channels)", f"{c['seconds']:.2f} s"),
        ("shard", f"{figures.get('shard_channels')} channels in {figures.get('shard_seconds', 0):.1f} s"),
        ("settings", ", ".join(f"{k}={v}" for k, v in st.items() if k not in ("model", "dataset"))),
    ]


@router.get("/search")
def search(ex: ExplorerDep, q: str = "", run: str | None = None):
    """Jump to a layer (``_blocks.8``) or a channel (``_blocks.8:12``), in ``run`` or the newest run
    that has the layer."""
    q = q.strip()
    if not q or len(q) > 200:
        raise Problem(400, "search for a layer (_blocks.8) or a channel (_blocks.8:12)")
    layer, _, ch = q.partition(":")
    with ex.store() as s:
        runs = [run] if run else [r["run"] for r in reversed(s.runs())]
        for r in runs:
            ex.run(s, r)
            if layer in (x["layer"] for x in units(s, r)):
                if not ch:
                    return RedirectResponse(f"/run/{r}/layer/{layer}", status_code=303)
                if not ch.strip().isdigit():
                    raise Problem(400, f"channel must be a number, got {ch!r}")
                return RedirectResponse(f"/run/{r}/layer/{layer}/{int(ch)}", status_code=303)
        known = sorted({x["layer"] for r in runs for x in units(s, r)})
    raise Problem(404, str(unknown("layer", layer, known)) if known else "no layers in this catalog")
