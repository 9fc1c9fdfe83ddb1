"""``featurevis style-apply``: stylize a photo in one pass with a ``style-train`` network."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..core.engine import resolve_device
from ..core.images import load_image, save_image
from ..recipes.fast_style import load_style_net, stylize
from .args import add_device, add_output, add_size


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("network", help="a network file from `featurevis style-train`")
    p.add_argument("photo", help="the photo to stylize")
    add_output(p, "output image (default PHOTO-fast-style.png)", lambda args: f"{Path(args.photo).stem}-fast-style.png")
    add_size(p, "longest side in px (default: the photo's)", square=False)
    add_device(p)


def run(args: argparse.Namespace) -> int:
    sn = load_style_net(args.network)
    sn.net.to(resolve_device(args.device))
    photo = load_image(args.photo)
    t0 = time.perf_counter()
    img = stylize(sn, photo, args.size)
    save_image(img, args.output)
    print(f"wrote {args.output} ({img.shape[-1]}x{img.shape[-2]}) in {time.perf_counter() - t0:.2f} s")
    return 0
