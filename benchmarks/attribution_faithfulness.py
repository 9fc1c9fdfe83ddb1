"""Are the attribution maps faithful? Deletion and insertion AUCs (Petsiuk et al. 2018) on lite0.

    python benchmarks/attribution_faithfulness.py [--size 224] [--replace mean] [--patch 8]

For each of the four offline sample photos (scikit-image's astronaut, chelsea, coffee, rocket)
two objectives are explained with :func:`featurevis.attribute`: lite0's top class, and one
hidden channel: of the ``_blocks.8`` channels that gradient × activation ranks highest for that
class (the units one would inspect next), the first that the photo raises above its replaced
copy (deletion curves measure nothing for a unit that is higher on a featureless image).
Pixels are ranked by each map in squares of ``--patch`` pixels, deleted from the photo
(replaced by ``--replace``: the photo's mean colour, or a blurred copy) or inserted into the
replaced image in 32 steps; the curves are the objective normalized so that the photo is 1 and
the fully replaced image 0. Lower deletion AUC and higher insertion AUC are better. Baselines:
a random map (uniform scores per square) and the raw input gradient.
Grad-CAM is read at ``_blocks.8`` for the class and at ``_blocks.7`` (the block feeding it) for
the channel. Prints one Markdown table per target kind and the means.
"""

from __future__ import annotations

import argparse

import torch

import featurevis as fv
from featurevis.core.photos import named_sample_photos
from featurevis.recipes.attribution import CURVE_STEPS, METHODS, RANDOM

LAYER = "_blocks.8"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--replace", default="mean", choices=("mean", "blur"))
    ap.add_argument("--patch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=32, help="integrated-gradients steps")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = fv.load_model("lite0")
    kw = dict(steps=CURVE_STEPS, replace=args.replace, patch=args.patch)
    rows: dict[str, list[tuple[str, str, dict[str, tuple[float, float]]]]] = {"class": [], "channel": []}
    for name, photo in named_sample_photos():
        common = dict(size=args.size, steps=args.steps, vis_steps=0, progress=False)
        cls = fv.attribute(model, photo, layers=[LAYER], **common)
        for channel, _ in cls.top_channels[LAYER]:  # the first the photo raises above its replaced copy
            unit = fv.attribute(model, photo, f"{LAYER}:{channel}", **common)
            try:
                unit.curves(RANDOM, **kw)
                break
            except fv.FeaturevisError:
                continue
        for kind, r in (("class", cls), ("channel", unit)):
            methods = [*METHODS, *(f"gradcam:{n}" for n in r.layer_maps), RANDOM]
            aucs = {m.split(":")[0]: (r.deletion_auc(m, **kw), r.insertion_auc(m, **kw)) for m in methods}
            rows[kind].append((name, r.target, aucs))
    names = [*METHODS, "gradcam", RANDOM]
    print(f"lite0, longest side {args.size} px, {args.replace} replacement, {args.patch}-px squares,", end=" ")
    print(f"IG {args.steps} steps")
    for kind, table in rows.items():
        print(f"\n{kind} targets: deletion AUC (lower better) / insertion AUC (higher better)\n")
        print("| photo | target | " + " | ".join(names) + " |")
        print("|---|---|" + "---|" * len(names))
        for name, target, aucs in table:
            print(f"| {name} | {target} | " + " | ".join(f"{aucs[m][0]:.2f} / {aucs[m][1]:.2f}" for m in names) + " |")
        means = {m: [sum(a[m][i] for _, _, a in table) / len(table) for i in (0, 1)] for m in names}
        print("| **mean** | | " + " | ".join(f"**{means[m][0]:.2f} / {means[m][1]:.2f}**" for m in names) + " |")
        wins = {
            m: sum(a[m][0] < a[RANDOM][0] for _, _, a in table) + sum(a[m][1] > a[RANDOM][1] for _, _, a in table)
            for m in names
        }
        print("| beats random | | " + " | ".join(f"{wins[m]}/{2 * len(table)}" for m in names) + " |")


if __name__ == "__main__":
    main()
