"""``featurevis render``: a feature visualization of a channel, neuron, layer or class; with
``--prior dgn``, through a generator's code (DGN-AM)."""

from __future__ import annotations

import argparse

from ..core.errors import FeaturevisError
from ..recipes.render import ALPHA_WEIGHT, CLASS_STEPS, CLASSES, DEFAULT_STEPS, REDIRECT_STEPS
from .args import (
    add_batch,
    add_common,
    add_lr,
    add_model,
    add_output,
    add_save_size,
    add_size,
    add_steps,
    finite_float,
    fraction,
    int_list,
    model_from_args,
    non_negative_float,
    positive_float,
    positive_int,
    probability,
)


def _default_output(args: argparse.Namespace) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in args.target).strip("_")
    return f"featurevis-{safe or 'render'}.png"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..core.params import PARAMETERIZATIONS
    from ..core.transforms import TRANSFORMS

    add_model(p, positional=True)
    p.add_argument(
        "target",
        help='e.g. _blocks.8:12, _blocks.8:12@3,4, _blocks.8, class:285 or class:"Egyptian cat" '
        "(the class's log-odds; logit:285 renders the logit)",
    )
    add_output(p, "output PNG/JPG (default: derived from the target)", _default_output)
    add_size(p, "image side in px (default: the model's input size)")
    add_steps(p, f"steps (default {DEFAULT_STEPS}; a class on EfficientNet-Lite: {CLASS_STEPS}; dgn: 200)")
    add_batch(p, "images rendered together (a grid)", 1)
    add_lr(p, "learning rate (default 0.05; a Fourier class render 0.1; cppn 0.003; dgn 0.1)")
    p.add_argument("--param", choices=list(PARAMETERIZATIONS), default="fourier", help="parameterization")
    add_save_size(p, "cppn only: draw the result again at this side to save it")
    p.add_argument("--no-decorrelate", action="store_true", help="optimize RGB instead of decorrelated colour")
    p.add_argument(
        "--transforms",
        choices=["auto", *TRANSFORMS],
        help="default auto: patch for a vision transformer, else standard",
    )
    p.add_argument("--prior", choices=["dgn"], default=None, help="dgn: optimize a generator's code (DGN-AM)")
    p.add_argument("--generator", default=None, help="dgn: generator file (prior-train output or upconvGAN_fc6.pt)")
    p.add_argument("--bounds", default=None, help="dgn: per-unit upper code bounds (text or .pt file)")
    p.add_argument("--decay", type=positive_float, default=0.99, help="dgn: code multiplier per step (default 0.99)")
    p.add_argument("--restarts", type=positive_int, default=1, help="dgn: runs from different starts; keeps the best")
    p.add_argument("--init", default=None, help="dgn: start from this photo's code instead of noise")
    p.add_argument(
        "--schedule",
        choices=["constant", "cosine", "linear"],
        default=None,
        help="learning-rate schedule (default constant; dgn: linear)",
    )
    p.add_argument("--diversity", type=finite_float, default=0.0, help="weight of the batch diversity term")
    p.add_argument("--diversity-layer", default=None, help="layer the diversity term compares (default: auto)")
    p.add_argument("--negative", action="store_true", help="minimize the target instead")
    p.add_argument("--to", metavar="TARGET", help="interpolate from TARGET to this one across --frames images")
    p.add_argument("--frames", type=positive_int, default=None, help="--to: number of frames (default 6)")
    p.add_argument(
        "--alpha",
        type=finite_float,
        nargs="?",
        const=ALPHA_WEIGHT,
        default=None,
        metavar="W",
        help=f"RGBA: optimize an alpha channel over random backgrounds with opacity penalty W "
        f"(default {ALPHA_WEIGHT}) and write an RGBA PNG",
    )
    p.add_argument(
        "--no-redirect-relu",
        action="store_true",
        help="plain ReLU gradients from the start (default: redirected for the first 16 steps, for dead units)",
    )
    p.add_argument(
        "--skip-gradient",
        type=fraction,
        default=None,
        metavar="G",
        help="share of the gradient residual branches pass back, in (0, 1] (default: 0.5 for a class "
        "on EfficientNet-Lite or ResNet-50, for transfer; else 1, the true gradient)",
    )
    p.add_argument(
        "--stochastic-depth",
        type=probability,
        default=None,
        metavar="RATE",
        help="drop residual branches at random each step, up to RATE at the last block (default: 0.2 "
        "for a class on EfficientNet-Lite, as it was trained; else 0)",
    )
    p.add_argument(
        "--smooth-relu",
        type=non_negative_float,
        default=None,
        metavar="T",
        help="backpropagate ReLUs through a sigmoid gate of temperature T, the forward exact (default: 3 "
        "for a class on EfficientNet-Lite, for transfer; else 0, the true gradient)",
    )
    p.add_argument(
        "--average",
        type=probability,
        default=None,
        metavar="DECAY",
        help="draw the images from a moving average of the steps with this decay, in [0, 1) (default: 0.97 for "
        "a class, which other networks then read better; else 0, the last step)",
    )
    p.add_argument("--snapshots", type=int_list, default=[], help="also save images after these steps, e.g. 64,128")
    add_common(p)


