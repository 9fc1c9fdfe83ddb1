"""Fidelity of class visualizations: do renders made on lite0 transfer to lite1 and lite2?

    python benchmarks/quality.py [--out /tmp/fv-quality] [render options; default: render's defaults]
    python benchmarks/quality.py --prior dgn --generator prior.pt [--restarts N]   # DGN-AM renders
    python benchmarks/quality.py --curve 128,192,256,320,384 [--seeds 3] [--classes N]  # time to quality

The protocol of ../shared/REFERENCE.md (Fel et al. 2023's transferability): 20 seeded ImageNet
classes are rendered on lite0 at 224 px with the given settings, saved as 8-bit images, and
classified by lite1 and lite2 after a bilinear antialiased resize to their input size. The
"degraded" judges see a 3x3 box-blurred, 112 px copy first: only coarse structure survives it.

``--curve`` makes time to quality the headline: one render per batch runs to the largest step
count and keeps snapshots at the others (a constant learning rate and a bias-corrected iterate
average, so a snapshot at k steps is what a k-step render gives), and each snapshot is judged;
``--seeds N`` averages N seeds' curves (the minimum is the worst seen). The knee is the fewest
steps whose quality (the mean of the four mean p figures) is within 0.02 of the curve's best:
the default step count sits there. Each seed's 8-bit images at the knee are saved in ``--out``
(``curve_seedS_K.png``) to look at. Seconds are the render's seconds per image scaled by steps (a
step costs the same throughout, but for the first 16 redirected-ReLU steps); floor-steps divide
them by the truncated frozen floor at 224 px batch 1 measured in the same run
(../shared/REFERENCE.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from statistics import fmean

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
        one = O.class_logit if generator is not None else O.class_log_odds  # what each recipe maximizes
        obj = sum(one(c, batch=i) for i, c in enumerate(chunk))
        if generator is not None:
            out.append(fv.dgn(model, obj, generator, batch=len(chunk), **kwargs).images)
        else:
            out.append(fv.render(model, obj, batch=len(chunk), **kwargs).images)
    return torch.cat(out), time.perf_counter() - t0


def judged(lite0: fv.FeatureModel, judges: dict[str, fv.FeatureModel], images, classes) -> dict:
    """The 8-bit images' figures for lite0 and every judge, plain and degraded."""
    images = quantize(images)
    report = {"lite0": judge(lite0, images, classes)}
    for name, judge_model in judges.items():
        report[name] = judge(judge_model, images, classes)
        report[name + " degraded"] = judge(judge_model, degrade(images), classes)
    return report


def floor_seconds(repeats: int = 3) -> float:
    """The truncated frozen floor (lite0 stopped after _blocks.8, input gradient only) at 224 px b1."""
    from featurevis.zoo import efficientnet_lite
    from speed import floor_fn, time_steps

    sd = torch.load(efficientnet_lite.weights_path("efficientnet_lite0"), weights_only=True)
    net = efficientnet_lite.EfficientNetLite.from_state_dict(sd).eval()
    return time_steps(floor_fn(net, "_blocks.8", 12, 1, 224, trainable=False), 16, repeats)


def averaged(reports: list[dict]) -> dict:
    """Several seeds' reports as one: every figure averaged, except each minimum, the worst seen."""
    return {
        judge: {key: (min if key == "min_p" else fmean)([r[judge][key] for r in reports]) for key in reports[0][judge]}
        for judge in reports[0]
    }


