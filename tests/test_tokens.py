"""Transformer activations: token layouts read as channels, exact objective values, clear errors.

A tiny ViT written here carries the attributes timm's VisionTransformer declares
(``num_prefix_tokens``, ``patch_embed.patch_size``), so these run without timm; the real timm and
open_clip architectures are tested in the transformers lane (tests/test_hub_models.py).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import featurevis as fv
from featurevis.core import objectives as O
from featurevis.core.errors import FeaturevisError
from featurevis.core.layouts import Layout
from featurevis.core.model import FeatureModel
from featurevis.core.targets import parse_target
from tiny_vit import DIM, HEADS, PATCH, SIZE, PatchEmbed, TinyViT


@pytest.fixture(scope="module")
def vit() -> FeatureModel:
    torch.manual_seed(0)
    return FeatureModel(TinyViT(), input_size=SIZE, channels_last=False)


def _raw_tokens(model: FeatureModel, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    seen = []
    hook = module.register_forward_hook(lambda m, a, out: seen.append(out))
    try:
        with torch.no_grad():
            model(x, ["logits"])
    finally:
        hook.remove()
    return seen[0]


def test_token_layers_are_described_and_read_as_patch_grids(vit):
    infos = {i.name: i for i in vit.layers()}
    fc1 = infos["blocks.0.mlp.fc1"]
    assert fc1.raw == (2 + 16, 4 * DIM) and fc1.shape == (4 * DIM, 4, 4)
    assert fc1.layout.kind == "BND" and fc1.layout.prefix == 2
    assert fc1.describe() == f"tokens 2+4x4, {4 * DIM} features"
    assert infos["patch_embed"].layout.prefix == 0  # no prefix tokens yet
    assert infos["blocks.0.attn.attn_drop"].layout.kind == "BHNN"
    assert infos["head"].layout.kind == "BC"
    assert infos["blocks.0"].spatial and not infos["blocks.0.attn.attn_drop"].spatial


def test_channel_neuron_and_cls_values_match_a_hand_computation(vit):
    x = torch.rand(2, 3, SIZE, SIZE)
    raw = _raw_tokens(vit, vit.net.blocks[1].mlp.fc1, x)  # (B, 2 + 16, 96)
    d = 7
    objectives = {
        "blocks.1.mlp.fc1:7": raw[:, 2:, d].mean(1),  # the patch tokens only, prefix excluded
        "blocks.1.mlp.fc1:7@3,1": raw[:, 2 + 1 * 4 + 3, d],  # patch x=3, y=1 (row-major grid)
        "blocks.1.mlp.fc1:7@cls": raw[:, 0, d],
        "blocks.1.mlp.fc1": raw[:, 2:].pow(2).mean((1, 2)),
    }
    for target, expected in objectives.items():
        obj = parse_target(vit, target)
        with torch.no_grad():
            got = obj(vit(x, obj.layers))
        torch.testing.assert_close(got, expected, msg=target)


def test_head_value_is_that_heads_output(vit):
    x = torch.rand(2, 3, SIZE, SIZE)
    attn = vit.net.blocks[0].attn
    seen = []
    hook = attn.proj.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            vit(x, ["logits"])
    finally:
        hook.remove()
    hd = DIM // HEADS
    expected = seen[0][:, 2:, 2 * hd : 3 * hd].pow(2).mean((1, 2))
    obj = parse_target(vit, "blocks.0.attn:head=2")
    with torch.no_grad():
        torch.testing.assert_close(obj(vit(x, obj.layers)), expected)


def test_multihead_attention_heads_are_recovered_exactly():
    """nn.MultiheadAttention (open_clip) only returns the projected sum: unmixing gives the heads."""
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(DIM, HEADS, batch_first=True)

    class Net(nn.Module):
        num_prefix_tokens = 1

        def __init__(self):
            super().__init__()
            self.patch_embed = PatchEmbed()
            self.cls = nn.Parameter(torch.randn(1, 1, DIM))
            self.attn = mha

        def forward(self, x):
            t = self.patch_embed(x)
            t = torch.cat([self.cls.expand(len(t), -1, -1), t], 1)
            return self.attn(t, t, t, need_weights=False)[0][:, 0]

    model = FeatureModel(Net(), input_size=SIZE, channels_last=False)
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        t = torch.cat([model.net.cls.expand(2, -1, -1), model.net.patch_embed(model.normalize(x))], 1)
        q, k, v = torch.nn.functional.linear(t, mha.in_proj_weight, mha.in_proj_bias).chunk(3, -1)
        heads = [
            torch.nn.functional.scaled_dot_product_attention(
                *(z.view(2, -1, HEADS, DIM // HEADS).transpose(1, 2) for z in (q, k, v))
            )[:, h]
            for h in range(HEADS)
        ]
        obj = parse_target(model, "attn:head=1")
        torch.testing.assert_close(obj(model(x, obj.layers)), heads[1][:, 1:].pow(2).mean((1, 2)), atol=1e-5, rtol=1e-4)


def test_render_raises_the_feature_not_the_token(vit):
    """``:5`` is feature 5 over the patches: rendering it raises that feature's mean more than a
    render of another feature does (read as a token index it would move token 5 instead)."""
    d, other = 5, 40

    def feature_means(r) -> torch.Tensor:
        with torch.no_grad():
            acts = vit(r.images, ["blocks.1.mlp.fc1"])["blocks.1.mlp.fc1"]
        return acts.mean((2, 3))[0]

    kw = dict(size=SIZE, steps=25, transforms="none", progress=False, seed=0)
    mine, theirs = fv.render(vit, f"blocks.1.mlp.fc1:{d}", **kw), fv.render(vit, f"blocks.1.mlp.fc1:{other}", **kw)
    assert (mine.values > mine.history[0]).all()
    assert feature_means(mine)[d] > feature_means(theirs)[d] + 0.1


@pytest.mark.parametrize(
    "target", ["blocks.1", "blocks.1.mlp.fc1:random=3", "blocks.0.attn:head=0", "blocks.1.mlp.fc1:3@cls"]
)
def test_whole_layer_direction_head_and_cls_renders_rise(vit, target):
    r = fv.render(vit, target, size=SIZE, steps=25, transforms="none", progress=False)
    assert torch.isfinite(r.images).all() and (r.values > r.history[0]).all()


def test_diversity_on_tokens(vit):
    r = fv.render(
        vit, "blocks.1.mlp.fc1:3", size=SIZE, steps=15, batch=2, diversity=1.0, transforms="none", progress=False
    )
    assert torch.isfinite(r.images).all() and r.images.shape[0] == 2
    assert (r.images[0] - r.images[1]).abs().mean() > 0.01


def test_transforms_that_resize_still_reach_a_fixed_size_transformer(vit):
    """The standard transforms rescale; a ViT with a fixed position embedding gets its own size."""
    r = fv.render(vit, "blocks.1.mlp.fc1:3", size=SIZE, steps=4, progress=False)
    assert r.images.shape[-1] == SIZE and torch.isfinite(r.images).all()


def test_errors_name_the_layer_and_what_is_wrong(vit):
    with pytest.raises(FeaturevisError, match="attention weights"):
        fv.render(vit, "blocks.0.attn.attn_drop:1", size=SIZE, steps=1, progress=False)
    with pytest.raises(FeaturevisError, match="not an attention module"):
        parse_target(vit, "blocks.0.mlp:head=1")
    with pytest.raises(FeaturevisError, match="head 3 out of range"):
        parse_target(vit, "blocks.0.attn:head=3")
    with pytest.raises(FeaturevisError, match="no class or other prefix token"):
        parse_target(vit, "patch_embed.proj:1@cls")
    with pytest.raises(FeaturevisError, match="no text encoder"):
        parse_target(vit, 'text:"a dog"')


class Tokens(nn.Module):
    """Emits a (B, 17, 8) sequence but declares no patch grid: nothing says what 17 means."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Conv2d(3, 8, 8, 8)
        self.mix = nn.Linear(8, 8)

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        return self.mix(torch.cat([t.mean(1, keepdim=True), t], 1)).mean(1)


