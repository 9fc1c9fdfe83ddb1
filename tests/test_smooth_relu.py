"""Smooth ReLU gradients: the forward exact, the backward through a sigmoid gate, then undone."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import featurevis as fv
from featurevis.core.errors import FeaturevisError
from featurevis.core.redirect import redirected_relus
from featurevis.core.smooth_relu import smooth_relus
from featurevis.core.visualize import SMOOTH_RELU, smooth_setting


def _grad(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    module(x).sum().backward()
    return x.grad


X = torch.linspace(-3, 9, 49).view(1, 1, 7, 7)


def test_forward_exact_gradient_gated_first_module_kept_and_all_restored():
    net = nn.Sequential(nn.ReLU(), nn.ReLU6(), nn.ReLU())
    plain = [_grad(m, X) for m in net]
    with smooth_relus(net, 3.0) as n:
        assert n == 2  # the first ReLU (a stem's, on the pixels) keeps its true gradient
        torch.testing.assert_close(net(X), X.clamp(0, 6))
        assert torch.equal(_grad(net[0], X), plain[0])
        relu6 = torch.sigmoid(3 * X) * torch.sigmoid(3 * (6 - X))
        torch.testing.assert_close(_grad(net[1], X), relu6, atol=2e-4, rtol=0)
        torch.testing.assert_close(_grad(net[2], X), torch.sigmoid(3 * X))
        # units just off (x = -0.5) pass gradient, which the step would have blocked
        assert float(_grad(net[2], torch.tensor([-0.5]))) == pytest.approx(float(torch.sigmoid(torch.tensor(-1.5))))
        with torch.no_grad():  # no backward to smooth: the module's own kernel, same values
            torch.testing.assert_close(net(X), X.clamp(0, 6))
    assert all("forward" not in vars(m) for m in net)
    assert all(torch.equal(_grad(m, X), p) for m, p in zip(net, plain, strict=True))


def test_a_redirected_start_nests_inside_and_gives_the_smooth_gradient_back():
    net = nn.Sequential(nn.ReLU(), nn.ReLU6())
    dead = torch.full((1, 4), -1.0)  # every unit off: the redirect passes what turns them on
    with smooth_relus(net, 3.0):
        smooth = _grad(net[1], dead)
        with redirected_relus(net):  # the redirect's own: a loss that would push x further down is blocked
            assert _grad(net[1], dead).tolist() == [[0, 0, 0, 0]]
        assert torch.equal(_grad(net[1], dead), smooth)  # the smooth gradient again, not the plain one
        assert float(smooth[0, 0]) == pytest.approx(float(torch.sigmoid(torch.tensor(-3.0))))
    assert all("forward" not in vars(m) for m in net)


def test_defaults_on_for_a_class_on_efficientnet_lite_only(lite0, tiny):
    cls, unit = fv.objectives.class_logit(1), fv.objectives.channel("_blocks.6", 3)
    assert smooth_setting([lite0], cls, 0.5, 0.2, None) == SMOOTH_RELU == 3.0
    assert smooth_setting([lite0], cls, 1.0, 0.0, None) == 0.0  # not the recipe it was measured with
    assert smooth_setting([lite0], unit, 1.0, 0.0, None) == 0.0  # a unit keeps the true gradient
    assert smooth_setting([tiny], cls, 1.0, 0.0, None) == 0.0
    kw = dict(size=64, steps=2, progress=False)
    assert fv.render(lite0, "class:1", **kw).settings["smooth_relu"] == 3.0
    assert fv.render(lite0, "class:1", smooth_relu=0, **kw).settings["smooth_relu"] == 0.0
    assert fv.render(lite0, "_blocks.6:3", **kw).settings["smooth_relu"] == 0.0
    assert all("forward" not in vars(m) for m in lite0.net.modules())


def test_the_smooth_gradient_changes_the_steps_and_still_climbs(tiny, one_thread):
    kw = dict(size=32, steps=48, transforms=None, progress=False)
    true = fv.render(tiny, "class:3", smooth_relu=0, **kw)
    smooth = fv.render(tiny, "class:3", smooth_relu=3, **kw)
    assert smooth.settings["smooth_relu"] == 3.0
    assert not torch.equal(true.images, smooth.images)
    rise = [float(r.values[0] - r.history[0, 0]) for r in (true, smooth)]
    assert rise[1] > 0.1 and rise[1] > 0.5 * rise[0]  # the true objective rises, about as fast
    assert tiny.predict(smooth.images).argmax(1).tolist() == [3]


class _Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_a_network_without_relu_modules_or_a_bad_temperature_is_a_one_line_error(tiny):
    model = fv.FeatureModel(_Functional(), name="functional", input_size=32)
    with pytest.raises(FeaturevisError, match="functional has no ReLU modules past the first") as e:
        fv.render(model, "class:1", size=32, steps=2, smooth_relu=3, progress=False)
    assert "\n" not in str(e.value)
    for t in (-1.0, float("nan"), float("inf")):
        with pytest.raises(FeaturevisError, match="smooth-ReLU temperature"):
            fv.render(tiny, "class:1", size=32, steps=2, smooth_relu=t, progress=False)
    assert all("forward" not in vars(m) for m in tiny.net.modules())
