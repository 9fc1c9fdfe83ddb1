"""Redirected ReLU gradients: same forward, gradient that wakes dead units, then steps aside."""

from __future__ import annotations

import torch
from torch import nn

import featurevis as fv
from featurevis import objectives as O
from featurevis.core.redirect import redirected_relus


def _grad(module: nn.Module, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    module(x).backward(g)
    return x.grad


def test_forward_unchanged_and_modules_restored():
    net = nn.Sequential(nn.ReLU(), nn.ReLU6())
    x = torch.linspace(-3, 9, 13).view(1, 1, 1, 13)
    with redirected_relus(net) as n:
        assert n == 2
        torch.testing.assert_close(net(x), x.clamp(0, 6))
    assert "forward" not in vars(net[0]) and "forward" not in vars(net[1])


def test_gradient_only_pushes_inactive_units_back_in():
    x = torch.tensor([[-1.0, -1.0, 3.0, 7.0, 7.0]])
    loss_grad = torch.tensor([[-1.0, 1.0, 2.0, 1.0, -1.0]])  # < 0: the step raises x
    relu6 = nn.ReLU6()
    assert _grad(relu6, x, loss_grad).tolist() == [[0, 0, 2, 0, 0]]  # plain: only the active unit
    x_dead = torch.tensor([[-1.0, -1.0, -2.0, 7.0, 7.0]])
    with redirected_relus(relu6):
        # the whole image is off: pass what turns units on (up from < 0, down from > 6) only
        assert _grad(relu6, x_dead, loss_grad).tolist() == [[-1, 0, 0, 1, 0]]
        # some unit of the image is on: the true gradient, as without redirection
        assert _grad(relu6, x, loss_grad).tolist() == [[0, 0, 2, 0, 0]]
        # per image in a batch: the dead one redirected, the live one true
        both = _grad(relu6, torch.cat([x_dead, x]), loss_grad.repeat(2, 1))
        assert both.tolist() == [[-1, 0, 0, 1, 0], [0, 0, 2, 0, 0]]
        assert _grad(relu6, x_dead[0], loss_grad[0]).tolist() == [-1, 0, 0, 1, 0]  # one unbatched vector


def test_a_unit_dead_at_the_start_gets_a_picture(tiny, one_thread):
    """Channel 0 of relu1 is off for every image (bias -1): with plain gradients nothing moves;
    redirected for the first steps, it turns on and the image changes."""
    with torch.no_grad():
        tiny.net.conv1.bias[0] = -1.0
    obj = O.channel("relu1", 0)
    plain = fv.render(tiny, obj, size=32, steps=48, transforms=None, redirect_relu=0, progress=False)
    fixed = fv.render(tiny, obj, size=32, steps=48, transforms=None, redirect_relu=16, progress=False)
    assert float(plain.values[0]) == 0 and float(plain.history.abs().max()) == 0
    assert float(fixed.values[0]) > 0
    assert float(fixed.images.std()) > 5 * float(plain.images.std())