def test_undeclared_tokens_are_refused_and_an_override_settles_them():
    model = FeatureModel(Tokens(), input_size=32, channels_last=False)
    with pytest.raises(FeaturevisError, match=r"cannot tell which axis of layer 'mix'.*17x8.*layouts="):
        fv.render(model, "mix:1", size=32, steps=1, progress=False)
    probed_elsewhere = FeatureModel(Tokens(), input_size=32, channels_last=False)
    probed_elsewhere.layers(64)  # asked about another size first
    with pytest.raises(FeaturevisError, match=r"cannot tell which axis of layer 'mix'"):
        probed_elsewhere.layout("mix")
    fixed = FeatureModel(Tokens(), input_size=32, channels_last=False, layouts={"mix": Layout("BND", 1, grid=(4, 4))})
    assert fixed.layer_shape("mix") == (8, 4, 4)
    x = torch.rand(1, 3, 32, 32)
    raw = _raw_tokens(fixed, fixed.net.mix, x)
    with torch.no_grad():
        torch.testing.assert_close(O.channel("mix", 2)(fixed(x, ["mix"])), raw[:, 1:, 2].mean(1))
    wrong = FeatureModel(Tokens(), input_size=32, channels_last=False, layouts={"m*": Layout("BND", 0, grid=(3, 3))})
    with pytest.raises(FeaturevisError, match="'mix' has 17 tokens, which is not 0 prefix tokens"):
        wrong.layer_shape("mix")


