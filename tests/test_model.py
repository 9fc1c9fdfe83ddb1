from __future__ import annotations

import pytest
import torch

import featurevis as fv
from featurevis.core.model import INPUT, LOGITS


def test_weights_frozen_and_eval(tiny):
    assert all(not p.requires_grad for p in tiny.parameters())
    tiny.train()
    assert not tiny.net.training


def test_layers_in_execution_order_with_shapes(tiny):
    infos = tiny.layers(32)
    names = [i.name for i in infos]
    assert names == ["conv1", "relu1", "conv2", "relu2", "conv3", "pool", "fc"]
    shapes = {i.name: i.shape for i in infos}
    assert shapes["conv2"] == (16, 16, 16)
    assert shapes["fc"] == (10,)
    assert tiny.layer_shape("conv3", 64) == (16, 16, 16)


def test_capture_stops_after_deepest_requested_layer(tiny):
    tiny.layers()  # the first capture probes every layer's layout once; count only the capture
    calls = []
    tiny.net.conv3.register_forward_hook(lambda *a: calls.append("conv3"))
    tiny.net.fc.register_forward_hook(lambda *a: calls.append("fc"))
    acts = tiny(torch.rand(2, 3, 32, 32), ["relu1", "conv2"])
    assert set(acts) == {"relu1", "conv2"}
    assert acts["conv2"].shape == (2, 16, 16, 16)
    assert calls == []  # nothing after conv2 ran
    acts = tiny(torch.rand(2, 3, 32, 32), [LOGITS, "conv1", INPUT])
    assert acts[LOGITS].shape == (2, 10) and calls == ["conv3", "fc"]


def test_gradient_reaches_input_only(tiny):
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    tiny(x, ["conv2"])["conv2"].mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny.parameters())


def test_normalization_inside(tiny):
    net_out = tiny.net((torch.full((1, 3, 32, 32), 0.5) - tiny.mean) / tiny.std)
    assert torch.allclose(tiny(torch.full((1, 3, 32, 32), 0.5))[LOGITS], net_out)


def test_unknown_layer_lists_closest_names(tiny):
    with pytest.raises(fv.FeaturevisError, match=r"unknown layer 'conv4'.*conv"):
        tiny(torch.rand(1, 3, 32, 32), ["conv4"])


def test_class_index_by_name_and_range(tiny):
    assert tiny.class_index("Class3") == 3
    assert tiny.class_index("7") == 7
    with pytest.raises(fv.FeaturevisError, match="out of range"):
        tiny.class_index(10)
    with pytest.raises(fv.FeaturevisError, match="unknown class"):
        tiny.class_index("zebra")


def test_any_module_is_accepted():
    m = fv.as_model(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()))
    assert [i.name for i in m.layers(16)] == ["0", "1"]
    r = fv.render(m, fv.objectives.channel("1", 2), size=16, steps=3, progress=False, transforms="none")
    assert r.images.shape == (1, 3, 16, 16)
