"""``featurevis demo``, the main job: a gallery of what EfficientNet-Lite0 detects, from edges
to object classes.

One batched render per layer (each image of the batch is a different channel) keeps the whole
gallery to a few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path

from ..core import objectives as O
from ..core.engine import resolve_device
from ..core.images import save_image
from ..recipes.render import DEFAULT_STEPS, render
from ..zoo import load_model
from .args import add_common, add_output, add_size, add_steps, folder

#: (layer, channels, what a viewer should expect) from early to late blocks.
DEMO_LAYERS = [
    ("_blocks.1", [2, 10, 14, 20], "early: colours, edges and fine textures"),
    ("_blocks.4", [1, 7, 21, 30], "early-middle: textures and repeating patterns"),
    ("_blocks.8", [12, 21, 45, 66], "middle: complex textures and parts"),
    ("_blocks.12", [3, 40, 77, 101], "late: object parts"),
    ("_blocks.15", [22, 100, 187, 288], "last block: whole objects and scenes"),
]
#: ImageNet classes rendered as class-logit visualizations.
DEMO_CLASSES = [285, 967, 130, 948, 323, 980]


def run_demo(
    out: Path,
    *,
    steps: int = DEFAULT_STEPS,
    size: int = 224,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
) -> Path:
    """Render the gallery into ``out`` (PNGs + ``index.html`` + ``figures.json``); returns the index."""
    out.mkdir(parents=True, exist_ok=True)
    model = load_model("efficientnet_lite0").to(resolve_device(device))
    sections: list[dict] = []
    jobs = [(layer, O.channels(layer, chs), [f"{layer}:{c}" for c in chs], note) for layer, chs, note in DEMO_LAYERS]
    class_obj = sum(O.class_log_odds(c, batch=i) for i, c in enumerate(DEMO_CLASSES))  # as render reads class:N
    jobs.append(("classes", class_obj, [f"class:{c}" for c in DEMO_CLASSES], "classes: the network's idea of each"))
    for name, obj, targets, note in jobs:
        result = render(model, obj, size=size, batch=len(targets), steps=steps, seed=seed, progress=progress)
        items = []
        for target, img, value in zip(targets, result.images, result.values.tolist(), strict=True):
            fname = target.replace(":", "_") + ".png"
            save_image(img, out / fname)
            caption = target
            if target.startswith("class:"):
                idx = int(target.split(":")[1])
                p = model.predict(img[None].to(model.device))[0]
                caption = f"{model.labels[idx]} (lite0 p={p[idx]:.2f})"
            items.append({"target": target, "file": fname, "value": round(value, 3), "caption": caption})
        sections.append({"name": name, "note": note, "items": items, "seconds": round(result.seconds, 1)})
        if result.interrupted:
            break
    (out / "figures.json").write_text(
        json.dumps({"model": model.name, "size": size, "steps": steps, "seed": seed, "sections": sections}, indent=1)
    )
    index = out / "index.html"
    index.write_text(_html(model.name, sections, size, steps))
    return index


def _html(model: str, sections: list[dict], size: int, steps: int) -> str:
    parts = [
        "<!doctype html><meta charset=utf-8><title>featurevis demo</title>",
        "<style>body{font:15px system-ui;margin:2em;background:#fafafa}figure{display:inline-block;margin:6px}"
        "img{width:200px;height:200px;image-rendering:auto;border-radius:4px}figcaption{font-size:12px;color:#444}"
        "</style>",
        f"<h1>What {html.escape(model)} detects</h1><p>Feature visualizations ({size} px, {steps} steps, Fourier +"
        " decorrelated colour, transformation robustness). Each image maximizes one channel's mean activation or"
        " one class logit.</p>",
    ]
    for s in sections:
        parts.append(f"<h2>{html.escape(s['name'])}</h2><p>{html.escape(s['note'])} ({s['seconds']} s)</p>")
        for it in s["items"]:
            parts.append(
                f"<figure><img src='{html.escape(it['file'])}' alt='{html.escape(it['target'])}'>"
                f"<figcaption>{html.escape(it['caption'])}<br>objective {it['value']}</figcaption></figure>"
            )
    return "\n".join(parts)


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_output(
        p, "output folder (default ./featurevis-demo)", "featurevis-demo", folder, metavar="DIR", aliases=["--out"]
    )
    add_steps(p, "steps per render (default %(default)s)", DEFAULT_STEPS)
    add_size(p, "image side in px (default %(default)s)", 224)
    add_common(p)


def run(args: argparse.Namespace) -> int:
    index = run_demo(
        args.output, steps=args.steps, size=args.size, seed=args.seed, device=args.device, progress=args.progress
    )
    print(f"open {index}")
    return 0
