"""Adversarial-photo figures: success on lite0, transfer to lite1/lite2, cost per step.

    python benchmarks/attack_quality.py [--threads 1] [--out attack-figures]

On scikit-image's four colour photos (chelsea, coffee, astronaut, rocket; longest side 224,
rounded to 8 bits) it runs, on lite0 with the library defaults:

- untargeted PGD (40 steps, random start) and FGSM at L-inf eps 2/255, and PGD at 8/255;
- targeted PGD at 2/255 towards five fixed classes per photo;

and prints markdown tables of the success rate on lite0 (untargeted: top-1 changed; targeted:
top-1 is the target), judged on the saved 8-bit image, and of transfer: the same adversarial
photos given to lite1 and lite2 (changed from *their* clean top-1; for targeted ones also the
target reached). It also times one attack step against the model's own forward+backward.
Writes each untargeted PGD panel (photo | perturbation ×(1/eps) | adversarial) to ``--out``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import featurevis as fv
from featurevis.core.images import fit_size, save_image

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
TARGETS = ("goldfish", "flamingo", "analog clock", "sports car", "banana")


def photo(name: str) -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(getattr(data, name)()).permute(2, 0, 1)[None].float() / 255


def top1(model: fv.FeatureModel, x: torch.Tensor) -> int:
    return int(model.predict(x)[0].argmax())


def step_ratio(model: fv.FeatureModel, x: torch.Tensor, steps: int = 20) -> tuple[float, float]:
    """Seconds per PGD step and per plain forward+backward of the same image."""
    fv.attack(model, x, steps=2, progress=False)  # warm-up
    t = time.perf_counter()
    fv.attack(model, x, steps=steps, progress=False)
    attack_s = (time.perf_counter() - t) / steps
    xg = x.clone().requires_grad_(True)
    model(xg)["logits"].sum().backward()
    t = time.perf_counter()
    for _ in range(steps):
        xg.grad = None
        model(xg)["logits"].sum().backward()
    return attack_s, (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="attack-figures")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lite0, others = fv.load_model("lite0"), {n: fv.load_model(n) for n in ("lite1", "lite2")}
    settings = {
        "PGD 2/255": dict(method="pgd", eps=2 / 255),
        "FGSM 2/255": dict(method="fgsm", eps=2 / 255),
        "PGD 8/255": dict(method="pgd", eps=8 / 255),
    }
    print("| attack (L-inf) | lite0 success | lite1 changed | lite2 changed | max L-inf (/255) | s per attack |")
    print("|---|---|---|---|---|---|")
    for label, kw in settings.items():
        ok, moved, worst, secs = 0, dict.fromkeys(others, 0), 0.0, 0.0
        for name in PHOTOS:
            r = fv.attack(lite0, photo(name), progress=False, **kw)
            ok += r.success
            worst, secs = max(worst, r.linf * 255), secs + r.seconds
            for m, model in others.items():
                moved[m] += top1(model, r.image) != top1(model, r.photo)
            if label == "PGD 2/255":
                save_image(r.panel(), out / f"{name}-pgd.png")
                print(f"<!-- {name}: {r} -->")
        n = len(PHOTOS)
        print(
            f"| {label} untargeted | {ok}/{n} | {moved['lite1']}/{n} | {moved['lite2']}/{n} | {worst:.2f} "
            f"| {secs / n:.2f} |"
        )
    ok, hit, moved, worst, n = 0, dict.fromkeys(others, 0), dict.fromkeys(others, 0), 0.0, 0
    for name in PHOTOS:
        x = photo(name)
        for target in TARGETS:
            r = fv.attack(lite0, x, target, progress=False)
            n += 1
            ok += r.success
            worst = max(worst, r.linf * 255)
            for m, model in others.items():
                pred = top1(model, r.image)
                hit[m] += pred == r.target
                moved[m] += pred != top1(model, r.photo)
    print(
        f"| PGD 2/255 targeted ({len(TARGETS)} classes × {len(PHOTOS)} photos) | {ok}/{n} "
        f"| {moved['lite1']}/{n} changed, {hit['lite1']}/{n} target "
        f"| {moved['lite2']}/{n} changed, {hit['lite2']}/{n} target | {worst:.2f} | |"
    )
    x = torch.round(fit_size(photo("chelsea"), 224) * 255) / 255
    a, fb = step_ratio(lite0, x)
    print(f"\nPGD step {a * 1000:.1f} ms vs lite0 forward+backward {fb * 1000:.1f} ms: ratio {a / fb:.2f}")


if __name__ == "__main__":
    main()
