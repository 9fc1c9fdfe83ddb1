"""The TARGET mini-language of the CLI (also accepted by ``render``), parsed into objectives.

_blocks.8:12          channel 12 of layer _blocks.8 (mean over positions)
_blocks.8:12@3,4      the neuron of channel 12 at x=3, y=4
_blocks.8             the whole layer (DeepDream objective)
_blocks.8:random=7    a random direction in channel space (seed 7)
_blocks.8:direction=v.npy    the direction in channel space a file of numbers holds (.npy, .pt, .txt)
_blocks.8:direction=v.npy^1  ... each position weighted by its cosine to it, to the power 1
class:285             class 285, by index ... (render: its log-odds; other recipes: its logit)
class:"Egyptian cat"  ... or by name
logit:285             the class logit, in every recipe
logodds:285           the class log-odds log(p / (1 - p)), in every recipe
blocks.6.mlp.fc1:100       transformer feature 100, averaged over the patch tokens (prefix excluded)
blocks.6.mlp.fc1:100@3,4   ... at patch x=3, y=4
blocks.6.mlp.fc1:100@cls   ... of the class token
blocks.6.attn:head=3       attention head 3's output
text:"a photo of a dog"    CLIP: cosine between the image and the text embedding
image:cat.jpg              cosine to a photo's output (CLIP: its image embedding)
-_blocks.8:12         negative (minimizing) image
0.5*_blocks.8:12+class:285   weighted sums with "+"
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch

from . import objectives as O
from .errors import FeaturevisError
from .images import for_channels, load_image
from .model import LOGITS, PREFIX, FeatureModel

_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TERM = re.compile(rf"^\s*(?P<sign>-)?\s*(?:(?P<w>{_NUM})\s*\*\s*)?(?P<body>.+?)\s*$")


def _split_terms(text: str) -> list[str]:
    """Split on '+' outside quotes."""
    terms, cur, quote = [], [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "+" and "".join(cur).strip() and not "".join(cur).rstrip().endswith("*"):
            terms.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    terms.append("".join(cur))
    return [t for t in terms if t.strip()]


def _int(text: str, what: str, target: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FeaturevisError(f"malformed target {target!r}: {what} {text!r} is not an integer") from None


def _text(model: FeatureModel, text: str, target: str) -> O.Objective:
    if not text:
        raise FeaturevisError(f'malformed target {target!r}: give the text, e.g. text:"a photo of a dog"')
    if model.text_encoder is None:
        raise FeaturevisError(
            f"{model.name} has no text encoder: text: targets need a CLIP model, e.g. -m clip:ViT-B-32"
        )
    vec = model.text_encoder([text])[0].detach().float().cpu()
    return O.cosine(LOGITS, vec, label=f"text:{text!r}")


def _image(model: FeatureModel, path: str, target: str) -> O.Objective:
    """Cosine to a photo's output vector: for CLIP, an image-embedding direction."""
    if not path:
        raise FeaturevisError(f"malformed target {target!r}: give a photo, e.g. image:cat.jpg")
    photo = for_channels(load_image(path, model.input_size), model.channels, f"image:{path}").to(model.device)
    with torch.no_grad():
        vec = model(photo, [LOGITS])[LOGITS].float().flatten(1)[0].cpu()
    return O.cosine(LOGITS, vec, label=f"image:{Path(path).name}")


#: What a direction file may be: NumPy's format, a torch tensor, or numbers as text.
DIRECTION_FILES = (".npy", ".pt", ".pth", ".txt", ".csv")
_POWER = re.compile(rf"^(?P<path>.*?)\s*\^\s*(?P<p>{_NUM})$")


