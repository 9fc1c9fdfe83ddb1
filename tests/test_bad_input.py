"""Bad input, as a hostile-but-fair user gives it, to every command that takes it (issue 17).

Each case is a real command line run in its own process (forked by ``cli_driver.py`` after one
shared start-up, with a strict UTF-8 stdout and an address-space limit) in an empty working
folder. Every case must exit with code 2 and exactly one line on stderr (no traceback), and
leave nothing behind: the working folder stays empty and the input files are unchanged.

Kinds of bad input: sizes and batches beyond the memory budget (``FEATUREVIS_MEMORY`` is set
so the verdict does not depend on the machine), broken images (missing, a folder, empty,
truncated, a text file named .png, 20000x20000 and 12000x12000 PNGs of a few KB), broken image
folders and checkpoints, numbers that make a run non-finite, neuron positions outside the map,
flags the library cannot use, and output paths that cannot be written.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import pytest
import torch
from torch import nn

import featurevis as fv
from featurevis import objectives as O

#: The source tree the commands run from (another checkout's, to measure it: FV_BAD_INPUT_SRC).
SRC = Path(os.environ.get("FV_BAD_INPUT_SRC") or Path(__file__).resolve().parents[1] / "src")
DRIVER = Path(__file__).with_name("cli_driver.py")
#: The budget the cases run under: a 12000x12000 photo (144 Mpx) is over it, small work is not.
MEMORY = "3G"

# Inputs in the fixture folder {F}: a good photo, and one broken image of each kind.
BROKEN_IMAGES = {
    "missing": "{F}/missing.png",
    "folder": "{F}/folder.png",
    "empty": "{F}/empty.png",
    "truncated": "{F}/truncated.png",
    "text": "{F}/text.png",
    "bomb": "{F}/huge.png",  # 20000x20000: over Pillow's decompression-bomb limit
    "over-budget": "{F}/big.png",  # 12000x12000: under that limit, over the memory budget
}
BROKEN_FOLDERS = {
    "missing": "{F}/no-such-folder",
    "a-file": "{F}/photo.png",
    "no-images": "{F}/folder.png",
    "bomb": "{F}/with-huge",
    "text": "{F}/with-text",
}
BROKEN_CHECKPOINTS = {
    "missing": "{F}/missing.pt",
    "folder": "{F}/folder.pt",
    "empty": "{F}/empty.pt",
    "cut": "{F}/cut.pt",  # a lite0 checkpoint cut after 1000 bytes
    "text": "{F}/text.pt",
}
PHOTO = "{F}/photo.png"
SMALL = ["--steps", "1", "--size", "32"]


def _image_readers(path: str) -> dict[str, list[str]]:
    """Every command line that reads an image from the user, with ``path`` as that image."""
    return {
        "dream": ["dream", path, "--octaves", "1", "--steps", "1", "-o", "out.png"],
        "dream-guide": ["dream", PHOTO, "--guide", path, "--octaves", "1", "--steps", "1", "-o", "out.png"],
        "dream-mask": ["dream", PHOTO, "--mask", path, "--octaves", "1", "--steps", "1", "-o", "out.png"],
        "invert": ["invert", path, "-l", "_blocks.2", *SMALL, "-o", "out.png"],
        "style-content": ["style", path, PHOTO, *SMALL, "-o", "out.png"],
        "style-style": ["style", PHOTO, path, *SMALL, "-o", "out.png"],
        "style-train": ["style-train", path, *SMALL, "--batch", "1", "--width", "4", "-o", "net.pt"],
        "style-apply": ["style-apply", "{F}/net.pt", path, "-o", "out.png"],
        "fool": ["fool", path, *SMALL, "-o", "out.png"],
        "saliency": ["saliency", path, "--samples", "1", "--size", "32", "-o", "out.png"],
        "caricature": ["caricature", path, *SMALL, "-o", "out.png"],
        "accentuate": ["accentuate", path, "_blocks.8:1", *SMALL, "-o", "out.png"],
        "attribute": ["attribute", path, "--steps", "1", "--size", "32", "--vis-steps", "0", "-o", "out.png"],
        "groups": ["groups", path, *SMALL, "-o", "out.png"],
        "activation-grid": ["activation-grid", path, "--cells", "1", *SMALL, "-o", "out.png"],
    }


def _folder_readers(path: str) -> dict[str, list[str]]:
    return {
        "style-train": ["style-train", PHOTO, "--images", path, *SMALL, "--batch", "1", "--width", "4", "-o", "n.pt"],
        "prior-train": ["prior-train", "--layer", "_blocks.2", "--images", path, *SMALL, "--batch", "1", "-o", "p.pt"],
        "catalog": ["catalog", "build", "--images", path, "--layers", "_blocks.0", *SMALL, "-o", "cat"],
        "concepts": ["concepts", "-l", "_blocks.8", "--k", "2", "--images", path, *SMALL, "-o", "cat"],
        "atlas": ["atlas", "--images", path, "--grid", "2", *SMALL, "-o", "atlas.png"],
    }


def _checkpoint_readers(path: str) -> dict[str, list[str]]:
    return {
        "layers-weights": ["layers", "--weights", path],
        "render-weights": ["render", "_blocks.8:1", "--weights", path, *SMALL, "-o", "out.png"],
        "style-apply-network": ["style-apply", path, PHOTO, "-o", "out.png"],
        "render-dgn-generator": ["render", "class:1", "--prior", "dgn", "--generator", path, *SMALL, "-o", "o.png"],
        "prior-train-resume": ["prior-train", "--layer", "_blocks.2", "--resume", "-o", path, *SMALL, "--batch", "1"],
    }


#: (command line without the bad part, options to add) for commands taking --device / --seed.
COMMON = {
    "demo": ["demo", *SMALL, "-o", "demo"],
    "render": ["render", "_blocks.8:1", *SMALL, "-o", "out.png"],
    "dream": ["dream", PHOTO, "--octaves", "1", "--steps", "1", "-o", "out.png"],
    "invert": ["invert", PHOTO, "-l", "_blocks.2", *SMALL, "-o", "out.png"],
    "style": ["style", PHOTO, PHOTO, *SMALL, "-o", "out.png"],
    "style-train": ["style-train", PHOTO, *SMALL, "--batch", "1", "--width", "4", "-o", "net.pt"],
    "fool": ["fool", PHOTO, *SMALL, "-o", "out.png"],
    "evolve": ["evolve", "-c", "1", "--generations", "1", "--population", "2", "--size", "32", "-o", "ev"],
    "saliency": ["saliency", PHOTO, "--samples", "1", "--size", "32", "-o", "out.png"],
    "caricature": ["caricature", PHOTO, "-l", "_blocks.2", *SMALL, "-o", "out.png"],
    "accentuate": ["accentuate", PHOTO, "_blocks.8:1", *SMALL, "-o", "out.png"],
    "attribute": ["attribute", PHOTO, "--steps", "1", "--size", "32", "--vis-steps", "0", "-o", "out.png"],
    "prior-train": ["prior-train", "--layer", "_blocks.2", *SMALL, "--batch", "1", "--width", "8", "-o", "p.pt"],
    "catalog": ["catalog", "build", "--layers", "_blocks.0", *SMALL, "--diversity", "0", "-o", "cat"],
    "concepts": ["concepts", "-l", "_blocks.8", "--k", "2", "--crops", "0", *SMALL, "--diversity", "0", "-o", "cat"],
    "sanity": ["sanity", "randomize", "_blocks.8:1", *SMALL, "-o", "out.png"],
    "groups": ["groups", PHOTO, *SMALL, "-o", "out.png"],
    "activation-grid": ["activation-grid", PHOTO, "--cells", "1", *SMALL, "-o", "out.png"],
    "atlas": ["atlas", "--grid", "2", *SMALL, "-o", "atlas.png"],
}
WITH_DEVICE = {**COMMON, "style-apply": ["style-apply", "{F}/net.pt", PHOTO, "-o", "out.png"]}
#: Each command's -o (or its default output) given an over-long name; folder outputs included.
LONG = "x" * 300


def _long_outputs() -> dict[str, list[str]]:
    out = {}
    for name, argv in WITH_DEVICE.items():
        i = argv.index("-o")
        suffix = Path(argv[i + 1]).suffix
        out[name] = [*argv[: i + 1], LONG + suffix, *argv[i + 2 :]]
    out["dream-frames"] = ["dream", PHOTO, "--frames", "2", "--octaves", "1", "--steps", "1", "-o", LONG + ".gif"]
    return out


def _cases() -> dict[str, list[str]]:
    cases: dict[str, list[str]] = {}

    def add(group: str, table: dict[str, list[str]]) -> None:
        for name, argv in table.items():
            cases[f"{group}/{name}"] = argv

    # Sizes and batches checked against memory before any work.
    add(
        "size",
        {
            "render": ["render", "_blocks.8:1", "--steps", "1", "--size", "100000", "-o", "out.png"],
            "layers": ["layers", "--size", "100000"],
            "invert": ["invert", PHOTO, "-l", "_blocks.2", "--steps", "1", "--size", "100000", "-o", "out.png"],
            "demo": ["demo", "--steps", "1", "--size", "100000", "-o", "demo"],
            "style": ["style", PHOTO, PHOTO, "--steps", "1", "--size", "100000", "-o", "out.png"],
            "style-train": ["style-train", PHOTO, "--steps", "1", "--size", "100000", "-o", "net.pt"],
            "style-apply": ["style-apply", "{F}/net.pt", PHOTO, "--size", "100000", "-o", "out.png"],
            "evolve": ["evolve", "-c", "1", "--generations", "1", "--population", "2", "--size", "100000", "-o", "e"],
            "prior-train": ["prior-train", "--layer", "_blocks.2", "--steps", "1", "--size", "100000", "-o", "p.pt"],
            "catalog": ["catalog", "build", "--layers", "_blocks.0", "--steps", "1", "--size", "100000", "-o", "c"],
            "concepts": ["concepts", "-l", "_blocks.8", "--steps", "1", "--size", "100000", "-o", "c"],
            "concepts-batch": ["concepts", "-l", "_blocks.8", "--steps", "1", "--batch", "100000", "-o", "c"],
            "sanity": ["sanity", "randomize", "_blocks.8:1", "--steps", "1", "--size", "100000", "-o", "o.png"],
            "render-save-size": ["render", "_blocks.8:1", *SMALL, "--param", "cppn", "--save-size", "100000"],
            "evolve-save-size": ["evolve", "-c", "1", "--generations", "1", "--population", "2", "--size", "32",
                                 "--save-size", "100000", "-o", "e"],
            "render-batch": ["render", "_blocks.8:1", *SMALL[:2], "--batch", "100000", "-o", "out.png"],
            "style-train-batch": ["style-train", PHOTO, *SMALL, "--batch", "100000", "-o", "net.pt"],
            "prior-train-batch": ["prior-train", "--layer", "_blocks.2", *SMALL, "--batch", "100000", "-o", "p.pt"],
            "catalog-batch": ["catalog", "build", "--layers", "_blocks.0", "--steps", "1", "--batch", "100000",
                              "-o", "c"],
            "caricature": ["caricature", PHOTO, "--steps", "1", "--size", "100000", "-o", "out.png"],
            "accentuate": ["accentuate", PHOTO, "_blocks.8:1", "--steps", "1", "--size", "100000", "-o", "out.png"],
        },
    )  # fmt: skip
    # Broken images, folders of images and checkpoints, for every command that reads one.
    for kind, path in BROKEN_IMAGES.items():
        add(f"image-{kind}", _image_readers(path))
    for kind, path in BROKEN_FOLDERS.items():
        add(f"images-folder-{kind}", _folder_readers(path))
    for kind, path in BROKEN_CHECKPOINTS.items():
        table = _checkpoint_readers(path)
        if kind == "missing":
            table.pop("prior-train-resume")  # its output: a missing one is a new file, not a broken input
        add(f"checkpoint-{kind}", table)
    # Numbers that would make the result non-finite.
    add(
        "number",
        {
            "render-lr-inf": ["render", "_blocks.8:1", *SMALL, "--lr", "inf", "-o", "out.png"],
            "render-lr-1e308": ["render", "_blocks.8:1", *SMALL, "--lr", "1e308", "-o", "out.png"],
            "render-diversity-nan": ["render", "_blocks.8:1", *SMALL, "--batch", "2", "--diversity", "nan"],
            "render-average-1": ["render", "class:1", *SMALL, "--average", "1", "-o", "out.png"],
            "render-average-nan": ["render", "class:1", *SMALL, "--average", "nan", "-o", "out.png"],
            "render-smooth-relu-nan": ["render", "class:1", *SMALL, "--smooth-relu", "nan", "-o", "out.png"],
            "render-smooth-relu-negative": ["render", "class:1", *SMALL, "--smooth-relu", "-1", "-o", "out.png"],
            "render-target-weight-inf": ["render", "1e999*_blocks.8:1", *SMALL, "-o", "out.png"],
            "render-target-weight-huge": ["render", "1e308*_blocks.8:1+1e308*_blocks.8:2", *SMALL, "-q"],
            "invert-lr-1e308": ["invert", PHOTO, "-l", "_blocks.2", *SMALL, "--lr", "1e308", "-o", "out.png"],
            "style-lr-1e308": ["style", PHOTO, PHOTO, *SMALL, "--lr", "1e308", "-o", "out.png"],
            "prior-train-lr-1e308": ["prior-train", "--layer", "_blocks.2", *SMALL, "--lr", "1e308", "-o", "p.pt"],
            "dream-step-size-inf": ["dream", PHOTO, "--octaves", "1", "--steps", "1", "--step-size", "inf"],
            "dream-step-size-1e308": ["dream", PHOTO, "--octaves", "1", "--steps", "1", "--step-size", "1e308"],
            "dream-layer-weight-nan": ["dream", PHOTO, "-l", "_blocks.8=nan", "--octaves", "1", "--steps", "1"],
            "dream-layer-weight-inf": ["dream", PHOTO, "-l", "_blocks.8=1e999", "--octaves", "1", "--steps", "1"],
            "fool-eps-1e308-l2": ["fool", PHOTO, *SMALL, "--eps", "1e308", "--norm", "l2", "-o", "out.png"],
            "fool-eps-inf": ["fool", PHOTO, *SMALL, "--eps", "inf", "-o", "out.png"],
            "caricature-cossim-pow-nan": ["caricature", PHOTO, *SMALL, "--cossim-pow", "nan", "-o", "out.png"],
            "caricature-cossim-pow-negative": ["caricature", PHOTO, *SMALL, "--cossim-pow", "-1", "-o", "out.png"],
            "caricature-lr-1e308": ["caricature", PHOTO, *SMALL, "--lr", "1e308", "-o", "out.png"],
            "accentuate-reg-nan": ["accentuate", PHOTO, "_blocks.8:1", *SMALL, "--reg", "nan", "-o", "out.png"],
            "accentuate-reg-inf": ["accentuate", PHOTO, "_blocks.8:1", *SMALL, "--reg", "inf", "-o", "out.png"],
            "accentuate-reg-overshoot": ["accentuate", PHOTO, "_blocks.8:1", *SMALL, "--reg", "1e6", "-o", "out.png"],
        },
    )
    # Neuron positions outside the layer's map, and a channel left out after ':'.
    add(
        "target",
        {
            "render-neuron-999": ["render", "_blocks.8:12@999,999", *SMALL, "-o", "out.png"],
            "render-neuron-negative": ["render", "_blocks.8:12@-1,-1", *SMALL, "-o", "out.png"],
            "dream-neuron-999": ["dream", PHOTO, "-l", "_blocks.8:12@999,999", "--octaves", "1", "--steps", "1"],
            "render-trailing-colon": ["render", "_blocks.8:", *SMALL, "-o", "out.png"],
            "dream-trailing-colon": ["dream", PHOTO, "-l", "_blocks.8:", "--octaves", "1", "--steps", "1"],
            "dream-empty-layer-list": ["dream", PHOTO, "-l", ",,,", "--octaves", "1", "--steps", "1"],
            "render-direction-missing": ["render", "_blocks.8:direction={F}/missing.npy", *SMALL, "-o", "out.png"],
            "render-direction-length": ["render", "_blocks.8:direction={F}/dir3.txt", *SMALL, "-o", "out.png"],
            "render-direction-nan": ["render", "_blocks.8:direction={F}/dirnan.txt", *SMALL, "-o", "out.png"],
            "render-direction-power": ["render", "_blocks.8:direction={F}/dir3.txt^x", *SMALL, "-o", "out.png"],
            "render-direction-format": ["render", "_blocks.8:direction={F}/photo.png", *SMALL, "-o", "out.png"],
            "caricature-unknown-layer": ["caricature", PHOTO, "-l", "_blocks.99", *SMALL, "-o", "out.png"],
            "caricature-empty-layer-list": ["caricature", PHOTO, "-l", ",,", *SMALL, "-o", "out.png"],
            "caricature-layer-weight": ["caricature", PHOTO, "-l", "_blocks.2=0.5", *SMALL, "-o", "out.png"],
            "caricature-bad-init": ["caricature", PHOTO, "--init", "zeros", *SMALL, "-o", "out.png"],
            "accentuate-malformed-target": ["accentuate", PHOTO, "_blocks.8:x", *SMALL, "-o", "out.png"],
            "accentuate-unknown-layer": ["accentuate", PHOTO, "_blocks.99:1", *SMALL, "-o", "out.png"],
            "accentuate-unknown-class": ["accentuate", PHOTO, 'class:"no such class"', *SMALL, "-o", "out.png"],
            "accentuate-channel-999": ["accentuate", PHOTO, "_blocks.8:999", *SMALL, "-o", "out.png"],
            "accentuate-neuron-999": ["accentuate", PHOTO, "_blocks.8:1@999,999", *SMALL, "-o", "out.png"],
            "accentuate-trailing-colon": ["accentuate", PHOTO, "_blocks.8:", *SMALL, "-o", "out.png"],
        },
    )
    # Attribution: layers it cannot read a map from, targets it cannot parse, counts out of range.
    attr = ["attribute", PHOTO, "--steps", "1", "--size", "32", "--vis-steps", "0", "-o", "out.png"]
    add(
        "attribute",
        {
            "unknown-layer": [*attr, "-l", "_blocks.99"],
            "layer-not-spatial": [*attr, "-l", "_fc"],
            "layer-logits": [*attr, "-l", "logits"],
            "layer-after-target": [*attr, "_blocks.4:1", "-l", "_blocks.8"],
            "target-trailing-colon": [*attr, "_blocks.8:"],
            "target-unknown-class": [*attr, "class:unicorn"],
            "target-channel-999": [*attr, "_blocks.8:999"],
            "top-0": [*attr, "--top", "0"],
            "top-too-many": [*attr, "--top", "500"],
            "top-not-a-number": [*attr, "--top", "many"],
            "method-unknown": [*attr, "--method", "occlusion"],
            "baseline-unknown": [*attr, "--baseline", "white"],
            "catalog-not-a-catalog": [*attr, "--catalog", "{F}/folder.png"],
        },
    )
    # An RGB photo for a 4-channel (RGB + depth) model: nothing to make the fourth channel from.
    add(
        "channels",
        {
            "dream-rgbd": ["dream", PHOTO, "-m", "{F}/rgbd.py:build", "-l", "0", "--octaves", "1", "--steps", "1"],
            "fool-rgbd": ["fool", PHOTO, "-m", "{F}/rgbd.py:build", *SMALL, "-o", "out.png"],
            "saliency-rgbd": ["saliency", PHOTO, "-m", "{F}/rgbd.py:build", "--samples", "1", "-o", "out.png"],
        },
    )
    # Photo explanations: layers they cannot read, group counts the layer cannot hold.
    add(
        "explain",
        {
            "groups-unknown-layer": ["groups", PHOTO, "-l", "_blocks.99", *SMALL, "-o", "out.png"],
            "groups-layer-without-map": ["groups", PHOTO, "-l", "_fc", *SMALL, "-o", "out.png"],
            "groups-zero": ["groups", PHOTO, "--groups", "0", *SMALL, "-o", "out.png"],
            "groups-more-than-channels": ["groups", PHOTO, "--groups", "113", *SMALL, "-o", "out.png"],
            "groups-size": ["groups", PHOTO, "--steps", "1", "--size", "100000", "-o", "out.png"],
            "activation-grid-unknown-layer": ["activation-grid", PHOTO, "-l", "nope", *SMALL, "-o", "out.png"],
            "activation-grid-layer-without-map": ["activation-grid", PHOTO, "-l", "logits", *SMALL, "-o", "o.png"],
            "activation-grid-cells-zero": ["activation-grid", PHOTO, "--cells", "0", *SMALL, "-o", "out.png"],
            "atlas-unknown-layer": ["atlas", "-l", "_blocks.99", *SMALL, "-o", "atlas.png"],
            "atlas-layer-without-map": ["atlas", "lite0", "-l", "_fc", *SMALL, "-o", "atlas.png"],
            "atlas-unknown-class": ["atlas", "--class", "no such class", *SMALL, "-o", "atlas.png"],
            "atlas-grid-zero": ["atlas", "--grid", "0", *SMALL, "-o", "atlas.png"],
            "atlas-two-models": ["atlas", "lite0", "-m", "inception_v1", *SMALL, "-o", "atlas.png"],
        },
    )
    # Flags the parser would accept but the library cannot use.
    for device in ("garbage", "tpu", "cuda:99"):
        add(f"device-{device}", {k: [*v, "--device", device] for k, v in WITH_DEVICE.items()})
    for seed in ("1180591620717411303424", "-1"):
        add(f"seed-{seed}", {k: [*v, "--seed", seed] for k, v in COMMON.items()})
    add("port", {"70000": ["serve", "{F}", "--port", "70000"], "0": ["serve", "{F}", "--port", "0"]})
    # Catalogs to score that are missing or not catalogs, and exports that cannot be written.
    add(
        "score",
        {
            "missing": ["score", "{F}/no-such-catalog"],
            "a-file": ["score", "{F}/photo.png"],
            "empty-database": ["score", "{F}"],
            "garbage-database": ["score", "{F}/garbage-catalog"],
            "export-suffix": ["score", "{F}", "--export", "scores.txt"],
            "export-proc": ["score", "{F}", "--export", "/proc/featurevis-scores.csv"],
            "export-long-name": ["score", "{F}", "--export", LONG + ".csv"],
        },
    )
    # Output paths that cannot be written, refused before any work.
    add("output-long-name", _long_outputs())
    folders = {k: WITH_DEVICE[k] for k in ("demo", "evolve", "catalog", "concepts")}
    for where in ("{F}/photo.png", "/proc/featurevis-out", "/sys/featurevis-out"):
        tag = {"{F}/photo.png": "a-file", "/proc/featurevis-out": "proc", "/sys/featurevis-out": "sys"}[where]
        add(f"output-folder-{tag}", {k: [*v[: v.index("-o") + 1], where] for k, v in folders.items()})
    add(
        "output-a-folder",
        {
            "prior-train": [*COMMON["prior-train"][:-1], "{F}/folder.pt"],
            "style-train": [*COMMON["style-train"][:-1], "{F}/folder.pt"],
            "render": [*COMMON["render"][:-1], "{F}/folder.png"],
        },
    )
    # Concept atoms and sanity checks given what they cannot fit or check.
    atoms = ["concepts", *SMALL, "--diversity", "0", "-o", "cat"]
    add(
        "concepts",
        {
            "unknown-layer": [*atoms, "-l", "_blocks.99"],
            "k-0": [*atoms, "-l", "_blocks.8", "--k", "0"],
            "k-too-large": [*atoms, "-l", "_blocks.8", "--k", "1000"],
            "sae-k-too-large": [*atoms, "-l", "_blocks.8", "--method", "sae", "--k", "100000"],
            "sae-topk-too-large": [*atoms, "-l", "_blocks.8", "--method", "sae", "--k", "4", "--active", "5"],
            "unknown-method": [*atoms, "-l", "_blocks.8", "--method", "pca"],
            "no-positions": [*atoms, "-l", "logits"],
            "no-positions-fc": [*atoms, "-l", "_fc"],
            "sanity-unknown-layer": ["sanity", "randomize", "_blocks.99:1", *SMALL, "-o", "out.png"],
            "sanity-unknown-channel": ["sanity", "randomize", "_blocks.8:9999", *SMALL, "-o", "out.png"],
            "sanity-stages-0": ["sanity", "randomize", "_blocks.8:1", "--stages", "0", *SMALL, "-o", "out.png"],
            "sanity-transforms": ["sanity", "transforms", "_blocks.8:1", "--transforms", "jiggle", *SMALL],
            "sanity-reference": ["sanity", "transforms", "_blocks.8:1", "--reference", "jiggle", *SMALL],
            "sanity-draws-0": ["sanity", "transforms", "_blocks.8:1", "--draws", "0", *SMALL],
            "sanity-unknown-check": ["sanity", "explain", "_blocks.8:1", *SMALL],
        },
    )
    # A model that does not take images.
    add("model", {"linear": ["catalog", "build", "{F}/linear.py:build", "--layers", "all", *SMALL, "-o", "cat"]})
    return cases


CASES = _cases()


# -- fixtures ------------------------------------------------------------------------------------
def _blank_png(path: Path, width: int, height: int) -> None:
    """A 1-bit black PNG written row by row: a file of a few KB for any dimensions."""
    row = b"\x00" * (1 + (width + 7) // 8)
    z = zlib.compressobj(9)
    data = b"".join(z.compress(row) for _ in range(height)) + z.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def _make_fixtures(f: Path) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from featurevis.catalog.store import DB_NAME
    from featurevis.recipes.fast_style import StyleNet, TransformNet
    from featurevis.zoo.efficientnet_lite import weights_path

    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 80, 3)) * 255).astype("uint8")).save(f / "photo.png")
    data = (f / "photo.png").read_bytes()
    (f / "truncated.png").write_bytes(data[: len(data) // 2])
    (f / "empty.png").write_bytes(b"")
    (f / "empty.pt").write_bytes(b"")
    (f / "text.png").write_text("not an image\n")
    (f / "text.pt").write_text("not a checkpoint\n")
    (f / "folder.png").mkdir()
    (f / "folder.pt").mkdir()
    _blank_png(f / "huge.png", 20000, 20000)
    _blank_png(f / "big.png", 12000, 12000)
    for sub, src in (("with-huge", "huge.png"), ("with-text", "text.png")):
        (f / sub).mkdir()
        shutil.copy(f / src, f / sub / "a.png")
    with open(weights_path("efficientnet_lite0"), "rb") as src:
        (f / "cut.pt").write_bytes(src.read(1000))
    torch.manual_seed(0)
    StyleNet(TransformNet(4, 1)).save(f / "net.pt")
    (f / DB_NAME).write_bytes(b"")  # serve checks the port before reading the catalog
    (f / "garbage-catalog").mkdir()
    (f / "garbage-catalog" / DB_NAME).write_text("not a database\n" * 100)
    (f / "linear.py").write_text("from torch import nn\n\n\ndef build():\n    return nn.Linear(3, 3)\n")
    (f / "rgbd.py").write_text(
        "from torch import nn\n\n\ndef build():\n"
        "    return nn.Sequential(nn.Conv2d(4, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))\n"
    )
    (f / "dir3.txt").write_text("1 2 3\n")
    (f / "dirnan.txt").write_text(" ".join(["nan"] * 3) + "\n")


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    """Every case, run once by the driver; per case: rc, stdout, stderr, seconds, leftovers."""
    root = tmp_path_factory.mktemp("bad_input")
    fixtures = root / "inputs"
    fixtures.mkdir()
    _make_fixtures(fixtures)
    before = _listing(fixtures)
    env = {
        "FEATUREVIS_MEMORY": MEMORY,
        "TORCH_HOME": str(root / "torch_home"),
        "PYTHONIOENCODING": "utf-8:strict",
    }
    spec = {"timeout": 120, "jobs": 2, "memory_limit": 12 << 30, "cases": []}
    for case_id, argv in CASES.items():
        cwd = root / "work" / case_id.replace("/", "__").replace(":", "_")
        cwd.mkdir(parents=True)
        spec["cases"].append(
            {"id": case_id, "argv": [a.replace("{F}", str(fixtures)) for a in argv], "cwd": str(cwd), "env": env}
        )
    (root / "cases.json").write_text(json.dumps(spec))
    proc_env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **env}
    proc = subprocess.run(
        [sys.executable, str(DRIVER), str(root / "cases.json"), str(root / "results.json")],
        env=proc_env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((root / "results.json").read_text())
    for case_id, r in out.items():
        cwd = Path(next(c["cwd"] for c in spec["cases"] if c["id"] == case_id))
        r["left"] = sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*"))
    out["__inputs_changed__"] = _listing(fixtures) != before  # type: ignore[assignment]
    if os.environ.get("FV_BAD_INPUT_REPORT"):
        Path(os.environ["FV_BAD_INPUT_REPORT"]).write_text(json.dumps(out, indent=1))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, results):
    r = results[case]
    lines = r["stderr"].strip().splitlines()
    assert "Traceback" not in r["stderr"], r["stderr"][-2000:]
    assert r["rc"] == 2, (r["rc"], r["stderr"][-2000:])
    assert len(lines) == 1, lines
    assert lines[0].startswith("featurevis"), lines
    assert r["left"] == [], r["left"]


def test_inputs_are_unchanged(results):
    assert results["__inputs_changed__"] is False


def test_a_non_utf8_output_name_is_printed_escaped(tmp_path):
    """A file name that is not UTF-8 is written under its own bytes and printed escaped, under
    a strict UTF-8 stdout, instead of crashing after the work."""
    name = os.fsdecode(b"\xff-render.png")
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONIOENCODING": "utf-8:strict", "OMP_NUM_THREADS": "1"}
    argv = ["render", "_blocks.8:1", "--steps", "1", "--size", "32", "-q", "-o", name]
    r = subprocess.run([sys.executable, "-m", "featurevis.cli", *argv], cwd=tmp_path, env=env, capture_output=True)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    assert (tmp_path / name).is_file()
    assert b"\\udcff-render.png" in r.stdout or b"\\xff-render.png" in r.stdout, r.stdout


def test_the_driver_runs_what_the_entry_point_runs(tmp_path):
    """A few cases through a plain ``python -m featurevis.cli`` give the same exit and message
    as through the driver's forked processes."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", "FEATUREVIS_MEMORY": MEMORY}
    for case in ("device-garbage/render", "size/render", "port/70000"):
        argv = [a.replace("{F}", str(tmp_path)) for a in CASES[case]]
        r = subprocess.run([sys.executable, "-m", "featurevis.cli", *argv], cwd=tmp_path, env=env, capture_output=True)
        lines = r.stderr.decode().strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in lines[0], (case, lines)


