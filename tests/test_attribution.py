"""Attribution: the maps are what they claim, they are faithful on lite0, and ranked channels matter."""

from __future__ import annotations

import io

import pytest
import torch
from PIL import Image

import featurevis as fv
from featurevis.cli import main
from featurevis.core.gradients import zero_point
from featurevis.core.images import fit_size
from featurevis.recipes.attribution import RANDOM, default_layers

SIZE = 128
#: Fast settings for lite0: no channel renders unless a test wants them, few IG steps.
FAST = dict(size=SIZE, steps=16, vis_steps=0, progress=False)
#: Deletion and insertion in 16 steps (the AUCs move by under 0.015 from 32 steps here).
CURVES = dict(steps=16)


def test_maps_are_the_gradients_they_claim(tiny, one_thread):
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    r = fv.attribute(tiny, photo, 3, layers=["conv2"], steps=4, top=3, vis_steps=0, progress=False)
    x = photo.clone().requires_grad_(True)
    acts = {}
    hook = tiny.net.conv2.register_forward_hook(lambda m, i, o: acts.setdefault("conv2", o))
    logit = tiny(x)["logits"][0, 3]
    hook.remove()
    g_x, g_a = torch.autograd.grad(logit, [x, acts["conv2"]])
    assert r.value == pytest.approx(float(logit.detach()))
    assert torch.allclose(r.pixel_maps["gradient"], g_x[0].abs().sum(0), atol=1e-6)
    assert torch.allclose(r.pixel_maps["grad_x_input"], (g_x * (photo - zero_point(tiny, photo)))[0].sum(0), atol=1e-6)
    contrib = (g_a * acts["conv2"])[0]
    assert torch.allclose(r.layer_maps["conv2"], contrib.sum(0).clamp_min(0), atol=1e-6)  # Grad-CAM, per position
    assert torch.allclose(r.channel_scores["conv2"], contrib.sum((1, 2)), atol=1e-5)
    assert [c for c, _ in r.top_channels["conv2"]] == contrib.sum((1, 2)).topk(3).indices.tolist()
    assert r.target == "class:3 (class3)"


@pytest.mark.parametrize("baseline", ["zero", "black"])
def test_integrated_gradients_are_complete(tiny, one_thread, baseline):
    """Sundararajan et al.'s completeness: the attributions add up to f(photo) - f(baseline)."""
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    r = fv.attribute(
        tiny, photo, "class:5", layers=["conv2"], methods=["integrated_gradients"], steps=64, baseline=baseline,
        vis_steps=0, progress=False,
    )  # fmt: skip
    start = zero_point(tiny, photo).expand_as(photo) if baseline == "zero" else torch.zeros_like(photo)
    assert r.baseline_value == pytest.approx(float(tiny(start)["logits"][0, 5]), abs=1e-5)
    gap = r.value - r.baseline_value
    assert abs(float(r.pixel_maps["integrated_gradients"].sum()) - gap) < 0.01 * abs(gap) + 1e-4


def test_smoothgrad_averages_noisy_copies(tiny, one_thread):
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    kw = dict(layers=["conv2"], methods=["gradient", "grad_x_input"], vis_steps=0, progress=False)
    plain = fv.attribute(tiny, photo, 1, **kw)
    smooth = fv.attribute(tiny, photo, 1, smooth=6, **kw)
    assert smooth.settings["smooth"] == 6
    for m in ("gradient", "grad_x_input"):
        assert smooth.pixel_maps[m].shape == plain.pixel_maps[m].shape
        assert not torch.allclose(smooth.pixel_maps[m], plain.pixel_maps[m])
    again = fv.attribute(tiny, photo, 1, smooth=6, **kw)  # every random choice from the seed
    assert torch.equal(again.pixel_maps["gradient"], smooth.pixel_maps["gradient"])
    assert torch.equal(smooth.raw_gradient, plain.pixel_maps["gradient"])  # the baseline stays unsmoothed


def _beats_random(r, methods):
    for m in methods:
        deletion, insertion = r.deletion_auc(m, **CURVES), r.insertion_auc(m, **CURVES)
        assert deletion < r.deletion_auc(RANDOM, **CURVES), (r.target, m, deletion, r.deletion_auc(RANDOM, **CURVES))
        assert insertion > r.insertion_auc(RANDOM, **CURVES), (
            r.target,
            m,
            insertion,
            r.insertion_auc(RANDOM, **CURVES),
        )


def test_maps_are_faithful_for_a_class(lite0, photos):
    """Deleting what gradient × input, integrated gradients and Grad-CAM point at lowers the
    coffeepot logit faster than deleting at random; inserting it restores it faster."""
    r = fv.attribute(lite0, photos["coffee"], **FAST)
    assert r.target.startswith("class:")
    _beats_random(r, ["grad_x_input", "integrated_gradients", "gradcam:_blocks.8"])
    curves = r.curves("integrated_gradients", **CURVES)
    assert curves.deletion[0] == pytest.approx(1) and curves.deletion[-1] == pytest.approx(0, abs=1e-6)
    assert curves.insertion[0] == pytest.approx(0, abs=1e-6) and curves.insertion[-1] == pytest.approx(1)


