"""Rendering: the objective rises, runs are reproducible, batches, schedules and diversity work
(Ctrl-C and NaN handling belong to the loop: tests/test_engine.py)."""

from __future__ import annotations

import pytest
import torch

import featurevis as fv
from featurevis import objectives as O


def test_objective_rises(tiny):
    r = fv.render(tiny, O.channel("conv2", 3), size=32, steps=40, progress=False)
    assert r.history.shape == (40, 1)
    assert r.history[-5:].mean() > r.history[:5].mean() + 0.1
    assert r.images.shape == (1, 3, 32, 32) and r.images.min() >= 0 and r.images.max() <= 1


def test_negative_objective_lowers(tiny):
    r = fv.render(tiny, -O.channel("conv2", 3), size=32, steps=40, progress=False)
    assert r.history[-5:].mean() > r.history[:5].mean()  # -activation rises = activation falls


def test_same_seed_same_image(tiny):
    a = fv.render(tiny, "conv3:1", size=32, steps=10, seed=5, progress=False)
    b = fv.render(tiny, "conv3:1", size=32, steps=10, seed=5, progress=False)
    c = fv.render(tiny, "conv3:1", size=32, steps=10, seed=6, progress=False)
    torch.testing.assert_close(a.images, b.images)
    assert not torch.allclose(a.images, c.images)


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_batch_of_targets_and_snapshots(tiny, param):
    obj = O.channels("conv3", [0, 1, 2])
    r = fv.render(tiny, obj, size=32, batch=3, steps=12, snapshots=[4, 12], param=param, progress=False)
    assert r.images.shape == (3, 3, 32, 32)
    assert sorted(r.snapshots) == [4, 12] and r.snapshots[4].shape == (3, 3, 32, 32)
    assert r.values.shape == (3,)


def test_schedule_is_applied(tiny):
    const = fv.render(tiny, "conv3:1", size=32, steps=20, progress=False, schedule="constant")
    cosine = fv.render(tiny, "conv3:1", size=32, steps=20, progress=False, schedule="cosine")
    assert not torch.allclose(const.images, cosine.images)
    assert cosine.settings["schedule"] == "cosine"
    with pytest.raises(fv.FeaturevisError, match="unknown schedule"):
        fv.render(tiny, "conv3:1", size=32, steps=2, progress=False, schedule="step")


def test_diversity_makes_batch_images_differ(tiny):
    plain = fv.render(tiny, "conv3:2", size=32, batch=2, steps=30, progress=False)
    diverse = fv.render(tiny, "conv3:2", size=32, batch=2, steps=30, diversity=50.0, progress=False)

    def gap(r):
        return (r.images[0] - r.images[1]).abs().mean()

    assert gap(diverse) > gap(plain)


def test_class_diversity_compares_a_spatial_layer(tiny):
    from featurevis.recipes.render import _diversity_layer

    assert _diversity_layer(tiny, O.class_logit(3), 32) == "relu2"  # ~60 % deep, has a C×H×W map
    assert _diversity_layer(tiny, O.channel("conv3", 1) + O.class_logit(3), 32) == "conv3"
    r = fv.render(tiny, "class:3", size=32, batch=2, steps=5, diversity=1.0, progress=False)
    assert "diversity(relu2)" in r.objective
    with pytest.raises(fv.FeaturevisError, match="unknown layer"):
        fv.render(tiny, "class:3", batch=2, steps=1, diversity=1.0, diversity_layer="nope", progress=False)


def test_bad_channel_and_layer_fail_before_work(tiny):
    with pytest.raises(fv.FeaturevisError, match=r"channel 99 out of range: conv2 has channels 0\.\.15"):
        fv.render(tiny, "conv2:99", steps=1, progress=False)
    with pytest.raises(fv.FeaturevisError, match="unknown layer"):
        fv.render(tiny, O.channel("nope", 0), steps=1, progress=False)
    with pytest.raises(fv.FeaturevisError, match="unknown parameterization 'spline'"):
        fv.render(tiny, "conv2:1", param="spline", steps=1, progress=False)


def test_save_and_notebook_display(tiny, tmp_path):
    r = fv.render(tiny, "conv3:1", size=32, batch=4, steps=2, progress=False)
    p = r.save(tmp_path / "grid.png")
    from PIL import Image

    assert Image.open(p).size == (32 * 2 + 2, 32 * 2 + 2)
    assert r._repr_png_().startswith(b"\x89PNG")
    assert "conv3:1" in repr(r)


