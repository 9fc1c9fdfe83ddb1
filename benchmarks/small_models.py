"""Small-input (CIFAR-size) networks: do 32-px class renders transfer to an independent judge?

    python benchmarks/small_models.py [--width 16] [--train-steps 400] [--seeds 6] [--channels 3]
                                      [--out /tmp/fv-small]

lucent#10: renders of 32-px networks come out as noise because transforms and spectra are tuned
for 224 px. No CIFAR weights exist offline, so this trains its own: ``tests/small_nets.py``'s
CNN (a 4x4-pooled linear head, position-aware like lucent#10's CIFAR VGG) on procedural 32-px
shapes, one network to render on and two judges trained from other seeds: the same architecture,
and a narrower one with global pooling (position-blind, so it judges the drawn shape, not where
it sits). Each class is rendered with ``--seeds`` seeds, for each of ``--steps`` step budgets,
under three settings:

- ``unscaled``: the 224-px numbers as they are (pad 12, jitter 8, 16-px side quantization) and
  the raw 1/f spectrum: what a 224-tuned toolkit does at 32 px;
- ``main``: padding and jitter scaled with the size (what featurevis did before), 16-px
  quantization, raw spectrum;
- ``scaled``: ``transforms.standard(32)`` (2-px quantization) and the spectrum normalized to
  its 224-px pixel step (``FourierImage``'s default): featurevis now.

Reported: the rendering network's class logit and probability (``own``), and each judge's mean
probability and top-1 on the 8-bit renders.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import featurevis as fv
import small_nets
from featurevis import objectives as O
from featurevis.core import transforms as T
from featurevis.core.images import make_grid, save_image
from featurevis.core.params import FourierImage

SETTINGS = {
    "unscaled": (lambda size: small_nets.unscaled_transforms(size, False), None),
    "main": (lambda size: small_nets.unscaled_transforms(size, True), None),
    "scaled": (T.standard, FourierImage.__init__.__kwdefaults__["reference"]),
}


def renders(model: fv.FeatureModel, setting: str, seeds: int, steps: int) -> tuple[torch.Tensor, float]:
    transforms, reference = SETTINGS[setting]
    n = len(model.labels)
    out = []
    for seed in range(seeds):
        g = torch.Generator().manual_seed(seed)
        param = FourierImage(n, small_nets.SIZE, reference=reference, channels=model.channels, generator=g)
        obj = sum(O.class_logit(c, batch=c) for c in range(n))
        r = fv.render(
            model, obj, batch=n, size=small_nets.SIZE, steps=steps, seed=seed, param=param,
            transforms=transforms(small_nets.SIZE), progress=False,
        )  # fmt: skip
        out.append(r.images)
    images = torch.round(torch.cat(out).clamp(0, 1) * 255) / 255
    with torch.no_grad():
        logits = model(images)["logits"]
    return images, logits[torch.arange(len(images)), torch.arange(len(images)) % n].mean().item()


def scores(model: fv.FeatureModel, images: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    probs = model.predict(images)
    return {
        "p": probs[torch.arange(len(labels)), labels].mean().item(),
        "top1": (probs.argmax(1) == labels).float().mean().item(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--train-steps", type=int, default=400)
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--steps", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("/tmp/fv-small"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    nets = [
        small_nets.train(args.channels, seed=0, width=args.width, steps=args.train_steps),
        small_nets.train(args.channels, seed=1, width=args.width, steps=args.train_steps),
        small_nets.train(args.channels, seed=2, width=args.width // 2, steps=args.train_steps, pool=1),
    ]
    model, judges = nets[0], nets[1:]
    report: dict = {"accuracy": [round(small_nets.accuracy(n), 3) for n in nets], "settings": {}}
    print(f"accuracy of the renderer and the two judges: {report['accuracy']}", flush=True)
    n = len(model.labels)
    labels = torch.arange(n).repeat(args.seeds)
    for steps in args.steps:
        for setting in SETTINGS:
            images, logit = renders(model, setting, args.seeds, steps)
            row = {"own_logit": logit, "own": scores(model, images, labels)["p"]}
            row["judges"] = [scores(j, images, labels) for j in judges]
            report["settings"][f"{setting}@{steps}"] = row
            told = ", ".join(f"p {j['p']:.3f} top-1 {j['top1']:.2f}" for j in row["judges"])
            own = f"own logit {logit:5.2f} p {row['own']:.3f}"
            print(f"{steps:4d} steps {setting:9s} {own}   judges: {told}", flush=True)
            shown = F.interpolate(images[: 2 * n], scale_factor=4, mode="nearest")
            save_image(make_grid(shown, n), args.out / f"{setting}-{steps}.png")
    (args.out / "small_models.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