def test_maps_are_faithful_for_a_hidden_channel(lite0, photos):
    """The same for a hidden unit (a _blocks.8 channel the astronaut drives), attributed to pixels
    and to _blocks.7. Gradient × input beats random on deletion here, not on insertion (0.65
    against 0.66): benchmarks/attribution_faithfulness.py has the whole table."""
    r = fv.attribute(lite0, photos["astronaut"], "_blocks.8:18", **FAST)
    assert list(r.layer_maps) == ["_blocks.7"]  # the block feeding the target's layer
    _beats_random(r, ["integrated_gradients", "gradcam:_blocks.7"])
    assert r.deletion_auc("grad_x_input", **CURVES) < r.deletion_auc(RANDOM, **CURVES)
    assert r.deletion_auc("grad_x_input", **CURVES) < r.deletion_auc("gradient", **CURVES)  # and the raw gradient


def _ablated(model, x, objective, layer: str, ch: int) -> float:
    """The objective with channel ``ch`` of ``layer`` zeroed by a forward hook."""

    def zero(module, inputs, out):
        out = out.clone()
        out[:, ch] = 0
        return out

    hook = dict(model.net.named_modules())[layer].register_forward_hook(zero)
    try:
        with torch.no_grad():
            return float(objective(model(x, objective.layers))[0])
    finally:
        hook.remove()


def test_top_channel_matters_more_than_a_bottom_one(lite0, photos):
    """Zeroing the channel ranked first by gradient × activation lowers the objective more than
    zeroing one ranked last, for a class and for a hidden unit."""
    x = fit_size(photos["chelsea"], SIZE, enlarge=False)
    for target, layer in ((None, "_blocks.8"), ("_blocks.10:50", "_blocks.6")):
        r = fv.attribute(lite0, x, target, layers=[layer], **FAST)
        scores = r.channel_scores[layer]
        top, bottom = int(scores.argmax()), int(scores.argmin())
        assert r.top_channels[layer][0][0] == top
        drop_top = r.value - _ablated(lite0, x, r.objective, layer, top)
        drop_bottom = r.value - _ablated(lite0, x, r.objective, layer, bottom)
        assert drop_top > 0 and drop_top > drop_bottom, (target, drop_top, drop_bottom)


def test_panel_and_channel_pictures(lite0, photos):
    lookup_calls = []

    def lookup(layer, channel):
        lookup_calls.append((layer, channel))
        return torch.full((1, 3, 40, 40), 0.5) if channel % 2 == 0 else None

    r = fv.attribute(
        lite0, photos["chelsea"], size=64, top=3, steps=4, vis_size=32, vis_steps=4, channel_lookup=lookup,
        progress=False,
    )  # fmt: skip
    ranked = [c for c, _ in r.top_channels["_blocks.8"]]
    assert lookup_calls == [("_blocks.8", c) for c in ranked]
    images = r.channel_images["_blocks.8"]
    assert images.shape == (3, 3, 32, 32)
    for img, c in zip(images, ranked, strict=True):
        assert torch.allclose(img, torch.full_like(img, 0.5)) == (c % 2 == 0)  # looked up, else rendered
    panel = r.image
    h, w = r.photo.shape[-2:]
    assert panel.shape[0] == 3 and panel.shape[2] >= 5 * w and panel.shape[1] > h + 32


def test_default_layers(lite0):
    assert default_layers(lite0, fv.parse_target(lite0, "class:1")) == ["_blocks.8"]
    assert default_layers(lite0, fv.parse_target(lite0, "_blocks.8:3")) == ["_blocks.7"]
    with pytest.raises(fv.FeaturevisError, match="no layer runs before"):
        default_layers(lite0, fv.parse_target(lite0, "_conv_stem:1"))


def test_bad_arguments(tiny):
    photo = torch.rand(1, 3, 32, 32)
    cases = [
        (dict(target="zebra"), "unknown layer"),
        (dict(target="class:zebra"), "unknown class"),
        (dict(layers=["conv9"]), "unknown layer"),
        (dict(layers=["fc"]), "has no spatial map"),
        (dict(layers=["logits"]), "has no spatial map"),
        (dict(target="conv1:0", layers=["conv3"]), "does not depend on conv3"),
        (dict(top=0), "top must be"),
        (dict(top=99, layers=["conv2"]), "more than the 16 channels"),
        (dict(methods=["occlusion"]), "unknown attribution method"),
        (dict(baseline="white"), "unknown baseline"),
        (dict(smooth=-1), "smooth must be"),
    ]
    for kw, message in cases:
        with pytest.raises(fv.FeaturevisError, match=message):
            fv.attribute(tiny, photo, **{"layers": ["conv2"], "vis_steps": 0, "progress": False, **kw})
    r = fv.attribute(tiny, photo, 0, layers=["conv2"], vis_steps=0, progress=False)
    with pytest.raises(fv.FeaturevisError, match="no map 'occlusion'"):
        r.deletion_auc("occlusion")
    with pytest.raises(fv.FeaturevisError, match="unknown replacement"):
        r.curves(RANDOM, replace="noise")