# -- on the real network ------------------------------------------------------------------
def test_lite0_channel_render_beats_every_sample_photo(lite0, photos):
    import torch.nn.functional as F

    targets = [("_blocks.4", 7), ("_blocks.8", 12), ("_blocks.12", 40)]
    for layer, ch in targets:
        r = fv.render(lite0, O.channel(layer, ch), size=128, steps=96, progress=False)
        best_photo = max(
            O.channel(layer, ch)(
                lite0(F.interpolate(p, size=(224, 224), mode="bilinear", antialias=True), [layer])
            ).item()
            for p in photos.values()
        )
        assert r.values.item() > 2 * max(best_photo, 0.5), (layer, ch, r.values.item(), best_photo)


def test_lite0_class_renders_are_classified_as_their_class(lite0):
    classes = [285, 967, 130]  # Egyptian cat, espresso, flamingo
    obj = sum(O.class_logit(c, batch=i) for i, c in enumerate(classes))
    r = fv.render(lite0, obj, size=160, batch=3, steps=128, progress=False)
    probs = lite0.predict(torch.nn.functional.interpolate(r.images, size=(224, 224), mode="bilinear"))
    assert probs.argmax(1).tolist() == classes


def test_a_class_target_renders_its_log_odds_and_says_so(tiny):
    """``class:N`` is the log-odds in a render and the logit elsewhere; ``logit:N`` and
    ``logodds:N`` mean one thing everywhere, and the objective's name says which one ran."""
    assert fv.parse_target(tiny, "class:1").name == "logit:1"  # the logit: attribution, dreams
    assert fv.parse_target(tiny, "logodds:1").name == "logodds:1"
    assert fv.parse_target(tiny, "class:1", "log_odds").name == "logodds:1"
    assert fv.parse_target(tiny, "logit:1", "log_odds").name == "logit:1"
    kw = dict(size=32, steps=2, progress=False)
    assert fv.render(tiny, "class:1", **kw).settings["objective"] == "logodds:1"
    assert fv.render(tiny, "logit:1", **kw).settings["objective"] == "logit:1"
    with pytest.raises(fv.FeaturevisError, match="logit: needs an index"):
        fv.parse_target(tiny, "logit:")


def test_a_class_render_is_drawn_from_the_iterate_average_by_default(lite0):
    """Classes (judged by other networks) are averaged over the steps; a hidden unit's picture,
    judged by the unit, is the last step; either can be asked for."""
    kw = dict(size=64, steps=3, progress=False)
    assert fv.render(lite0, "class:1", **kw).settings["average"] == 0.97
    assert fv.render(lite0, "_blocks.8:1", **kw).settings["average"] == 0.0
    assert fv.render(lite0, "class:1", average=0, **kw).settings["average"] == 0.0
    assert fv.render(lite0, "_blocks.8:1", average=0.5, **kw).settings["average"] == 0.5
    last = fv.render(lite0, "class:1", average=0, lr=0.1, **kw).images
    assert not torch.equal(fv.render(lite0, "class:1", **kw).images, last)


def test_the_class_recipe_steps_at_its_own_rate(lite0, tiny):
    """0.1 where it was measured (a Fourier class render with the rewrites and the average);
    the parameterization's own rate wherever one of them is missing, and a given rate always."""
    kw = dict(size=64, steps=2, progress=False)
    assert fv.render(lite0, "class:1", **kw).settings["lr"] == 0.1
    assert fv.render(lite0, "class:1", lr=0.02, **kw).settings["lr"] == 0.02
    for other in (
        dict(objective="_blocks.8:1"),
        dict(average=0),
        dict(stochastic_depth=0),
        dict(param="pixel"),
        dict(param="cppn"),
    ):
        target = other.pop("objective", "class:1")
        settings = fv.render(lite0, target, **other, **kw).settings
        assert settings["lr"] == (0.003 if other.get("param") == "cppn" else 0.05), other
    assert fv.render(tiny, "class:1", size=32, steps=2, progress=False).settings["lr"] == 0.05  # no rewrites


