"""Can lite0 judge its own class renders? A test of picking snapshots or stopping early by it.

    python benchmarks/self_judgement.py [--seed S] [--steps 256] [--every 16] [--threads 1]

Renders the 20 fidelity classes with ``render``'s class defaults (batch 5), keeps a snapshot every
``--every`` steps, and at each prints lite0's own mean p(target) on held-out views (plain, the
judges' degradation, a 260 px resize) beside the judges' (lite1, lite2). Then it picks, per class,
the snapshot lite0 rates highest at 260 px within a window and judges that pick against the
window's last snapshot. A self-check worth building into ``render`` (stop when sure, or keep the
best snapshot) needs lite0's rating to rise and fall with the judges' past the first ~100 steps.
"""

from __future__ import annotations

import argparse

import torch

import featurevis as fv
from featurevis import objectives as O
from featurevis.core.visualize import visualize
from quality import CLASSES, degrade, quantize, resize

VIEWS = {
    "self plain": lambda m, x: m.predict(resize(x, m.input_size)),
    "self degraded": lambda m, x: m.predict(resize(degrade(x), m.input_size)),
    "self 260 px": lambda m, x: m.predict(resize(x, 260)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--every", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--window", default="128,192", help="first,last snapshot step of the pick")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    shots = list(range(args.every, args.steps + 1, args.every))
    lite0 = fv.load_model("efficientnet_lite0")
    parts: dict[int, list[torch.Tensor]] = {k: [] for k in shots}
    for start in range(0, len(CLASSES), 5):
        chunk = CLASSES[start : start + 5]
        obj = sum(O.class_log_odds(c, batch=i) for i, c in enumerate(chunk))
        r = visualize(lite0, obj, batch=len(chunk), size=224, steps=args.steps, seed=args.seed,
                      snapshots=shots, check=False, progress=False)  # fmt: skip
        for k in shots:
            parts[k].append(r.snapshots.get(k, r.images))
    judges = [fv.load_model(n) for n in ("efficientnet_lite1", "efficientnet_lite2")]
    rows = torch.arange(len(CLASSES))
    target = torch.tensor(CLASSES)
    p: dict[int, dict[str, torch.Tensor]] = {}
    for k in shots:
        x = quantize(torch.cat(parts[k]))
        p[k] = {name: view(lite0, x)[rows, target] for name, view in VIEWS.items()}
        for j, m in enumerate(judges, 1):
            p[k][f"lite{j}"] = m.predict(resize(x, m.input_size))[rows, target]
            p[k][f"lite{j} degraded"] = m.predict(resize(degrade(x), m.input_size))[rows, target]
        print(f"@{k:3d}: " + " | ".join(f"{n} {v.mean():.3f}" for n, v in p[k].items())
              + f" | judges' min {min(p[k]['lite1'].min(), p[k]['lite2'].min()):.2f}")  # fmt: skip
    judged = [k for k in shots if k >= 128] or shots
    both = torch.cat([(p[k]["lite1"] + p[k]["lite2"]) / 2 for k in judged])
    for name in VIEWS:
        r = torch.corrcoef(torch.stack([torch.cat([p[k][name] for k in judged]), both]))[0, 1]
        print(f"{name}: correlation with the judges' plain p over classes x snapshots >= 128: {float(r):.2f}")
    lo, hi = (int(v) for v in args.window.split(","))
    win = [k for k in shots if lo <= k <= hi]
    if not win or hi not in shots:
        raise SystemExit(f"--window {args.window}: its last step must be a snapshot (every {args.every} steps)")
    pick = torch.stack([p[k]["self 260 px"] for k in win]).argmax(0)

    def summary(get) -> str:
        j1, j2, d1, d2 = (get(n) for n in ("lite1", "lite2", "lite1 degraded", "lite2 degraded"))
        q = (j1.mean() + j2.mean() + d1.mean() + d2.mean()) / 4
        return f"plain {j1.mean():.3f} / {j2.mean():.3f}, min {min(j1.min(), j2.min()):.2f}, quality {q:.3f}"

    print(f"picked by lite0 at 260 px within {lo}-{hi}: "
          + summary(lambda n: torch.stack([p[k][n] for k in win])[pick, rows]))  # fmt: skip
    print(f"the last snapshot ({hi}): " + summary(lambda n: p[hi][n]))


if __name__ == "__main__":
    main()
