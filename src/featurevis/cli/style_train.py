"""``featurevis style-train``: train a small network (Johnson et al.) that applies one style in
one pass; ``style-apply`` uses it."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.images import load_image
from ..core.photos import load_folder
from ..recipes.fast_style import check_net_path, train_style_net
from .args import (
    add_batch,
    add_common,
    add_model,
    add_output,
    add_size,
    add_steps,
    model_from_args,
    positive_float,
    positive_int,
)
from .style import add_style_options


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("style", help="the style image")
    p.add_argument("--images", default=None, help="folder of training photos (default: scikit-image samples)")
    add_output(
        p,
        "network file, .pt (default STYLE-net.pt)",
        lambda args: f"{Path(args.style).stem}-net.pt",
        lambda path, args: check_net_path(path),
    )
    add_model(p, what="model for the losses (zoo, timm:NAME, clip:ARCH[:TAG])")
    p.add_argument("--minutes", type=positive_float, default=2.5, help="training time (default 2.5)")
    add_steps(p, "training steps (overrides --minutes)")
    add_size(p, "crop side in px (default %(default)s)", 128)
    add_batch(p, "crops per step (default %(default)s)", 4)
    add_style_options(p)
    p.add_argument("--width", type=positive_int, default=16, help="network width (default 16)")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    style = load_image(args.style)
    photos = load_folder(args.images) if args.images else None
    model = model_from_args(args)
    sn = train_style_net(
        model,
        style,
        photos,
        minutes=args.minutes,
        steps=args.steps,
        size=args.size,
        batch=args.batch,
        style_weight=args.style_weight,
        style_layers=args.style_layers,
        content_layer=args.content_layer,
        width=args.width,
        seed=args.seed,
        device=args.device,
        progress=args.progress,
    )
    sn.save(args.output)
    m = sn.meta
    print(
        f"wrote {args.output}: {m['steps']} steps in {m['seconds']:.0f} s, "
        f"loss {m['loss_start']:.3g} -> {m['loss_end']:.3g}{' (interrupted)' if m['interrupted'] else ''}"
    )
    return 130 if m["interrupted"] else 0