def read_direction(path: str | Path, what: str = "direction") -> torch.Tensor:
    """A 1-D float tensor from a file of numbers: ``.npy`` (NumPy, no pickles), ``.pt``/``.pth``
    (a tensor, loaded with ``weights_only``) or ``.txt``/``.csv`` (numbers separated by spaces,
    commas or new lines). One line saying what is wrong otherwise."""
    import numpy as np

    p = Path(path)
    if p.suffix.lower() not in DIRECTION_FILES:
        raise FeaturevisError(f"{what} file {p.name!r}: use one of {', '.join(DIRECTION_FILES)}")
    if not p.is_file():
        raise FeaturevisError(f"{p}: no such file" if not p.exists() else f"{p}: not a file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            data = torch.from_numpy(np.load(p, allow_pickle=False).astype(np.float32))
        elif suffix in (".pt", ".pth"):
            data = torch.load(p, map_location="cpu", weights_only=True)
            if not isinstance(data, torch.Tensor):
                raise FeaturevisError(f"{p}: holds a {type(data).__name__}, not a tensor of numbers")
        else:
            text = p.read_text(encoding="utf-8").replace(",", " ").split()
            data = torch.tensor([float(v) for v in text])
    except FeaturevisError:
        raise
    except (OSError, ValueError, RuntimeError, UnicodeDecodeError, EOFError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise FeaturevisError(f"{p}: not a {suffix} file of numbers ({first})") from None
    data = data.detach().float()
    if data.dim() > 1 and sum(n > 1 for n in data.shape) <= 1:
        data = data.flatten()  # (1, C) or (C, 1)
    if data.dim() != 1 or data.numel() == 0:
        raise FeaturevisError(f"{p}: holds shape {tuple(data.shape)}; a direction is one number per channel")
    if not torch.isfinite(data).all():
        raise FeaturevisError(f"{p}: contains NaN or infinite numbers")
    if not data.abs().sum() > 0:
        raise FeaturevisError(f"{p}: is all zeros, which points nowhere")
    return data


def _direction(model: FeatureModel, layer: str, value: str, target: str) -> O.Objective:
    """``direction=FILE`` or ``direction=FILE^P``: ``O.direction`` with ``cossim_pow=P``."""
    value = value.strip()
    power = 0.0
    m = _POWER.match(value)
    if m:
        value, power = m["path"].strip(), float(m["p"])
        if not (math.isfinite(power) and power >= 0):
            raise FeaturevisError(f"malformed target {target!r}: cosine power {m['p']} must be a number >= 0")
    elif "^" in value and not (value[:1] in "\"'" and value.endswith(value[:1]) and len(value) > 1):
        raise FeaturevisError(f"malformed target {target!r}: the cosine power after '^' must be a number, e.g. ^1")
    path = value.strip("\"'")
    if not path:
        raise FeaturevisError(f"malformed target {target!r}: give a file of numbers, e.g. {layer}:direction=dir.npy")
    vec = read_direction(path)
    channels = model.layer_shape(layer)[0]
    if vec.numel() != channels:
        raise FeaturevisError(f"{path}: has {vec.numel()} numbers but {layer} has {channels} channels")
    return O.direction(layer, vec, cossim_pow=power)


def _head(model: FeatureModel, layer: str, rest: str, target: str) -> O.Objective:
    index = _int(rest.partition("=")[2].strip(), "head", target)
    capture, heads, unmix = model.attention_heads(layer)
    if not 0 <= index < heads:
        raise FeaturevisError(f"head {index} out of range: {layer} has heads 0..{heads - 1}")
    return O.head(capture, index, heads, unmix=unmix, label=f"{layer}:head={index}")


#: What ``class:N`` means, by the ``classes`` a recipe asks :func:`parse_target` for.
CLASS_OBJECTIVES = {"logit": O.class_logit, "log_odds": O.class_log_odds}
_CLASS_PREFIXES = {"class:": None, "logit:": "logit", "logodds:": "log_odds"}


def _parse_body(model: FeatureModel, body: str, target: str, classes: str) -> O.Objective:
    for prefix, kind in _CLASS_PREFIXES.items():
        if body.startswith(prefix):
            name = body[len(prefix) :].strip().strip("\"'")
            if not name:
                raise FeaturevisError(f"malformed target {target!r}: {prefix} needs an index or a name")
            return CLASS_OBJECTIVES[kind or classes](model.class_index(name))
    if body.startswith("text:"):
        return _text(model, body[len("text:") :].strip().strip("\"'"), target)
    if body.startswith("image:"):
        return _image(model, body[len("image:") :].strip().strip("\"'"), target)
    layer, colon, rest = body.partition(":")
    layer = model.check_layer(layer.strip())
    rest = rest.strip()
    if not colon:
        return O.layer(layer)
    if not rest:
        raise FeaturevisError(
            f"malformed target {target!r}: give a channel after ':' ({layer}:12), or drop the ':' for the whole layer"
        )
    if rest.startswith("random"):
        seed = _int(rest.partition("=")[2] or "0", "seed", target)
        shape = model.layer_shape(layer)
        return O.random_direction(layer, shape[0], seed=seed)
    if rest.startswith("head"):
        return _head(model, layer, rest, target)
    if rest.startswith("direction"):
        name, eq, value = rest.partition("=")
        if name.strip() != "direction" or not eq:
            raise FeaturevisError(f"malformed target {target!r}: write {layer}:direction=FILE (or FILE^P)")
        return _direction(model, layer, value, target)
    ch_text, at, pos = rest.partition("@")
    ch = _int(ch_text, "channel", target)
    if not at:
        return O.channel(layer, ch)
    if pos.strip().lower() == "cls":
        model.layout(layer + PREFIX)  # a layer without a class token says so here
        return O.class_token(layer, ch)
    xy = pos.split(",")
    if len(xy) != 2:
        raise FeaturevisError(
            f"malformed target {target!r}: neuron position must be @X,Y (or @cls on a transformer layer)"
        )
    return O.neuron(layer, ch, _int(xy[0], "x", target), _int(xy[1], "y", target))


def parse_target(model: FeatureModel, target: str, classes: str = "logit") -> O.Objective:
    """Parse a TARGET string for ``model`` (layers and classes are validated here).

    ``classes`` is what ``class:N`` means: ``"logit"`` (attribution, saliency, DeepDream and the
    other recipes that read a score) or ``"log_odds"`` (a class render, whose images other
    networks read better for it); ``logit:N`` and ``logodds:N`` say it outright.
    """
    if classes not in CLASS_OBJECTIVES:
        raise ValueError(f"classes must be one of {sorted(CLASS_OBJECTIVES)}, not {classes!r}")
    if not target or not target.strip():
        raise FeaturevisError("empty target: give e.g. _blocks.8:12 or class:285")
    total = None
    for term in _split_terms(target):
        m = _TERM.match(term)
        if not m:
            raise FeaturevisError(f"malformed target {target!r}")
        obj = _parse_body(model, m["body"], target, classes)
        if m["w"]:
            w = float(m["w"])
            if not math.isfinite(w):
                raise FeaturevisError(f"malformed target {target!r}: weight {m['w']} is not a finite number")
            obj = w * obj
        if m["sign"]:
            obj = -obj
        total = obj if total is None else total + obj
    return total
