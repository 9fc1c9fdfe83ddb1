"""The `dream` command."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from ..core.images import check_writable, load_image, save_image
from ..recipes.dream import DEFAULT_LAYER, _check_video_writable, _objective, dream, dream_zoom, load_mask, save_video
from ..zoo import DEFAULT_MODEL
from .args import _positive, _positive_float, add_common, command, model_from_args


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


def _default_output(photo: Path, video: bool) -> Path:
    suffix = photo.suffix.lower()
    if video:
        suffix = ".gif"
    elif Image.registered_extensions().get(suffix) not in Image.SAVE:
        suffix = ".png"
    return Path(f"{photo.stem}-dream{suffix}")


def _dream_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("photo", help="the photo to dream on (any size; JPEG, PNG, ...)")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help=f"zoo model (default {DEFAULT_MODEL})")
    p.add_argument(
        "-l",
        "--layers",
        default=None,
        help=f"LAYER[=W][,LAYER[=W]...] or a TARGET like _blocks.8:12 or class:285 (default {DEFAULT_LAYER})",
    )
    p.add_argument("-o", "--output", default=None, help="output image (default PHOTO-dream.<same format>)")
    p.add_argument("--octaves", type=_positive, default=4, help="number of scales (default 4)")
    p.add_argument("--octave-scale", type=_positive_float, default=1.4, help="ratio between scales (default 1.4)")
    p.add_argument("--steps", type=_positive, default=10, help="steps per octave (default 10)")
    p.add_argument("--step-size", type=_positive_float, default=0.01, help="pixel change per step (default 0.01)")
    p.add_argument("--tile", type=_positive, default=512, help="tile side in px; bounds memory (default 512)")
    p.add_argument("--guide", default=None, help="guide image: pull the photo toward its features")
    p.add_argument("--mask", default=None, help="mask image: white dreams, black keeps the photo")
    p.add_argument("--frames", type=_positive, default=None, help="zoom sequence of N frames (-o .gif or .mp4)")
    p.add_argument("--zoom", type=_positive_float, default=1.05, help="zoom per frame (default 1.05)")
    p.add_argument("--fps", type=_positive_float, default=12.0, help="frames per second of the video (default 12)")
    add_common(p)


@command("dream", "DeepDream: amplify what a layer detects in your photo", _dream_args)
def run_dream(args: argparse.Namespace) -> int:

    photo_path = Path(args.photo)
    video = args.frames is not None
    out = Path(args.output) if args.output else _default_output(photo_path, video)
    if video:
        _check_video_writable(out)
    else:
        check_writable(out)
    photo = load_image(photo_path)
    guide = load_image(args.guide) if args.guide else None
    mask = load_mask(args.mask, tuple(photo.shape[-2:])) if args.mask else None
    model = model_from_args(args)
    _objective(model, args.layers, None)  # unknown layers fail here, before the guide's features
    kwargs = dict(
        octaves=args.octaves,
        octave_scale=args.octave_scale,
        steps=args.steps,
        step_size=args.step_size,
        tile=args.tile,
        guide=guide,
        mask=mask,
    )
    if video:
        frames_dir = out.with_name(f"{out.stem}_frames")
        check_writable(frames_dir / "frame_0000.png")

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
            progress=not args.quiet,
            **kwargs,
        )
        if frames:
            save_video(frames, out, fps=args.fps)
        interrupted = len(frames) < args.frames
        print(f"wrote {out} and {len(frames)} frames in {frames_dir}{' (interrupted)' if interrupted else ''}")
        return 130 if interrupted else 0
    result = dream(model, photo, args.layers, seed=args.seed, progress=not args.quiet, **kwargs)
    result.save(out, **_save_kwargs(photo_path, out))
    note = " (interrupted)" if result.interrupted else ""
    change = f"{result.gain:.1f}x" if result.before > 0 else f"{result.after - result.before:+.3g}"
    print(
        f"wrote {out}{note}: {result.objective} {result.before:.3g} -> {result.after:.3g} "
        f"({change}) in {result.seconds:.1f} s"
    )
    return 130 if result.interrupted else 0
