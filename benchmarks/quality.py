"""Fidelity of class visualizations: do renders made on lite0 transfer to lite1 and lite2?

    python benchmarks/quality.py [--out /tmp/fv-quality] [render options; default: render's defaults]
    python benchmarks/quality.py --prior dgn --generator prior.pt [--restarts N]   # DGN-AM renders

The protocol of ../shared/REFERENCE.md (Fel et al. 2023's transferability): 20 seeded ImageNet
classes are rendered on lite0 at 224 px with the given settings, saved as 8-bit images, and
classified by lite1 and lite2 after a bilinear antialiased resize to their input size. The
"degraded" judges see a 3x3 box-blurred, 112 px copy first: only coarse structure survives it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import featurevis as fv
from featurevis import objectives as O

CLASSES = [41, 265, 310, 366, 394, 414, 430, 488, 497, 523, 597, 776, 802, 849, 864, 911, 913, 940, 988, 991]


def quantize(images: torch.Tensor) -> torch.Tensor:
    """What a saved 8-bit PNG holds."""
    return torch.round(images.clamp(0, 1) * 255) / 255


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def degrade(x: torch.Tensor) -> torch.Tensor:
    """3x3 box blur (stride 1, padding 1), then a bilinear antialiased downscale to 112 px."""
    return resize(F.avg_pool2d(x, 3, stride=1, padding=1), 112)


def judge(model: fv.FeatureModel, images: torch.Tensor, classes: list[int]) -> dict[str, float]:
    probs = model.predict(resize(images, model.input_size))
    target = torch.tensor(classes)
    p = probs[torch.arange(len(classes)), target]
    top5 = probs.topk(5, dim=1).indices
    return {
        "top1": (probs.argmax(1) == target).float().mean().item(),
        "top5": (top5 == target[:, None]).any(1).float().mean().item(),
        "mean_p": p.mean().item(),
        "min_p": p.min().item(),
    }


def render_classes(
    model: fv.FeatureModel, classes: list[int], batch: int, generator: fv.Generator | None = None, **kwargs
) -> tuple[torch.Tensor, float]:
    """Renders of ``classes``; through ``generator``'s codes (DGN-AM) when one is given."""
    out, t0 = [], time.perf_counter()
    for start in range(0, len(classes), batch):
        chunk = classes[start : start + batch]
        obj = sum(O.class_logit(c, batch=i) for i, c in enumerate(chunk))
        if generator is not None:
            out.append(fv.dgn(model, obj, generator, batch=len(chunk), **kwargs).images)
        else:
            out.append(fv.render(model, obj, batch=len(chunk), **kwargs).images)
    return torch.cat(out), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--param")
    ap.add_argument("--transforms")
    ap.add_argument("--schedule")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--prior", choices=["dgn"], help="render through a generator (DGN-AM)")
    ap.add_argument("--generator", help="generator file for --prior dgn")
    ap.add_argument("--restarts", type=int, help="DGN-AM restarts")
    ap.add_argument("--classes", type=int, default=len(CLASSES), help="use the first N classes")
    ap.add_argument("--out", type=Path, default=Path("/tmp/fv-quality"))
    ap.add_argument("--label", default="featurevis defaults")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    classes = CLASSES[: args.classes]
    lite0 = fv.load_model("efficientnet_lite0")
    keys = ("steps", "lr", "transforms", "schedule") + (("restarts",) if args.prior else ("param",))
    options = {k: getattr(args, k) for k in keys}
    options = {k: v for k, v in options.items() if v is not None}  # unset: render's / dgn's defaults
    gen = fv.load_generator(args.generator) if args.prior == "dgn" else None
    if gen is None:
        options["size"] = args.size
    images, seconds = render_classes(lite0, classes, args.batch, gen, seed=args.seed, progress=False, **options)
    images = quantize(images)
    args.out.mkdir(parents=True, exist_ok=True)
    fv.save_image(images, args.out / "grid.png")
    report = {
        "label": args.label,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "seconds_per_image": seconds / len(classes),
        "lite0": judge(lite0, images, classes),
    }
    for name in ("efficientnet_lite1", "efficientnet_lite2"):
        judge_model = fv.load_model(name)
        report[name] = judge(judge_model, images, classes)
        report[name + " degraded"] = judge(judge_model, degrade(images), classes)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    r = report
    l1, l2, d1, d2 = (
        r["efficientnet_lite1"],
        r["efficientnet_lite2"],
        r["efficientnet_lite1 degraded"],
        r["efficientnet_lite2 degraded"],
    )
    print(
        "| method | s/image | lite0 top-1 | lite1 top-1 / top-5 / mean p / min p | lite2 top-1 / top-5 / mean p "
        "/ min p | degraded lite1 top-1 / top-5 / mean p | degraded lite2 top-1 / top-5 / mean p |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {args.label} | {r['seconds_per_image']:.1f} | {r['lite0']['top1']:.0%} "
        f"| {l1['top1']:.0%} / {l1['top5']:.0%} / {l1['mean_p']:.3f} / {l1['min_p']:.2f} "
        f"| {l2['top1']:.0%} / {l2['top5']:.0%} / {l2['mean_p']:.3f} / {l2['min_p']:.2f} "
        f"| {d1['top1']:.0%} / {d1['top5']:.0%} / {d1['mean_p']:.2f} | {d2['top1']:.0%} / {d2['top5']:.0%} / "
        f"{d2['mean_p']:.2f} |"
    )


if __name__ == "__main__":
    main()
