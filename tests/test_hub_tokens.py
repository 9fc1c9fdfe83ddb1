"""Token objectives on the real timm and open_clip architectures (random weights).

Runs in the transformers environment (timm, open_clip; see README); skipped without them.
"""

from __future__ import annotations

import pytest
import torch

timm = pytest.importorskip("timm")
open_clip = pytest.importorskip("open_clip")

import featurevis as fv  # noqa: E402
from featurevis.core.model import FeatureModel  # noqa: E402
from featurevis.core.targets import parse_target  # noqa: E402


def _capture(module: torch.nn.Module, model: FeatureModel, x: torch.Tensor, pre: bool = False) -> torch.Tensor:
    seen = []
    if pre:
        hook = module.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    else:
        hook = module.register_forward_hook(lambda m, args, out: seen.append(out[0] if isinstance(out, tuple) else out))
    try:
        with torch.no_grad():
            model(x, ["logits"])
    finally:
        hook.remove()
    return seen[0]


@pytest.fixture(scope="module")
def deit() -> FeatureModel:
    torch.manual_seed(0)
    return FeatureModel(timm.create_model("deit_tiny_distilled_patch16_224", pretrained=False), channels_last=False)


def test_timm_tokens_values(deit):
    """DeiT-distilled has two prefix tokens (class, distillation) before its 14x14 patches."""
    info = {i.name: i for i in deit.layers()}["blocks.5.mlp.fc1"]
    assert info.layout.prefix == 2 and info.shape == (768, 14, 14)
    x = torch.rand(2, 3, 224, 224)
    raw = _capture(deit.net.blocks[5].mlp.fc1, deit, x)
    proj_in = _capture(deit.net.blocks[5].attn.proj, deit, x, pre=True)
    expected = {
        "blocks.5.mlp.fc1:100": raw[:, 2:, 100].mean(1),
        "blocks.5.mlp.fc1:100@13,2": raw[:, 2 + 2 * 14 + 13, 100],
        "blocks.5.mlp.fc1:100@cls": raw[:, 0, 100],
        "blocks.5.attn:head=1": proj_in[:, 2:, 64:128].pow(2).mean((1, 2)),
    }
    for target, value in expected.items():
        obj = parse_target(deit, target)
        with torch.no_grad():
            torch.testing.assert_close(obj(deit(x, obj.layers)), value, msg=target)


def test_timm_render_raises_the_feature(deit):
    r = fv.render(deit, "blocks.5.mlp.fc1:100", steps=12, transforms="none", progress=False)
    assert (r.values > r.history[0]).all()


def test_open_clip_tokens_heads_and_text():
    torch.manual_seed(0)
    clip = open_clip.create_model("ViT-B-32", pretrained=None).eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32")

    def encode(texts):
        with torch.no_grad():
            return torch.nn.functional.normalize(clip.encode_text(tokenizer(list(texts))), dim=-1)

    model = FeatureModel(clip.visual, channels_last=False, text_encoder=encode)
    assert model.layout("transformer.resblocks.3").kind == "BND"  # batch-first in open_clip 3.x
    x = torch.rand(2, 3, 224, 224)
    raw = _capture(clip.visual.transformer.resblocks[3].mlp.c_fc, model, x)
    obj = parse_target(model, "transformer.resblocks.3.mlp.c_fc:9@4,5")
    with torch.no_grad():
        torch.testing.assert_close(obj(model(x, obj.layers)), raw[:, 1 + 5 * 7 + 4, 9])

    text = parse_target(model, 'text:"a photo of a dog"')
    with torch.no_grad():
        emb = torch.nn.functional.normalize(clip.encode_image(model.normalize(x)), dim=-1)
        torch.testing.assert_close(text(model(x, text.layers)), emb @ encode(["a photo of a dog"])[0])
    r = fv.render(model, 'text:"a photo of a dog"', steps=10, transforms="none", progress=False)
    assert (r.values > r.history[0]).all()

    head = parse_target(model, "transformer.resblocks.3.attn:head=4")
    with torch.no_grad():
        value = head(model(x, head.layers))
    assert value.shape == (2,) and torch.isfinite(value).all() and (value > 0).all()


def test_open_clip_resnet_neurons():
    """The CLIP ResNets' neurons are ordinary channels-first maps."""
    torch.manual_seed(0)
    clip = open_clip.create_model("RN50", pretrained=None).eval()
    model = FeatureModel(clip.visual, input_size=224)
    assert model.layout("layer3").kind == "BCHW"
    r = fv.render(model, "layer3.0.conv1:10", steps=6, transforms="none", progress=False, size=128)
    assert (r.values > r.history[0]).all()


def test_hugging_face_vision_transformers_through_as_model():
    """A Hugging Face ViT/DeiT returns a ModelOutput and declares its tokens in its config."""
    transformers = pytest.importorskip("transformers")
    cfg = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2)
    torch.manual_seed(0)
    net = transformers.DeiTForImageClassificationWithTeacher(
        transformers.DeiTConfig(**cfg, intermediate_size=64, num_labels=10)
    ).eval()
    model = fv.as_model(net)
    assert model.tokens.prefix == 2 and model.fixed_size == (32, 32)
    x = torch.rand(2, 3, 32, 32)
    names = {n for n, _ in net.named_modules()}
    block = "deit.layers.1" if "deit.layers.1" in names else "deit.encoder.layer.1"  # transformers 5 / 4
    fc1, attn_out = (
        (f"{block}.mlp.fc1", f"{block}.attention.o_proj")
        if "deit.layers.1" in names
        else (
            f"{block}.intermediate.dense",
            f"{block}.attention.output.dense",
        )
    )
    raw = _capture(net.get_submodule(fc1), model, x)  # (B, 2 + 16, 64)
    proj_in = _capture(net.get_submodule(attn_out), model, x, pre=True)
    expected = {
        f"{fc1}:5": raw[:, 2:, 5].mean(1),
        f"{fc1}:5@1,2": raw[:, 2 + 2 * 4 + 1, 5],
        f"{fc1}:5@cls": raw[:, 0, 5],
        f"{block}.attention:head=1": proj_in[:, 2:, 16:].pow(2).mean((1, 2)),
    }
    for target, value in expected.items():
        obj = parse_target(model, target)
        with torch.no_grad():
            torch.testing.assert_close(obj(model(x, obj.layers)), value, msg=target)
    r = fv.render(model, "class:3", steps=8, size=32, transforms="none", progress=False)
    assert (r.values > r.history[0]).all()
