"""``featurevis layers``: a model's layer names and output shapes, the names TARGETs use."""

from __future__ import annotations

import argparse

from .args import add_model, add_size, load_model_arg


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model(p, positional=True)
    add_size(p, "input size for the shapes (default: the model's)")
    p.add_argument("--all", action="store_true", help="every module, not only the top two levels")


def run(args: argparse.Namespace) -> int:
    model = load_model_arg(args.model, args.weights)
    infos = model.layers(args.size)  # a bad --size fails before anything is printed
    size = args.size or model.input_size
    fixed = f"; the network takes {model.fixed_size[0]} px, other sizes are resized" if model.fixed_size else ""
    syntax = "LAYER, LAYER:CHANNEL, LAYER:CHANNEL@X,Y or class:N"
    if model.tokens is not None:
        syntax += "; tokens: LAYER:FEATURE (patch mean), LAYER:FEATURE@cls, ATTENTION:head=H"
    if model.text_encoder is not None:
        syntax += ', text:"a photo of a dog" (CLIP)'
    print(f"{model.name} at {size} px{fixed}; TARGET = {syntax}")
    print(f"{'layer':<32} {'type':<16} {'channels, map':<18} layout")
    for info in infos:
        if not args.all and info.name.count(".") > 1 and info.name != model.default_layer:
            continue
        reused = f"  (runs {info.calls}x; first call is captured)" if info.calls > 1 else ""
        print(f"{info.name:<32} {info.kind:<16} {info.shape!s:<18} {info.describe()}{reused}")
    n = len(model.labels) if model.labels else "?"
    print(f"{'logits':<32} {'output':<16} ({n},)")
    return 0