@pytest.mark.parametrize(
    ("size", "x", "y"),
    [(224, 13, 13), (64, 3, 3), (64, 0, 0)],  # lite0's _blocks.8 is 14x14 at 224 px, 4x4 at 64 px
)
def test_lite0_neuron_under_standard_transforms(lite0, one_thread, size, x, y):
    """Every position ``layers`` reports renders under the standard transforms (whose random
    scale shrinks the map below the reported size) and raises that very neuron."""
    assert lite0.layer_shape("_blocks.8", size)[1:] == ((14, 14) if size == 224 else (4, 4))
    obj = O.neuron("_blocks.8", 12, x=x, y=y)
    p = fv.FourierImage(1, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = float(lite0(p(), ["_blocks.8"])["_blocks.8"][0, 12, y, x])
    r = fv.render(lite0, obj, size=size, param=p, steps=12, transforms="standard", progress=False)
    with torch.no_grad():
        after = lite0(r.images, ["_blocks.8"])["_blocks.8"][0, 12]
    assert float(after[y, x]) == pytest.approx(float(r.values[0]), abs=1e-3)
    assert float(after[y, x]) > before + 1.0


def test_alpha_param_composites_over_random_backgrounds():
    """While optimized, every call shows the image over a new background (only the opaque parts
    are always there); drawn for the result, it sits on white and is reproducible."""
    p = fv.AlphaImage(fv.FourierImage(2, 16, generator=torch.Generator().manual_seed(0)))
    a, b = p.images_and_extras()[0], p.images_and_extras()[0]
    assert not torch.allclose(a, b)
    rgba = p.rgba().detach()
    alpha = rgba[:, 3:]
    assert bool(((a - b).abs().detach() <= (1 - alpha) + 1e-6).all())  # only the backgrounds differ
    with torch.no_grad():
        white = p()
    torch.testing.assert_close(white, alpha * rgba[:, :3] + (1 - alpha))


def test_alpha_penalty_makes_images_more_transparent(lite0, one_thread):
    obj = O.channel("_blocks.8", 12)
    kw = dict(size=64, steps=48, progress=False)
    free, penalized = fv.render(lite0, obj, alpha=0.0, **kw), fv.render(lite0, obj, alpha=1.0, **kw)
    assert free.rgba().shape == (1, 4, 64, 64)
    assert float(penalized.rgba()[:, 3].mean()) < float(free.rgba()[:, 3].mean()) - 0.03
    with pytest.raises(fv.FeaturevisError, match="no alpha channel"):
        fv.render(lite0, obj, steps=1, size=64, progress=False).rgba()


def test_interpolation_frames_line_up(lite0, one_thread):
    """Shared parameters keep neighbouring frames alike (the same layout morphing), where
    independent frames each find their own; the ends still serve their own targets."""
    kw = dict(frames=4, size=64, steps=48, progress=False)
    shared = fv.interpolate(lite0, "_blocks.8:12", "_blocks.8:40", **kw)
    free = fv.interpolate(lite0, "_blocks.8:12", "_blocks.8:40", shared=False, **kw)

    def step(images: torch.Tensor) -> float:
        return float((images[1:] - images[:-1]).abs().mean())

    assert step(shared.images) < 0.7 * step(free.images)
    with torch.no_grad():
        acts = lite0(shared.images, ["_blocks.8"])["_blocks.8"].mean((2, 3))
    assert acts[0, 12] > acts[-1, 12] and acts[-1, 40] > acts[0, 40]


def test_an_ensemble_sums_the_objective_over_its_models(tiny):
    """``render([a, b], T)``: one image, the objective summed over both networks, each reading
    the target against its own weights; both members' values rise."""
    from conftest import Tiny

    torch.manual_seed(1)
    other = fv.FeatureModel(Tiny(), input_size=32, name="other")
    kw = dict(size=32, steps=20, transforms="none", progress=False, seed=0)
    r = fv.render([tiny, other], "conv3:2", **kw)
    start = fv.render([tiny, other], "conv3:2", **{**kw, "steps": 1, "lr": 0.0})
    obj = fv.parse_target(tiny, "conv3:2")
    with torch.no_grad():
        mine = [float(obj(m(r.images, obj.layers))) for m in (tiny, other)]
        before = [float(obj(m(start.images, obj.layers))) for m in (tiny, other)]
    assert r.values.item() == pytest.approx(sum(mine), rel=1e-4)
    assert all(a > b for a, b in zip(mine, before, strict=True))
    assert "summed over" in r.objective and r.settings["model"] == f"{tiny.name} + other"