# -- the same checks through the Python API ------------------------------------------------------
def test_a_model_that_does_not_take_images_is_one_clear_error():
    model = fv.as_model(nn.Linear(3, 3))
    with pytest.raises(fv.FeaturevisError, match=r"does not accept image batches \(N, 3, 224, 224\)"):
        fv.render(model, "class:0", steps=1, progress=False)


def test_memory_budget_refuses_before_work_and_the_variable_lifts_it(tiny, monkeypatch):
    from featurevis.core import memory

    monkeypatch.setenv(memory.ENV, "20M")
    with pytest.raises(fv.FeaturevisError, match=r"through tiny with gradients needs about .* FEATUREVIS_MEMORY"):
        fv.render(tiny, "conv2:0", size=400, steps=1, progress=False)
    assert fv.render(tiny, "conv2:0", size=32, steps=1, progress=False).images.shape == (1, 3, 32, 32)
    monkeypatch.setenv(memory.ENV, "off")
    memory.check_request(tiny, 10**6, 10**4, 10**4)  # no budget: nothing is refused
    assert memory.parse_bytes("1.5G") == 3 << 29 and memory.parse_bytes("512MiB") == 512 << 20
    with pytest.raises(fv.FeaturevisError, match="give a size like 16G"):
        memory.parse_bytes("lots")