def test_neurons_are_checked_on_the_photos_own_map(tiny):
    wide = torch.rand(1, 3, 21, 32)  # conv3's map is 8 wide and 6 high here, not 8x8
    with pytest.raises(fv.FeaturevisError, match=r"outside conv3's 8x6 map for this 32x21 photo"):
        fv.attribute(tiny, wide, "conv3:0@1,7", layers=["conv2"], vis_steps=0, progress=False)
    r = fv.attribute(tiny, wide, "conv3:0@7,5", layers=["conv2"], vis_steps=0, progress=False)
    assert r.target == "conv3:0@7,5"


def test_an_objective_the_photo_does_not_raise_has_no_curves(tiny):
    photo = torch.full((1, 3, 32, 32), 0.5)  # flat: its mean-colour copy is itself
    r = fv.attribute(tiny, photo, 0, layers=["conv2"], vis_steps=0, progress=False)
    with pytest.raises(fv.FeaturevisError, match="does not raise it"):
        r.deletion_auc("gradient")


def test_cli_attribute_writes_the_panel_and_prints_channels(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    noise = torch.rand(40, 60, 3, generator=torch.Generator().manual_seed(0))
    Image.fromarray((noise * 255).byte().numpy()).save("p.png")
    argv = ["attribute", "p.png", "--size", "48", "--steps", "2", "--top", "2", "--vis-steps", "2", "--vis-size", "32"]
    assert main([*argv, "--method", "gxi,ig", "--smooth", "2", "-q", "--faithfulness"]) == 0
    out = capsys.readouterr().out
    assert "_blocks.8: top channels" in out and "wrote p-attribution.png" in out
    assert "integrated gradients sum to" in out
    assert "raw_gradient" in out and "random" in out and "(baseline)" in out  # the baselines, unsmoothed
    assert Image.open("p-attribution.png").size[0] >= 3 * 48
    assert main(["attribute", "p.png", "_blocks.8:3", *argv[2:], "-q", "-o", "unit.png"]) == 0
    assert "_blocks.8:3 = " in capsys.readouterr().out and Image.open("unit.png").size[0] >= 5 * 48


def test_cli_attribute_takes_channel_pictures_from_a_catalog(tmp_path, monkeypatch, capsys):
    """Channels the catalog has are read from it; the others are rendered."""
    from featurevis.catalog.store import CatalogStore, ChannelRecord

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (60, 40), (120, 60, 30)).save("p.png")
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (0, 255, 0)).save(buf, format="PNG")
    with CatalogStore(tmp_path / "cat") as store:
        store.add_run("r1", "efficientnet_lite0", {})
        store.add_layers("r1", [("_blocks.7", 80, (80, 14, 14))])
        store.write_file("r1/vis.png", buf.getvalue())
        records = [
            ChannelRecord("_blocks.7", c, "r1/vis.png", None, [], 1.0, None, None, 0, 0.0, {}, [])
            for c in range(0, 80, 2)
        ]
        store.add_channels("r1", records)
    argv = ["attribute", "p.png", "_blocks.8:3", "--size", "48", "--steps", "2", "--top", "6", "--vis-steps", "2"]
    assert main([*argv, "--vis-size", "32", "--catalog", "cat", "-q", "-o", "a.png"]) == 0
    out = capsys.readouterr().out
    ranked = [
        int(c.split(" ")[0]) for c in out.split("_blocks.7: top channels by gradient x activation: ")[1].split(", ")
    ]
    even = sum(c % 2 == 0 for c in ranked[:6])
    assert f"channel pictures: {even} from the catalog, {6 - even} rendered" in out


def test_ctrl_c_during_smoothgrad_keeps_the_copies_done(monkeypatch, tiny):
    import featurevis.recipes.attribution as A

    calls, real = [], A.objective_gradient

    def gradient(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # the photo's own gradient, two SmoothGrad batches of 4, then Ctrl-C
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(A, "objective_gradient", gradient)
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    kw = dict(layers=["conv2"], methods=["gradient"], batch=4, vis_steps=0, progress=False)
    r = fv.attribute(tiny, photo, 1, smooth=100, **kw)
    assert r.interrupted and r.settings["smooth"] == 8
    monkeypatch.setattr(A, "objective_gradient", real)
    full = fv.attribute(tiny, photo, 1, smooth=8, **kw)
    assert torch.allclose(r.pixel_maps["gradient"], full.pixel_maps["gradient"])  # the same 8 copies
