"""The embedded models: real ImageNet weights, correct architecture, labels."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import featurevis as fv
from featurevis.zoo import efficientnet_lite


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


def test_unknown_model_lists_choices():
    with pytest.raises(fv.FeaturevisError, match=r"unknown model 'lite9'.*lite"):
        fv.load_model("lite9")