def test_activation_estimate_counts_every_leaf_output_once(tiny):
    """tiny at 32 px: conv1/relu1 8x32x32 each, conv2/relu2 16x16x16 each, conv3 16x8x8, pool
    16, fc 10 (float32 bytes per input pixel)."""
    from featurevis.core.memory import activation_bytes_per_pixel

    elems = 2 * 8 * 32 * 32 + 2 * 16 * 16 * 16 + 16 * 8 * 8 + 16 + 10
    assert activation_bytes_per_pixel(tiny) == pytest.approx(4 * elems / 32**2)


def test_huge_and_over_budget_images_are_refused_before_decoding(tmp_path, monkeypatch):
    """Even where Pillow's decompression-bomb warning is ignored (it only warns below twice its
    limit), and under a budget a 12000x12000 image does not fit in."""
    from featurevis.core.images import load_image

    _blank_png(tmp_path / "huge.png", 20000, 20000)
    _blank_png(tmp_path / "big.png", 12000, 12000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(fv.FeaturevisError, match="image too large"):
            load_image(tmp_path / "huge.png")
    monkeypatch.setenv("FEATUREVIS_MEMORY", "1G")
    with pytest.raises(fv.FeaturevisError, match=r"big.png \(12000x12000\) needs about 4.0 GiB"):
        load_image(tmp_path / "big.png")


def test_non_finite_weights_and_neurons_outside_the_map_fail_before_work(tiny):
    with pytest.raises(fv.FeaturevisError, match="weight nan is not a finite number"):
        float("nan") * O.channel("conv2", 0)
    with pytest.raises(fv.FeaturevisError, match="weight 1e999 is not a finite number"):
        fv.render(tiny, "1e999*conv2:0", steps=1, progress=False)
    with pytest.raises(fv.FeaturevisError, match=r"@16,0 is outside conv2's map at 32 px: x 0..15, y 0..15"):
        fv.render(tiny, O.neuron("conv2", 0, 16, 0), steps=1, progress=False)
    with pytest.raises(fv.FeaturevisError, match="give a channel after ':'"):
        fv.render(tiny, "conv2:", steps=1, progress=False)
    assert fv.render(tiny, "conv2:0@15,15", steps=1, progress=False).values.isfinite().all()


def test_a_refused_output_path_leaves_no_folders_behind(tmp_path):
    from featurevis.core.images import check_path, check_writable

    with pytest.raises(fv.FeaturevisError, match="too long for this file system"):
        check_writable(tmp_path / "a" / "b" / ("x" * 250 + ".png"))
    check_writable(tmp_path / "c" / "d" / "ok.png")  # fine, and nothing made yet
    check_path(tmp_path / "e", folder=True)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(fv.FeaturevisError, match="is not a folder"):
        check_path(tmp_path / "file" / "out.png")


def test_unknown_or_absent_devices_are_refused():
    from featurevis.core.engine import resolve_device

    for device in ("garbage", "tpu", "meta", "cuda:99"):
        with pytest.raises(fv.FeaturevisError):
            resolve_device(device)
    assert resolve_device("cpu").type == "cpu"


def test_a_truncated_checkpoint_is_one_line_naming_the_file(tmp_path):
    from featurevis.zoo.efficientnet_lite import weights_path
    from featurevis.zoo.weights import read_state_dict

    cut = tmp_path / "cut.pth"
    with open(weights_path("efficientnet_lite0"), "rb") as f:
        cut.write_bytes(f.read(1000))
    with pytest.raises(fv.FeaturevisError, match=rf"cannot read {cut}: not a complete PyTorch checkpoint"):
        read_state_dict(cut)


def test_an_l2_budget_larger_than_any_distance_is_refused_and_nan_is_never_success(tiny):
    from featurevis.recipes.attack import AttackResult

    photo = torch.rand(1, 3, 32, 32)
    with pytest.raises(fv.FeaturevisError, match="allows any image"):
        fv.attack(tiny, photo, eps=1e308, norm="l2", steps=1, progress=False)
    nan = AttackResult(photo * float("nan"), photo, 0, 0.5, 1, float("nan"), None, None, 0.1, "l2", "pgd")
    assert not nan.success


def test_caricature_and_accentuate_refuse_bad_input_before_work(tiny, tmp_path):
    photo = torch.rand(1, 3, 32, 32)
    missing = tmp_path / "missing.png"
    cases = {
        "missing photo": lambda: fv.caricature(tiny, missing, "conv2"),
        "unknown layer": lambda: fv.caricature(tiny, photo, "conv9"),
        "no default layer": lambda: fv.caricature(tiny, photo),
        "layer weights": lambda: fv.caricature(tiny, photo, "conv2=0.5"),
        "bad init": lambda: fv.caricature(tiny, photo, "conv2", init="zeros"),
        "NaN cossim_pow": lambda: fv.caricature(tiny, photo, "conv2", cossim_pow=float("nan")),
        "missing photo (accentuate)": lambda: fv.accentuate(tiny, missing, "conv2:1"),
        "channel out of range": lambda: fv.accentuate(tiny, photo, "conv2:99"),
        "malformed target": lambda: fv.accentuate(tiny, photo, "conv2:x"),
        "NaN reg": lambda: fv.accentuate(tiny, photo, "conv2:1", reg=float("nan")),
    }
    for what, call in cases.items():
        with pytest.raises(fv.FeaturevisError) as e:
            call()
        assert "\n" not in str(e.value), what
    assert not missing.exists()
