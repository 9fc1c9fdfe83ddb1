"""Can lite0 judge its own class renders? A test of picking snapshots or stopping early by it.

    python benchmarks/self_judgement.py [--seed S] [--steps 256] [--every 16] [--threads 1] [--save F.pt | --load F.pt]

Renders the 20 fidelity classes with ``render``'s class defaults (batch 5), keeps a snapshot every
``--every`` steps, and at each prints lite0's own mean p(target) on held-out views (plain, the
judges' degradation, a 260 px resize) beside the judges' (lite1, lite2). Then it picks, per class,
the snapshot lite0 rates highest at 260 px within a window and judges that pick against the
window's last snapshot. A self-check worth building into ``render`` (stop when sure, or keep the
best snapshot) needs lite0's rating to rise and fall with the judges' past the first ~100 steps.

lite0's p saturates (1.000 from ~112 steps on), so each view is also rated by its log-odds,
log(p / (1 - p)) from the logits, which keeps rising or falling after p reads 1; ``flip`` (a view
the render never drew) and ``all`` (the mean log-odds of the five views) are log-odds only.
"""

from __future__ import annotations

import argparse

import torch

import featurevis as fv
from featurevis import objectives as O
from featurevis.core.model import LOGITS
from featurevis.core.visualize import visualize
from quality import CLASSES, degrade, quantize, resize

#: lite0's held-out views of a saved image; each gives the logits.
VIEWS = {
    "plain": lambda x, side: resize(x, side),
    "degraded": lambda x, side: resize(degrade(x), side),
    "260 px": lambda x, side: resize(x, 260),
    "192 px": lambda x, side: resize(x, 192),
    "flip": lambda x, side: resize(x.flip(-1), side),
}
P_VIEWS = ("plain", "degraded", "260 px")


def log_odds(z: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log(p / (1 - p)) of each row's target class, from logits: finite where p reads 1.000."""
    rows = torch.arange(len(target))
    rest = z.scatter(1, target[:, None], float("-inf"))
    return z[rows, target] - rest.logsumexp(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--every", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--window", default="128,192", help="first,last snapshot step of the pick")
    ap.add_argument("--save", help="keep the snapshots (8-bit, as saved) in this .pt file")
    ap.add_argument("--load", help="judge the snapshots of an earlier --save instead of rendering")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shots = list(range(args.every, args.steps + 1, args.every))
    try:
        lo, hi = (int(v) for v in args.window.split(","))
    except ValueError:
        raise SystemExit(f"--window {args.window}: give FIRST,LAST steps, e.g. 128,192") from None
    win = [k for k in shots if lo <= k <= hi]
    if not win or hi not in shots:
        raise SystemExit(f"--window {args.window}: its last step must be a snapshot (every {args.every} steps)")
    lite0 = fv.load_model("efficientnet_lite0")
    if args.load:
        images = torch.load(args.load)
        if sorted(images) != shots:
            raise SystemExit(f"--load {args.load}: its snapshots are {sorted(images)}, not every {args.every} steps")
    else:
        parts: dict[int, list[torch.Tensor]] = {k: [] for k in shots}
        for start in range(0, len(CLASSES), 5):
            chunk = CLASSES[start : start + 5]
            obj = sum(O.class_log_odds(c, batch=i) for i, c in enumerate(chunk))
            r = visualize(lite0, obj, batch=len(chunk), size=224, steps=args.steps, seed=args.seed,
                          snapshots=shots, check=False, progress=False)  # fmt: skip
            for k in shots:
                parts[k].append(r.snapshots.get(k, r.images))
        images = {k: quantize(torch.cat(v)) for k, v in parts.items()}
        if args.save:
            torch.save(images, args.save)
    judges = [fv.load_model(n) for n in ("efficientnet_lite1", "efficientnet_lite2")]
    rows = torch.arange(len(CLASSES))
    target = torch.tensor(CLASSES)
    p: dict[int, dict[str, torch.Tensor]] = {}
    for k in shots:
        x = images[k]
        p[k] = {}
        with torch.no_grad():
            for name, view in VIEWS.items():
                z = lite0(view(x, lite0.input_size))[LOGITS].float()
                if name in P_VIEWS:
                    p[k][f"self {name}"] = z.softmax(-1)[rows, target]
                p[k][f"self {name} log-odds"] = log_odds(z, target)
        p[k]["self all log-odds"] = torch.stack([p[k][f"self {n} log-odds"] for n in VIEWS]).mean(0)
        for j, m in enumerate(judges, 1):
            p[k][f"lite{j}"] = m.predict(resize(x, m.input_size))[rows, target]
            p[k][f"lite{j} degraded"] = m.predict(resize(degrade(x), m.input_size))[rows, target]
        print(f"@{k:3d}: " + " | ".join(f"{n} {v.mean():.3f}" for n, v in p[k].items())
              + f" | judges' min {min(p[k]['lite1'].min(), p[k]['lite2'].min()):.2f}")  # fmt: skip
    judged = [k for k in shots if k >= 128] or shots
    both = torch.stack([(p[k]["lite1"] + p[k]["lite2"]) / 2 for k in judged])  # snapshots x classes
    b = both - both.mean(0)
    ratings = [name for name in p[shots[0]] if name.startswith("self")]
    for name in ratings:
        a = torch.stack([p[k][name] for k in judged])
        r = torch.corrcoef(torch.stack([a.flatten(), both.flatten()]))[0, 1]
        # within a class: does lite0's rating move with the judges' from snapshot to snapshot?
        a = a - a.mean(0)
        within = ((a * b).sum(0) / ((a * a).sum(0) * (b * b).sum(0)).sqrt()).nan_to_num().mean()
        print(f"{name}: correlation with the judges' plain p over classes x snapshots >= 128: {float(r):.2f}; "
              f"within a class, mean over classes: {float(within):.2f}")  # fmt: skip

    def summary(get) -> str:
        j1, j2, d1, d2 = (get(n) for n in ("lite1", "lite2", "lite1 degraded", "lite2 degraded"))
        q = (j1.mean() + j2.mean() + d1.mean() + d2.mean()) / 4
        return f"plain {j1.mean():.3f} / {j2.mean():.3f}, min {min(j1.min(), j2.min()):.2f}, quality {q:.3f}"

    for name in ratings:
        pick = torch.stack([p[k][name] for k in win]).argmax(0)
        print(f"picked by lite0 ({name}) within {lo}-{hi}: "
              + summary(lambda n, pick=pick: torch.stack([p[k][n] for k in win])[pick, rows]))  # fmt: skip
    print(f"the last snapshot ({hi}): " + summary(lambda n: p[hi][n]))


if __name__ == "__main__":
    main()
