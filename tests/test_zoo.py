"""The embedded models: real ImageNet weights, correct architecture, labels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import featurevis as fv
from featurevis.zoo import convs, efficientnet_lite, googlenet, inception_v1, resnet


def _classify(model, photo, size):
    x = F.interpolate(photo, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return model.predict(x)[0]


def test_lite0_recognizes_the_sample_photos(lite0, photos):
    assert _classify(lite0, photos["chelsea"], 224).argmax() == 285  # Egyptian cat
    assert _classify(lite0, photos["coffee"], 224).argmax() == 967  # espresso
    assert lite0.labels[285] == "Egyptian cat" and len(lite0.labels) == 1000


@pytest.mark.parametrize("name,size", [("efficientnet_lite1", 240), ("lite2", 260)])
def test_larger_lites_load_and_agree(name, size, photos):
    m = fv.load_model(name)
    assert m.input_size == size
    assert _classify(m, photos["chelsea"], size).argmax() == 285


def test_batchnorm_folding_preserves_outputs():
    sd = torch.load(efficientnet_lite.weights_path("efficientnet_lite0"), weights_only=True)
    plain = efficientnet_lite.EfficientNetLite.from_state_dict(sd).eval()
    fused = efficientnet_lite.fuse_batchnorm(efficientnet_lite.EfficientNetLite.from_state_dict(sd).eval())
    x = torch.rand(2, 3, 96, 128)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), plain(x), atol=1e-4, rtol=1e-4)


def _padded_conv(conv: efficientnet_lite.SameConv2d, x: torch.Tensor) -> torch.Tensor:
    """TensorFlow's SAME convolution written out: pad the map, then convolve without padding."""
    k, s = conv.kernel_size[0], conv.stride[0]
    ph = max((-(-x.shape[-2] // s) - 1) * s + k - x.shape[-2], 0)
    pw = max((-(-x.shape[-1] // s) - 1) * s + k - x.shape[-1], 0)
    x = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
    return F.conv2d(x, conv.weight, conv.bias, s, 0, 1, conv.groups)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(
    "cin,cout,k,stride,groups,hw",
    [
        (8, 8, 3, 2, 8, (16, 16)),  # depthwise, pads (0, 1): the wider kernel
        (8, 8, 5, 2, 8, (14, 18)),  # pads (1, 2)
        (8, 8, 3, 2, 8, (15, 16)),  # odd height: symmetric rows, asymmetric columns
        (8, 8, 5, 2, 8, (13, 13)),  # odd sides: symmetric padding
        (3, 8, 3, 2, 1, (16, 16)),  # the stem: a dense kernel keeps the padded copy
        (8, 12, 1, 1, 1, (5, 7)),  # 1x1: a matrix product over the pixels
        (8, 8, 3, 1, 8, (9, 9)),
    ],
)
def test_same_convolution_rewrites_are_exact(cin, cout, k, stride, groups, hw, channels_last):
    """SameConv2d's CPU rewrites give the padded convolution's outputs and gradients (input and weights)."""
    torch.manual_seed(0)
    conv = efficientnet_lite.SameConv2d(cin, cout, k, stride=stride, groups=groups, bias=True)
    x = torch.randn(2, cin, *hw)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    out = []
    for fn in (conv, lambda t: _padded_conv(conv, t)):
        xi = x.clone().requires_grad_()
        y = fn(xi)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        out.append((y.detach(), xi.grad, conv.weight.grad.clone(), conv.bias.grad.clone()))
        conv.zero_grad(set_to_none=True)
    for fast, slow in zip(*out, strict=True):
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    assert out[0][0].shape == (2, cout, -(-hw[0] // stride), -(-hw[1] // stride))


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("k,stride,padding", [(1, 1, 0), (1, 2, 0), (3, 1, 1)])
def test_zoo_convolution_matches_nn_conv2d(k, stride, padding, channels_last):
    """The zoo's Conv2d (its 1x1 matrix-product path, and every other case) is nn.Conv2d."""
    torch.manual_seed(0)
    conv = convs.Conv2d(6, 10, k, stride=stride, padding=padding)
    ref = torch.nn.Conv2d(6, 10, k, stride=stride, padding=padding)
    ref.load_state_dict(conv.state_dict())
    x = torch.randn(2, 6, 7, 9)
    if channels_last:
        conv, ref = conv.to(memory_format=torch.channels_last), ref.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    assert conv.pointwise(x) == (k == 1 and stride == 1 and channels_last)
    out = []
    for m in (conv, ref):
        xi = x.clone().requires_grad_()
        y = m(xi)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        out.append((y.detach(), xi.grad, m.weight.grad, m.bias.grad))
    for fast, slow in zip(*out, strict=True):
        torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


def test_zoo_networks_use_the_zoo_convolution():
    """ResNet-50, GoogLeNet, InceptionV1 and EfficientNet-Lite build every convolution from it."""
    for net in (resnet.resnet50(), googlenet.GoogLeNet(), inception_v1.InceptionV1()):
        found = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert found and all(isinstance(m, convs.Conv2d) for m in found)


def test_unknown_model_lists_choices():
    with pytest.raises(fv.FeaturevisError, match=r"unknown model 'lite9'.*lite"):
        fv.load_model("lite9")