def curve(args, lite0: fv.FeatureModel, classes: list[int], options: dict) -> None:
    """Fidelity against steps, seconds and floor-steps per image, from each render's snapshots,
    averaged over ``--seeds`` seeds (one seed's curve moves by a few points from seed to seed)."""
    points = sorted({int(k) for k in args.curve.split(",")})
    options = {**options, "steps": points[-1]}
    seeds = range(args.seed, args.seed + args.seeds)
    shots: dict[tuple[int, int], list[torch.Tensor]] = {(s, k): [] for s in seeds for k in points}
    t0 = time.perf_counter()
    for seed in seeds:
        for start in range(0, len(classes), args.batch):
            chunk = classes[start : start + args.batch]
            obj = sum(O.class_log_odds(c, batch=i) for i, c in enumerate(chunk))
            r = fv.render(lite0, obj, batch=len(chunk), seed=seed, progress=False, snapshots=points, **options)
            for k in points:
                shots[seed, k].append(r.snapshots.get(k, r.images))
    per_image = (time.perf_counter() - t0) / len(classes) / len(seeds)
    floor = floor_seconds()
    judges = {name: fv.load_model(name) for name in ("efficientnet_lite1", "efficientnet_lite2")}
    print(
        f"floor (224 px b1, truncated, frozen): {floor * 1000:.0f} ms; {len(classes)} classes, batch {args.batch}, "
        f"seeds {seeds.start}-{seeds.stop - 1}"
    )
    print(
        "| steps | s/image | floor-steps/image | lite1 / lite2 mean p | min p | degraded top-1 | degraded mean p "
        "| quality |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for k in points:
        rep = averaged([judged(lite0, judges, torch.cat(shots[s, k]), classes) for s in seeds])
        secs = per_image * k / points[-1]
        l1, l2 = rep["efficientnet_lite1"], rep["efficientnet_lite2"]
        d1, d2 = rep["efficientnet_lite1 degraded"], rep["efficientnet_lite2 degraded"]
        rows.append(dict(steps=k, seconds=secs, floor_steps=secs / floor, report=rep))
        print(
            f"| {k} | {secs:.1f} | {secs / floor:.0f} | {l1['mean_p']:.3f} / {l2['mean_p']:.3f} "
            f"| {min(l1['min_p'], l2['min_p']):.2f} | {d1['top1']:.0%} / {d2['top1']:.0%} "
            f"| {d1['mean_p']:.2f} / {d2['mean_p']:.2f} | {quality(rep):.3f} |"
        )
    at = knee(rows)
    print(
        f"knee: {at['steps']} steps, {at['floor_steps']:.0f} floor-steps per image (quality {at['quality']:.3f}: "
        f"the fewest steps within {KNEE_SLACK} of the best, {max(r['quality'] for r in rows):.3f})"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    for s in seeds:  # what was judged, to look at: one grid per seed at the knee
        fv.save_image(quantize(torch.cat(shots[s, at["steps"]])), args.out / f"curve_seed{s}_{at['steps']}.png")
    (args.out / "curve.json").write_text(json.dumps(dict(floor_seconds=floor, rows=rows, knee=at["steps"]), indent=1))


#: How far below the curve's best a point may be and still count as reached (the knee).
KNEE_SLACK = 0.02


def quality(report: dict) -> float:
    """One number per point of the curve: the mean of the four mean p(target) figures (lite1 and
    lite2, plain and degraded), so neither fine detail nor coarse structure alone scores."""
    keys = ("efficientnet_lite1", "efficientnet_lite2", "efficientnet_lite1 degraded", "efficientnet_lite2 degraded")
    return sum(report[k]["mean_p"] for k in keys) / len(keys)


def knee(rows: list[dict]) -> dict:
    """The curve's knee: the cheapest point whose quality is within :data:`KNEE_SLACK` of the best
    (steps past it buy less than that); ``rows`` gain their ``quality``."""
    for r in rows:
        r["quality"] = quality(r["report"])
    best = max(r["quality"] for r in rows)
    return min((r for r in rows if r["quality"] >= best - KNEE_SLACK), key=lambda r: r["steps"])


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
    ap.add_argument("--curve", help="comma-separated step counts: fidelity against steps and seconds")
    ap.add_argument("--seeds", type=int, default=1, help="--curve: average over this many seeds from --seed")
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
    if args.curve:
        if gen is not None:
            raise SystemExit("--curve renders with the Fourier default; leave out --prior")
        return curve(args, lite0, classes, options)
    images, seconds = render_classes(lite0, classes, args.batch, gen, seed=args.seed, progress=False, **options)
    images = quantize(images)
    args.out.mkdir(parents=True, exist_ok=True)
    fv.save_image(images, args.out / "grid.png")
    judges = {name: fv.load_model(name) for name in ("efficientnet_lite1", "efficientnet_lite2")}
    report = {
        "label": args.label,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "seconds_per_image": seconds / len(classes),
        **judged(lite0, judges, images, classes),
    }
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
