"""``featurevis dream``: DeepDream on a photo (octaves, tiles, guide, mask), or a zoom video."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from ..core.images import load_image, save_image
from ..recipes.dream import DEFAULT_LAYER, check_video_writable, dream, dream_terms, dream_zoom, load_mask, save_video
from .args import (
    add_common,
    add_model,
    add_output,
    add_steps,
    fraction,
    image_file,
    model_from_args,
    positive_float,
    positive_int,
)


def _save_kwargs(photo: Path, out: Path) -> dict:
    """Keep the photo's EXIF (camera, date...) with orientation reset: the pixels are upright."""
    kwargs: dict = {"quality": 95} if out.suffix.lower() in (".jpg", ".jpeg", ".webp") else {}
    if out.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
        return kwargs
    try:
        with Image.open(photo) as im:
            exif = im.getexif()
    except OSError:
        return kwargs
    if len(exif):
        exif[0x0112] = 1  # Orientation: the pixels were already turned upright
        kwargs["exif"] = exif.tobytes()
    return kwargs


def _default_output(args: argparse.Namespace) -> str:
    """PHOTO-dream in the photo's format when Pillow can write it (a .gif for a zoom video)."""
    photo = Path(args.photo)
    suffix = photo.suffix.lower()
    if args.frames is not None:
        suffix = ".gif"
    elif Image.registered_extensions().get(suffix) not in Image.SAVE:
        suffix = ".png"
    return f"{photo.stem}-dream{suffix}"


def _frames_dir(out: Path) -> Path:
    return out.with_name(f"{out.stem}_frames")


def _check_output(out: Path, args: argparse.Namespace) -> None:
    """An image; for a zoom video, a .gif/.mp4 and its folder of frames."""
    if args.frames is None:
        image_file(out)
    else:
        check_video_writable(out)
        image_file(_frames_dir(out) / "frame_0000.png")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to dream on (any size; JPEG, PNG, ...)")
    add_model(p)
    p.add_argument(
        "-l",
        "--layers",
        default=None,
        help=f"LAYER[=W][,LAYER[=W]...] or a TARGET like _blocks.8:12 or class:285 (default {DEFAULT_LAYER})",
    )
    add_output(
        p,
        "output image (default PHOTO-dream.<same format>; .gif or .mp4 with --frames)",
        _default_output,
        _check_output,
    )
    p.add_argument("--octaves", type=positive_int, default=4, help="number of scales (default 4)")
    p.add_argument("--octave-scale", type=positive_float, default=1.4, help="ratio between scales (default 1.4)")
    add_steps(p, "steps per octave (default %(default)s)", 10)
    p.add_argument("--step-size", type=fraction, default=0.01, help="mean pixel change per step, (0, 1] (default 0.01)")
    p.add_argument("--tile", type=positive_int, default=512, help="tile side in px; bounds memory (default 512)")
    p.add_argument("--guide", default=None, help="guide image: pull the photo toward its features")
    p.add_argument("--mask", default=None, help="mask image: white dreams, black keeps the photo")
    p.add_argument("--frames", type=positive_int, default=None, help="zoom sequence of N frames (-o .gif or .mp4)")
    p.add_argument("--zoom", type=positive_float, default=1.05, help="zoom per frame (default 1.05)")
    p.add_argument("--fps", type=positive_float, default=12.0, help="frames per second of the video (default 12)")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    photo_path, out = Path(args.photo), args.output
    photo = load_image(photo_path)
    guide = load_image(args.guide) if args.guide else None
    mask = load_mask(args.mask, tuple(photo.shape[-2:])) if args.mask else None
    model = model_from_args(args)
    dream_terms(model, args.layers)  # unknown layers fail here, before the guide's features
    kwargs = dict(
        octaves=args.octaves,
        octave_scale=args.octave_scale,
        steps=args.steps,
        step_size=args.step_size,
        tile=args.tile,
        guide=guide,
        mask=mask,
    )
    if args.frames is not None:
        frames_dir = _frames_dir(out)

        def write_frame(i: int, frame: torch.Tensor) -> None:
            save_image(frame, frames_dir / f"frame_{i:04d}.png")

        frames = dream_zoom(
            model,
            photo,
            args.frames,
            zoom=args.zoom,
            layers=args.layers,
            seed=args.seed,
            on_frame=write_frame,
            progress=args.progress,
            **kwargs,
        )
        if frames:
            save_video(frames, out, fps=args.fps)
        interrupted = len(frames) < args.frames
        print(f"wrote {out} and {len(frames)} frames in {frames_dir}{' (interrupted)' if interrupted else ''}")
        return 130 if interrupted else 0
    result = dream(model, photo, args.layers, seed=args.seed, progress=args.progress, **kwargs)
    result.save(out, **_save_kwargs(photo_path, out))
    note = " (interrupted)" if result.interrupted else ""
    change = f"{result.gain:.1f}x" if result.before > 0 else f"{result.after - result.before:+.3g}"
    print(
        f"wrote {out}{note}: {result.objective} {result.before:.3g} -> {result.after:.3g} "
        f"({change}) in {result.seconds:.1f} s"
    )
    return 130 if result.interrupted else 0
