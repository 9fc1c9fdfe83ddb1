"""The `fast_style` command."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..core.engine import resolve_device
from ..core.images import check_writable, load_image, save_image
from ..core.photos import load_folder
from ..recipes.fast_style import _check_net_path, load_style_net, stylize, train_style_net
from ..zoo import DEFAULT_MODEL
from .args import _positive, _positive_float, add_common, command, model_from_args


def _train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("style", help="the style image")
    p.add_argument("--images", default=None, help="folder of training photos (default: scikit-image samples)")
    p.add_argument("-o", "--output", default=None, help="network file (default STYLE-net.pt)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"zoo model for the losses (default {DEFAULT_MODEL})")
    p.add_argument("--minutes", type=_positive_float, default=2.5, help="training time (default 2.5)")
    p.add_argument("--steps", type=_positive, default=None, help="training steps (overrides --minutes)")
    p.add_argument("--size", type=_positive, default=128, help="crop side in px (default 128)")
    p.add_argument("--batch", type=_positive, default=4, help="crops per step (default 4)")
    p.add_argument("--style-weight", type=_positive_float, default=10.0, help="style vs content (default 10)")
    p.add_argument("--content-layer", default=None, help="content layer (default as in `featurevis style`)")
    p.add_argument("--style-layers", default=None, help="comma-separated style layers")
    p.add_argument("--width", type=_positive, default=16, help="network width (default 16)")
    add_common(p)


@command("style-train", "fast style: train a small network to apply one style in one pass", _train_args)
def run_style_train(args: argparse.Namespace) -> int:

    style_path = Path(args.style)
    out = _check_net_path(args.output or f"{style_path.stem}-net.pt")
    style = load_image(style_path)
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
        progress=not args.quiet,
    )
    sn.save(out)
    m = sn.meta
    print(
        f"wrote {out}: {m['steps']} steps in {m['seconds']:.0f} s, loss {m['loss_start']:.3g} -> {m['loss_end']:.3g}"
        f"{' (interrupted)' if m['interrupted'] else ''}"
    )
    return 130 if m["interrupted"] else 0


def _apply_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="a network file from `featurevis style-train`")
    p.add_argument("photo", help="the photo to stylize")
    p.add_argument("-o", "--output", default=None, help="output image (default PHOTO-fast-style.png)")
    p.add_argument("--size", type=_positive, default=None, help="longest side in px (default: the photo's)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 or auto (default)")


@command("style-apply", "fast style: stylize a photo in one pass with a trained network", _apply_args)
def run_style_apply(args: argparse.Namespace) -> int:
    photo_path = Path(args.photo)
    out = Path(args.output) if args.output else Path(f"{photo_path.stem}-fast-style.png")
    check_writable(out)
    sn = load_style_net(args.network)
    sn.net.to(resolve_device(args.device))
    photo = load_image(photo_path)
    t0 = time.perf_counter()
    img = stylize(sn, photo, args.size)
    save_image(img, out)
    print(f"wrote {out} ({img.shape[-1]}x{img.shape[-2]}) in {time.perf_counter() - t0:.2f} s")
    return 0