def run(args: argparse.Namespace) -> int:
    from ..core.images import save_image
    from ..core.targets import parse_target
    from ..recipes.render import render

    if args.save_size and args.param != "cppn":
        raise FeaturevisError("--save-size needs --param cppn (only a CPPN can be drawn at another size)")
    if args.prior is None and (args.generator or args.bounds or args.init):
        raise FeaturevisError("--generator, --bounds and --init belong to --prior dgn")
    if args.alpha is not None and (args.prior or args.output.suffix.lower() != ".png"):
        raise FeaturevisError("--alpha writes an RGBA PNG: give -o NAME.png, and no --prior")
    if args.frames is not None and args.to is None:
        raise FeaturevisError("--frames belongs to --to TARGET (an interpolation)")
    if args.to is not None and (args.prior or args.batch != 1 or args.param != "fourier" or args.alpha is not None):
        raise FeaturevisError("--to renders its --frames as one Fourier batch: no --batch, --param, --alpha, --prior")
    several = "," in args.model  # -m lite0,lite1: one image, the TARGET summed over the models
    if several:
        if args.weights:
            raise FeaturevisError("--weights takes one model; each model of -m A,B loads its own weights")
        if args.prior or args.to is not None or args.negative:
            raise FeaturevisError("several models (-m A,B) render a plain TARGET: no --prior, --to or --negative")
        model, obj = args.model, args.target  # render() parses the target for each model
    else:
        model = model_from_args(args)
        # a DGN-AM render maximizes the logit, as Nguyen et al. do and as its figures were measured
        obj = parse_target(model, args.target, "logit" if args.prior == "dgn" else CLASSES)
        if args.negative:
            obj = -obj
    if args.prior == "dgn":
        result = _render_dgn(args, model, obj)
    elif args.to is not None:
        from ..recipes.render import interpolate

        result = interpolate(
            model,
            obj,
            parse_target(model, args.to, CLASSES),
            frames=args.frames or 6,
            size=args.size,
            diversity=args.diversity,
            diversity_layer=args.diversity_layer,
            steps=args.steps,
            lr=args.lr,
            seed=args.seed,
            decorrelate=not args.no_decorrelate,
            transforms=args.transforms or "auto",
            snapshots=args.snapshots,
            redirect_relu=0 if args.no_redirect_relu else REDIRECT_STEPS,
            skip_gradient=args.skip_gradient,
            stochastic_depth=args.stochastic_depth,
            smooth_relu=args.smooth_relu,
            average=args.average,
            device=args.device,
            **_schedule(args),
            progress=args.progress,
        )
    else:
        result = render(
            model,
            obj,
            size=args.size,
            batch=args.batch,
            steps=args.steps,
            lr=args.lr,
            seed=args.seed,
            param=args.param,
            decorrelate=not args.no_decorrelate,
            transforms=args.transforms or "auto",
            diversity=args.diversity,
            diversity_layer=args.diversity_layer,
            snapshots=args.snapshots,
            redirect_relu=0 if args.no_redirect_relu else REDIRECT_STEPS,
            skip_gradient=args.skip_gradient,
            stochastic_depth=args.stochastic_depth,
            smooth_relu=args.smooth_relu,
            average=args.average,
            alpha=args.alpha,
            device=args.device,
            **_schedule(args),
            progress=args.progress,
        )
    out = args.output
    if args.alpha is not None:
        save_image(result.rgba(), out)
    else:
        result.save(out, ncols=len(result.images) if args.to else None, size=args.save_size)
    for step, imgs in result.snapshots.items():
        save_image(imgs, out.with_name(f"{out.stem}_step{step}{out.suffix}"))
    vals = ", ".join(f"{v:.3g}" for v in result.values.tolist())
    note = " (interrupted)" if result.interrupted else ""
    print(f"wrote {out}{note}: {result.objective} = [{vals}] in {result.seconds:.1f} s")
    if not several and any(t[0] == "logits" for t in obj.checks) and model.labels:
        probs = model.predict(result.images.to(model.device))
        top = probs.argmax(1).tolist()
        print("predicted: " + "; ".join(f"{model.labels[i]} ({probs[k, i]:.2f})" for k, i in enumerate(top)))
    return 130 if result.interrupted else 0


def _schedule(args: argparse.Namespace) -> dict:
    """``--schedule`` when given; otherwise each recipe keeps its own default."""
    return {"schedule": args.schedule} if args.schedule else {}


def _render_dgn(args: argparse.Namespace, model, obj):
    from ..core.generators import load_generator
    from ..core.images import load_image
    from ..recipes.dgn import DGN_LR, DGN_STEPS, dgn

    step_options = args.skip_gradient or args.stochastic_depth or args.smooth_relu or args.average is not None
    if args.param != "fourier" or args.diversity or args.snapshots or step_options:
        raise FeaturevisError(
            "--prior dgn optimizes a generator's code: no --param, --diversity, --snapshots, --skip-gradient, "
            "--stochastic-depth, --smooth-relu or --average"
        )
    gen = load_generator(args.generator, args.bounds)
    init = load_image(args.init) if args.init else None
    return dgn(
        model,
        obj,
        gen,
        batch=args.batch,
        steps=args.steps or DGN_STEPS,
        lr=args.lr or DGN_LR,
        decay=args.decay,
        restarts=args.restarts,
        init=init,
        size=args.size,
        transforms=args.transforms or "auto",
        **_schedule(args),
        seed=args.seed,
        progress=args.progress,
    )