def test_channels_last_maps_are_read_as_channels():
    class Last(nn.Module):  # a ConvNeXt/Swin-style block output: (B, H, W, C)
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 3, padding=1)
            self.out = nn.Identity()

        def forward(self, x):
            return self.out(self.conv(x).permute(0, 2, 3, 1)).mean((1, 2))

    model = FeatureModel(Last(), input_size=16, channels_last=False)
    assert model.layout("out").kind == "BHWC" and model.layer_shape("out") == (5, 16, 16)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        ref = model.net.conv(model.normalize(x))[:, 3].mean()
        torch.testing.assert_close(O.channel("out", 3)(model(x, ["out"])), ref.view(1))


def test_sequence_first_tokens_are_detected():
    """open_clip's older transformers run (N, B, D); the batch axis shows in the probe."""

    class SeqFirst(nn.Module):
        def __init__(self):
            super().__init__()
            self.class_embedding = nn.Parameter(torch.zeros(DIM))
            self.grid_size, self.patch_size, self.image_size = (4, 4), (PATCH, PATCH), (SIZE, SIZE)
            self.conv1 = nn.Conv2d(3, DIM, PATCH, PATCH)
            self.block = nn.Linear(DIM, DIM)

        def forward(self, x):
            t = self.conv1(x).flatten(2).transpose(1, 2)
            t = torch.cat([self.class_embedding.expand(len(t), 1, -1), t], 1).transpose(0, 1)  # (N, B, D)
            return self.block(t)[0]

    model = FeatureModel(SeqFirst(), input_size=SIZE, channels_last=False)
    assert model.layout("block").kind == "NBD" and model.layer_shape("block") == (DIM, 4, 4)
    x = torch.rand(2, 3, SIZE, SIZE)
    raw = _raw_tokens(model, model.net.block, x)  # (17, B, D)
    obj = parse_target(model, "block:4@2,3")
    with torch.no_grad():
        torch.testing.assert_close(obj(model(x, obj.layers)), raw[1 + 3 * 4 + 2, :, 4])


def test_ambiguous_maps_are_settled_by_a_second_probe():
    """16 channels on a 16x16 map: the shape alone cannot say; twice the input size can."""
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.AdaptiveAvgPool2d(1))
    model = FeatureModel(net, input_size=16, channels_last=False)
    assert model.layout("0").kind == "BCHW"


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_catalog_and_explorer_on_transformer_features(tmp_path):
    """A ViT layer is catalogued like a conv layer: each feature rendered, its dataset examples are
    the top patches, and the explorer shows the pages."""
    from pathlib import Path

    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from featurevis.catalog.build import build_catalog
    from featurevis.catalog.explorer import app as explorer

    spec = f"{Path(__file__).parent / 'catalog_tiny.py'}:build_vit"
    out = tmp_path / "cat"
    report = build_catalog(spec, out, layers="blocks.1", size=SIZE, steps=4, batch=24, top_k=2, progress=False)
    client = TestClient(explorer.create_app(out), raise_server_exceptions=False)
    for url in [
        "/",
        f"/run/{report.run}",
        f"/run/{report.run}/layer/blocks.1",
        f"/run/{report.run}/layer/blocks.1/7",
    ]:
        assert client.get(url).status_code == 200, url
    page = client.get(f"/run/{report.run}/layer/blocks.1/7").text
    assert page.count("/files/") >= 1 + 2 + 2  # the visualization, two top-patch crops, two whole images


def test_image_target_is_the_cosine_to_a_photos_output(vit, tmp_path):
    from featurevis.core.images import load_image, save_image

    photo = tmp_path / "p.png"
    save_image(torch.rand(3, SIZE, SIZE), photo)
    obj = parse_target(vit, f"image:{photo}")
    with torch.no_grad():
        same = obj(vit(load_image(photo, SIZE), obj.layers))
        other = obj(vit(torch.rand(1, 3, SIZE, SIZE), obj.layers))
    assert same.item() == pytest.approx(1.0, abs=1e-5) and other.item() < 0.999
    with pytest.raises(FeaturevisError, match="no such file"):
        parse_target(vit, f"image:{tmp_path / 'missing.png'}")
