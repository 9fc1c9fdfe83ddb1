"""Browsing: the catalogs, a run's layers, a layer's channel grid, one channel, and search."""

import json
import sqlite3

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ...core.errors import unknown
from .state import ExplorerDep, Problem, fmt, units

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


@router.get("/run/{run}/layer/{layer}", response_class=HTMLResponse)
def layer_page(request: Request, ex: ExplorerDep, run: str, layer: str):
    with ex.store() as s:
        row = ex.run(s, run)
        info, layers = ex.layer(s, run, layer)
        chans = {c["channel"]: c for c in s.channels(run, layer)}
    names = [r["layer"] for r in layers]
    i = names.index(layer)
    base = f"/run/{run}/layer/"
    nav = {
        "prev": base + names[i - 1] if i > 0 else "",
        "next": base + names[i + 1] if i + 1 < len(names) else "",
        "up": f"/run/{run}",
    }
    crumbs = [(row["model"], f"/run/{run}"), (layer, base + layer)]
    title = f"{info['of']} {info['atoms']}" if info["atoms"] else layer
    context = dict(layer=layer, info=info, chans=chans, base=base + layer, heading=title, fit=_fit(info))
    return ex.page(request, "layer.html", title, crumbs, nav, **context)


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


@router.get("/run/{run}/layer/{layer}/{channel}", response_class=HTMLResponse)
def channel_page(request: Request, ex: ExplorerDep, run: str, layer: str, channel: int):
    with ex.store() as s:
        row = ex.run(s, run)
        info, _ = ex.layer(s, run, layer)
        if not 0 <= channel < info["channels"]:
            raise Problem(404, f"channel {channel} out of range: {layer} has channels 0..{info['channels'] - 1}")
        c = s.channel(run, layer, channel)
        examples = s.examples(run, layer, channel) if c else []
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
    figures = json.loads(c["figures"])
    diversity = list(zip(json.loads(c["diversity"]), figures.get("diversity_activations", []), strict=False))
    context = dict(layer=layer, channel=channel, again=again, c=c, images=images, crops=crops, diversity=diversity)
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
