"""Residual rewrites: skip gradients (forward unchanged, branch gradient scaled) and stochastic
depth (random subnetworks while stepping, the whole network for the result), on by default for
class renders on networks whose blocks allow them, and a clear error where they do not."""

from __future__ import annotations

import pytest
import torch

import featurevis as fv
from featurevis.core.errors import FeaturevisError
from featurevis.core.residual import (
    drop_branch,
    droppable_blocks,
    dropped_branches,
    residual_blocks,
    scale_gradient,
    skip_gradients,
)
from featurevis.core.visualize import residual_defaults
from featurevis.zoo.resnet import resnet50


def test_scale_gradient_keeps_the_value_and_scales_the_gradient():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = scale_gradient(x, 0.25)
    assert torch.equal(y, x)
    (y * torch.tensor([4.0, 8.0, -4.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 2.0, -1.0]
    assert scale_gradient(x, 1.0) is x
    with torch.no_grad():
        assert scale_gradient(x, 0.5) is x


def test_drop_branch_drops_whole_images_and_keeps_the_expectation():
    torch.manual_seed(0)
    h = torch.ones(4000, 3, 2, 2)
    out = drop_branch(h, 0.25)
    per_image = out.flatten(1)
    assert ((per_image == 0).all(1) | (per_image == 1 / 0.75).all(1)).all()  # all or nothing per image
    assert abs(float((per_image[:, 0] == 0).float().mean()) - 0.25) < 0.03
    assert abs(float(out.mean()) - 1.0) < 0.04
    assert drop_branch(h, 0.0) is h


def _input_gradient(model: fv.FeatureModel, x: torch.Tensor, cls: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.clone().requires_grad_(True)
    logits = model(x)["logits"]
    logits[:, cls].sum().backward()
    return logits.detach(), x.grad


def test_lite0_logits_unchanged_gradient_reweighted_then_restored(lite0):
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    logits, true = _input_gradient(lite0, x, 7)
    with skip_gradients(lite0.net, 0.5) as n:
        assert n == len(residual_blocks(lite0.net)) == 16
        logits_sgm, sgm = _input_gradient(lite0, x, 7)
    torch.testing.assert_close(logits_sgm, logits)  # the network computes the same thing
    cos = torch.nn.functional.cosine_similarity(true.flatten(), sgm.flatten(), dim=0)
    assert 0.05 < cos < 0.99  # a different direction, still related to the true one
    assert all(b.branch_gradient == 1.0 for b in residual_blocks(lite0.net))
    torch.testing.assert_close(_input_gradient(lite0, x, 7)[1], true)


def test_lite0_stochastic_depth_follows_the_training_schedule_and_is_undone(lite0):
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = lite0(x)["logits"]
        with dropped_branches(lite0.net, 0.2) as n:
            rates = [b.branch_drop for b in droppable_blocks(lite0.net)]
            torch.manual_seed(0)
            a, b = lite0(x)["logits"], lite0(x)["logits"]
        assert n == 16 and rates[-1] == pytest.approx(0.2) and rates[0] == pytest.approx(0.2 / 16)
        assert rates == sorted(rates) and len(set(rates)) == len(rates)
        assert not torch.equal(a, b) and not torch.equal(a, plain)  # another subnetwork each pass
        torch.testing.assert_close(lite0(x)["logits"], plain)


def test_defaults_apply_to_classes_on_networks_whose_blocks_allow_them(lite0, tiny):
    assert residual_defaults([lite0], fv.objectives.class_logit(1)) == (0.5, 0.2)
    assert residual_defaults([lite0], fv.objectives.channel("_blocks.6", 3)) == (1.0, 0.0)
    assert residual_defaults([tiny], fv.objectives.class_logit(1)) == (1.0, 0.0)
    resnet = fv.FeatureModel(resnet50(), name="resnet50")  # random weights: only its blocks matter
    assert residual_defaults([resnet], fv.objectives.class_logit(1)) == (0.5, 0.0)  # not trained with it
    assert residual_defaults([lite0, tiny], fv.objectives.class_logit(1)) == (1.0, 0.0)
    kw = dict(size=64, steps=2, progress=False)
    settings = fv.render(lite0, "class:1", **kw).settings
    assert (settings["skip_gradient"], settings["stochastic_depth"]) == (0.5, 0.2)
    settings = fv.render(lite0, "class:1", skip_gradient=1, stochastic_depth=0, **kw).settings
    assert (settings["skip_gradient"], settings["stochastic_depth"]) == (1.0, 0.0)


def test_the_result_is_scored_on_the_whole_network(lite0):
    r = fv.render(lite0, "class:1", size=64, steps=4, progress=False)
    with torch.no_grad():
        z = lite0(r.images)["logits"][0]
    whole = z[1] - torch.cat([z[:1], z[2:]]).logsumexp(0)  # class:1 renders the log-odds
    assert float(r.values[0]) == pytest.approx(float(whole), rel=1e-4)


def test_a_seed_fixes_a_render_with_stochastic_depth(lite0):
    """The drops are random, but drawn from the stream the render's seed fixes."""
    kw = dict(size=64, steps=6, progress=False)
    a, b, c = (fv.render(lite0, "class:1", seed=s, **kw) for s in (3, 3, 4))
    assert a.settings["stochastic_depth"] == 0.2
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_a_branch_every_image_drops_is_not_computed_and_changes_nothing(lite0, monkeypatch):
    """Skipping a dropped branch is only a saving: the same images, bit for bit, as computing it."""
    from featurevis.zoo import efficientnet_lite

    calls = {"n": 0}
    branch = efficientnet_lite.MBConvBlock.branch

    def counted(self, x):
        calls["n"] += 1
        return branch(self, x)

    monkeypatch.setattr(efficientnet_lite.MBConvBlock, "branch", counted)
    kw = dict(size=64, steps=6, stochastic_depth=0.8, progress=False, redirect_relu=2)
    skipped = fv.render(lite0, "class:1", **kw)
    n_skipped, calls["n"] = calls["n"], 0
    monkeypatch.setattr(efficientnet_lite, "watched", lambda block: True)  # every branch runs
    computed = fv.render(lite0, "class:1", **kw)
    assert n_skipped < calls["n"]
    assert torch.equal(skipped.images, computed.images)
    assert torch.equal(skipped.values, computed.values)


def test_a_hooked_layer_inside_a_dropped_branch_still_reads(lite0):
    r = fv.render(
        lite0, "class:1 + _blocks.14._depthwise_conv:3", size=64, steps=4, stochastic_depth=0.8, progress=False
    )
    assert torch.isfinite(r.values).all()


def test_a_network_without_such_blocks_is_a_one_line_error(tiny):
    for kw, message in (
        (dict(skip_gradient=0.5), "tiny has no residual blocks whose gradient"),
        (dict(stochastic_depth=0.1), "tiny has no residual blocks trained with stochastic depth"),
    ):
        with pytest.raises(FeaturevisError, match=message) as e:
            fv.render(tiny, "class:1", size=32, steps=4, progress=False, **kw)
        assert "\n" not in str(e.value)
    for kw in (dict(skip_gradient=0), dict(skip_gradient=1.5), dict(stochastic_depth=1), dict(stochastic_depth=-0.1)):
        with pytest.raises(FeaturevisError, match=r"in (\(0, 1\]|\[0, 1\))"):
            fv.render(tiny, "class:1", size=32, steps=4, progress=False, **kw)


def test_a_class_render_with_the_rewrites_transfers_to_lite1(lite0, one_thread):
    """The steps follow rewritten gradients of random subnetworks, but the objective is lite0's
    own: it rises, and another network (lite1, which no step saw) reads the classes asked for."""
    classes = [285, 967]  # Egyptian cat, espresso
    obj = sum(fv.objectives.class_logit(c, batch=i) for i, c in enumerate(classes))
    r = fv.render(lite0, obj, size=160, batch=2, steps=128, progress=False)
    assert (r.settings["skip_gradient"], r.settings["stochastic_depth"]) == (0.5, 0.2)
    assert (r.values > r.history[0] + 5).all()
    lite1 = fv.load_model("efficientnet_lite1")
    probs = lite1.predict(torch.nn.functional.interpolate(r.images, size=(240, 240), mode="bilinear"))
    assert probs.argmax(1).tolist() == classes, probs[[0, 1], classes]
