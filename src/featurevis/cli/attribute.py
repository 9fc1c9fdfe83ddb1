"""``featurevis attribute``: which pixels, places and hidden channels drive any objective on a photo."""

from __future__ import annotations

import argparse
from contextlib import ExitStack
from pathlib import Path

from ..core.images import load_image
from ..recipes.attribution import (
    BASELINES,
    CURVE_STEPS,
    DEFAULT_NOISE,
    DEFAULT_STEPS,
    DEFAULT_TOP,
    METHODS,
    PATCH,
    RANDOM,
    RAW,
    REPLACEMENTS,
    VIS_SIZE,
    VIS_STEPS,
    ChannelLookup,
    attribute,
)
from .args import (
    add_common,
    add_model,
    add_output,
    add_size,
    add_steps,
    model_from_args,
    non_negative_int,
    positive_int,
    probability,
)

#: Short spellings of the methods on the command line.
ALIASES = {"grad": "gradient", "gxi": "grad_x_input", "ig": "integrated_gradients"}


def method_list(text: str) -> list[str]:
    """``gradient,ig``: attribution methods (full names or grad, gxi, ig), comma-separated."""
    names = [ALIASES.get(t.strip(), t.strip()) for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in METHODS]
    if bad or not names:
        choices = ", ".join([*METHODS, *ALIASES])
        raise argparse.ArgumentTypeError(f"unknown method {bad[0] if bad else text!r}: choose from {choices}")
    return names


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to explain")
    p.add_argument(
        "target",
        nargs="?",
        default=None,
        help="TARGET to explain: class:285, _blocks.8:12, a neuron, a direction, sums (default: the top class)",
    )
    add_model(p)
    p.add_argument(
        "-l", "--layers", default=None, help="LAYER[,LAYER...] for Grad-CAM and channel ranking (default: one chosen)"
    )
    p.add_argument(
        "--method",
        type=method_list,
        default=list(METHODS),
        help="pixel methods: gradient, grad_x_input (gxi), integrated_gradients (ig), comma-separated (default all)",
    )
    p.add_argument(
        "--smooth", metavar="N", type=non_negative_int, default=0, help="SmoothGrad over N noisy copies (default off)"
    )
    p.add_argument(
        "--noise", type=probability, default=DEFAULT_NOISE, help="SmoothGrad noise, fraction of range (default 0.15)"
    )
    p.add_argument(
        "--top", metavar="K", type=positive_int, default=DEFAULT_TOP, help="channels shown per layer (default 8)"
    )
    add_steps(p, f"integrated-gradients steps (default {DEFAULT_STEPS})", DEFAULT_STEPS)
    p.add_argument(
        "--baseline",
        choices=BASELINES,
        default="zero",
        help="integrated gradients' start: zero (the preprocessing's zero point) or black (default zero)",
    )
    add_size(
        p, "longest side in px (default: the model's input size; 0: the photo's own)", None, zero=True, square=False
    )
    p.add_argument("--vis-size", metavar="PX", type=positive_int, default=VIS_SIZE, help="channel pictures' side")
    p.add_argument(
        "--vis-steps", metavar="N", type=non_negative_int, default=VIS_STEPS, help="their render steps (0: none)"
    )
    p.add_argument("--catalog", metavar="DIR", default=None, help="take channel pictures from this catalog")
    p.add_argument(
        "--faithfulness", action="store_true", help="print deletion / insertion AUCs of every map and baseline"
    )
    p.add_argument("--replace", choices=REPLACEMENTS, default="mean", help="what deleted pixels become (default mean)")
    p.add_argument("--patch", metavar="PX", type=positive_int, default=PATCH, help="deletion squares' side")
    add_output(
        p, "panel image (default PHOTO-attribution.png)", lambda args: f"{Path(args.photo).stem}-attribution.png"
    )
    add_common(p)


def catalog_lookup(stack: ExitStack, folder: str, model: str) -> ChannelLookup | None:
    """Channel pictures from the catalog in ``folder`` for ``model`` (newest run first), or
    ``None`` with a note when it holds no run of that model."""
    from ..catalog.store import CatalogStore

    store = stack.enter_context(CatalogStore(folder, readonly=True))
    runs = [r["run"] for r in reversed(store.runs()) if r["model"] == model]
    if not runs:
        print(f"note: the catalog in {folder} has no run of {model}; rendering the channels")
        return None

    def lookup(layer: str, channel: int):
        for run in runs:
            row = store.channel(run, layer, channel)
            if row is not None:
                lookup.found += 1
                return load_image(store.folder / row["vis"])
        return None

    lookup.found = 0

    return lookup


def run(args: argparse.Namespace) -> int:
    photo = load_image(args.photo)
    model = model_from_args(args)
    with ExitStack() as stack:
        lookup = catalog_lookup(stack, args.catalog, model.name) if args.catalog else None
        r = attribute(
            model,
            photo,
            args.target,
            layers=args.layers,
            methods=args.method,
            smooth=args.smooth,
            noise=args.noise,
            top=args.top,
            steps=args.steps,
            size=args.size or (None if args.size is None else max(photo.shape[-2:])),
            baseline=args.baseline,
            vis_size=args.vis_size,
            vis_steps=args.vis_steps,
            channel_lookup=lookup,
            seed=args.seed,
            device=args.device,
            progress=args.progress,
        )
    r.save(args.output)
    print(f"{r.target} = {r.value:.4g}")
    if "integrated_gradients" in r.pixel_maps:
        total = float(r.pixel_maps["integrated_gradients"].sum())
        print(
            f"integrated gradients sum to {total:.4g}; f(photo) - f({r.baseline} baseline) = "
            f"{r.value - r.baseline_value:.4g}"
        )
    for layer, ranked in r.top_channels.items():
        listed = ", ".join(f"{c} ({s:+.3g})" for c, s in ranked)
        print(f"{layer}: top channels by gradient x activation: {listed}")
    if lookup is not None:
        shown = sum(len(v) for v in r.channel_images.values())
        print(f"channel pictures: {lookup.found} from the catalog, {shown - lookup.found} rendered")
    note = " (interrupted)" if r.interrupted else ""
    print(f"wrote {args.output}{note}")
    if args.faithfulness and r.interrupted:
        print("faithfulness skipped: interrupted")
    elif args.faithfulness:
        kw = dict(steps=CURVE_STEPS, replace=args.replace, patch=args.patch)
        curves = r.faithfulness(**kw)
        print(f"faithfulness ({args.replace} replacement, {args.patch}-px squares, {CURVE_STEPS} steps):")
        print(f"  {'map':<28} deletion AUC (lower better)  insertion AUC (higher better)")
        for name, c in curves.items():
            tag = "  (baseline)" if name in (RANDOM, RAW) or (name == "gradient" and not r.settings["smooth"]) else ""
            print(f"  {name:<28} {c.deletion_auc:>8.3f}{'':<20} {c.insertion_auc:>8.3f}{tag}")
    return 130 if r.interrupted else 0
