"""The classic zoo (InceptionV1, GoogLeNet, VGG, ResNet, AlexNet): checkpoints load through the
weight-resolution path, layers have the names people use, every recipe runs on every model, and
bad weights (wrong architecture, truncated, checksum mismatch, offline) fail in one clear line.

No test touches the network (conftest's ``offline`` fixture): checkpoints are written here from
randomly initialized architectures.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import featurevis as fv
from featurevis.cli import main
from featurevis.core.layers import conv_names
from featurevis.core.losses import default_layers
from featurevis.zoo import ZOO, checkpoints, googlenet, inception_v1, vgg

CLASSIC = ["inception_v1", "googlenet", "vgg16", "vgg19", "resnet50", "alexnet"]
#: Layer names people use for each family (Lucid, torchvision).
NAMED_LAYERS = {
    "inception_v1": ["conv2d0", "mixed3a", "mixed4a", "mixed4c", "mixed5b", "mixed4d_3x3_pre_relu_conv"],
    "googlenet": ["conv1", "inception3a", "inception4c", "inception5b", "inception4d.branch2"],
    "vgg16": ["features.0", "features.22", "features.29", "classifier.3"],
    "vgg19": ["features.0", "features.22", "features.35", "classifier.6"],
    "resnet50": ["layer1", "layer3.2", "layer4.2.relu", "layer2.0.downsample", "fc"],
    "alexnet": ["features.0", "features.9", "features.12", "classifier.4"],
}
#: Smallest side each model renders at in these tests (AlexNet's stride-4 stem and three
#: pools need ~64 px after the random down-scaling of the standard transforms).
SIZE = {"alexnet": 96}


def _random_net(name: str) -> nn.Module:
    """The architecture with random weights, shaped like the real checkpoint (GoogLeNet with aux heads)."""
    torch.manual_seed(0)
    net = googlenet.GoogLeNet(aux_logits=True) if name == "googlenet" else ZOO[name].arch({})
    with torch.no_grad():  # non-trivial batch-norm statistics, so folding them is exercised
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """``checkpoint(name)``: path of a state-dict file of ``name`` with random weights (cached)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    made: dict[str, Path] = {}

    def make(name: str) -> Path:
        if name not in made:
            made[name] = folder / f"{name}.pth"
            torch.save(_random_net(name).state_dict(), made[name])
        return made[name]

    yield make
    shutil.rmtree(folder, ignore_errors=True)  # ~1.3 GB of VGG/AlexNet files: pytest keeps old temp dirs


@pytest.fixture(scope="module")
def loaded(checkpoint):
    """``loaded(name)``: the FeatureModel loaded from ``checkpoint(name)`` (cached per module)."""
    models: dict[str, fv.FeatureModel] = {}

    def get(name: str) -> fv.FeatureModel:
        if name not in models:
            models[name] = fv.load_model(name, weights=checkpoint(name))
        return models[name]

    return get


# -- loading, names, fidelity -------------------------------------------------------------
@pytest.mark.parametrize("name", CLASSIC)
def test_checkpoint_loads_with_the_familiar_layer_names(name, checkpoint, loaded, one_thread):
    m = loaded(name)
    assert m.name == name
    for layer in NAMED_LAYERS[name]:
        assert m.check_layer(layer) == layer
    n_out = 1008 if name == "inception_v1" else 1000
    assert len(m.labels) == n_out
    # The loaded model (BN folded, channels_last, normalization inside) computes what the
    # plain architecture computes on the normalized input.
    ref = _random_net(name)
    x = torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref((x - m.mean) / m.std) if name != "googlenet" else _googlenet_ref(ref, x)
        got = m(x)["logits"]
    assert got.shape == (1, n_out)
    torch.testing.assert_close(got, want, atol=1e-4 * max(1.0, want.abs().max().item()), rtol=1e-4)


def _googlenet_ref(ref: googlenet.GoogLeNet, x: torch.Tensor) -> torch.Tensor:
    """torchvision's pretrained GoogLeNet: ImageNet-normalized input, transform_input on."""
    ref.transform_input = True
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225])
    return ref((x - mean) / std.view(1, 3, 1, 1))


def test_googlenet_loads_with_or_without_aux_heads(tmp_path):
    torch.manual_seed(0)
    without = googlenet.GoogLeNet(aux_logits=False).state_dict()
    assert not any(k.startswith("aux") for k in without)
    torch.save(without, tmp_path / "g.pth")
    m = fv.load_model("googlenet", weights=tmp_path / "g.pth")
    assert "aux1" not in m.layer_names and "inception4e" in m.layer_names


def test_inception_v1_has_lucents_checkpoint_keys_and_shapes():
    """Key names and shapes of Lucent's ``inception5h.pth`` (from its InceptionV1 definition)."""
    sd = inception_v1.InceptionV1().state_dict()
    assert len(sd) == 116  # 57 convs (weight, bias) + the 1008-way classifier
    expected = {
        "conv2d0_pre_relu_conv.weight": (64, 3, 7, 7),
        "conv2d2_pre_relu_conv.weight": (192, 64, 3, 3),
        "mixed3a_5x5_pre_relu_conv.weight": (32, 16, 5, 5),
        "mixed4a_3x3_pre_relu_conv.weight": (204, 96, 3, 3),
        "mixed4b_1x1_pre_relu_conv.weight": (160, 508, 1, 1),
        "mixed4e_pool_reduce_pre_relu_conv.bias": (128,),
        "mixed5a_5x5_bottleneck_pre_relu_conv.weight": (48, 832, 1, 1),
        "mixed5b_3x3_pre_relu_conv.weight": (384, 192, 3, 3),
        "softmax2_pre_activation_matmul.weight": (1008, 1024),
        "softmax2_pre_activation_matmul.bias": (1008,),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert all(k.endswith(("_pre_relu_conv.weight", "_pre_relu_conv.bias")) or k.startswith("softmax2") for k in sd)


def test_inception_v1_preprocessing_and_labels(loaded):
    m = loaded("inception_v1")
    x = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    torch.testing.assert_close(m.normalize(x).flatten()[:2], torch.tensor([-117.0, 138.0]))  # Lucid's range
    assert m.labels[1] == "kit fox" and m.labels[8] == "Egyptian cat" and m.labels[0].startswith("(unused")
    assert m.class_index("Egyptian cat") == 8


def test_torchvision_style_module_keeps_its_names_and_conv_outputs():
    """A plain module named like torchvision's VGG, with in-place ReLUs, works via as_model."""

    class TinyVGG(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            cin = 3
            for width in (4, 8, 8, 8, 8):
                for _ in range(2):
                    layers += [nn.Conv2d(cin, width, 3, padding=1), nn.ReLU(inplace=True)]
                    cin = width
                layers.append(nn.MaxPool2d(2))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(8, 10)

        def forward(self, x):
            return self.classifier(self.features(x).mean((2, 3)))

    torch.manual_seed(0)
    m = fv.as_model(TinyVGG())
    acts = m(torch.rand(1, 3, 64, 64), ["features.0", "features.1"])
    assert acts["features.0"].min() < 0  # the conv's own output, not overwritten by the in-place ReLU
    assert acts["features.1"].min() >= 0
    assert default_layers(m) == (
        ["features.1", "features.6", "features.11", "features.16", "features.21"],
        "features.18",
    )
    r = fv.render(m, "features.7:2", size=64, steps=2, progress=False)
    assert r.images.shape == (1, 3, 64, 64)


def test_vgg19_style_defaults_are_gatys_layers(loaded):
    names = conv_names(vgg.vgg19())
    assert names["conv4_2"] == "features.22" and names["conv5_4"] == "features.35"
    assert default_layers(loaded("vgg19")) == (
        ["features.1", "features.6", "features.11", "features.20", "features.29"],
        "features.22",
    )
    assert default_layers(loaded("vgg16")) == (
        ["features.1", "features.6", "features.11", "features.18", "features.25"],
        "features.20",
    )
    assert conv_names(ZOO["alexnet"].arch({})) is None  # three pools and 11x11 convs: not VGG


# -- every recipe on every classic model ------------------------------------------------------
@pytest.mark.parametrize("name", CLASSIC)
def test_every_recipe_runs_on_every_classic_model(name, loaded, one_thread):
    m = loaded(name)
    size = SIZE.get(name, 64)
    layer = ZOO[name].default_layer
    photo = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    ch = f"{layer}:3"
    r = fv.render(m, ch, size=size, steps=2, progress=False)
    assert r.images.shape == (1, 3, size, size) and torch.isfinite(r.values).all()
    d = fv.dream(m, photo, octaves=1, steps=2, progress=False)  # the model's default layer
    assert d.image.shape == photo.shape and not torch.equal(d.image, photo)
    assert m.default_layer == layer and layer in d.objective
    inv = fv.invert(m, photo, layer, size=size, steps=2, progress=False)
    assert inv.image.shape[-2:] == photo.shape[-2:]
    s = fv.style_transfer(m, photo, photo.flip(-1), size=size, steps=2, progress=False)
    assert s.image.shape == photo.shape and math.isfinite(s.style_after) and math.isfinite(s.content_after)
    if name == "vgg19":
        assert s.settings["style_layers"][3] == "features.20" and s.settings["content_layer"] == "features.22"
    a = fv.attack(m, photo, eps=8 / 255, steps=2, size=None, progress=False)
    assert a.image.shape == photo.shape and a.linf <= 8 / 255 + 1e-6
    sal = fv.saliency(m, photo, size=None, samples=2)
    assert sal.gradient.shape == photo.shape and sal.gradient.abs().sum() > 0


def test_too_small_input_is_one_clear_error(loaded):
    with pytest.raises(fv.FeaturevisError, match=r"16x16 image is too small for alexnet"):
        loaded("alexnet").layer_shape("features.12", 16)


# -- weight resolution ---------------------------------------------------------------------
def _hub_dir() -> Path:
    return checkpoints.hub_checkpoint_dir()


def test_weights_are_found_in_the_torch_hub_cache(checkpoint, capsys):
    dest = _hub_dir() / ZOO["googlenet"].file_name
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(checkpoint("googlenet").read_bytes())
    assert ZOO["googlenet"].weights_path() == dest
    m = fv.load_model("googlenet")  # offline: found in the cache, nothing downloaded
    assert "inception4c" in m.layer_names
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    line = out.splitlines()[next(i for i, s in enumerate(out.splitlines()) if s.startswith("googlenet")) + 1]
    assert "present" in line and str(dest) in line
    assert "missing  download: https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in out


def test_offline_failure_says_what_to_fetch_and_where(capsys, tmp_path):
    with pytest.raises(fv.FeaturevisError) as e:
        fv.load_model("vgg16")
    msg = str(e.value)
    assert "\n" not in msg
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in msg
    assert str(_hub_dir() / "vgg16-397923af.pth") in msg and "--weights" in msg
    assert main(["render", "vgg16", "features.22:1", "--steps", "1", "-q", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("featurevis: error: weights for vgg16") and not list(_hub_dir().glob("*.part"))


def test_unreachable_url_is_a_clear_error(monkeypatch):
    """The real downloader against a closed local port: refused at once, one line, no partial file."""
    monkeypatch.setattr(checkpoints, "fetch", checkpoints._urlopen_fetch)
    entry = dataclasses.replace(ZOO["alexnet"], url="http://127.0.0.1:9/alexnet-owt-7be5be79.pth")
    with pytest.raises(fv.FeaturevisError, match=r"could not be downloaded: fetch http://127\.0\.0\.1:9/"):
        entry.resolve_weights()
    assert not _hub_dir().exists() or not list(_hub_dir().iterdir())


def test_download_verifies_checksum_and_is_atomic(monkeypatch, tmp_path):
    payload = b"pretend checkpoint bytes"
    good = checkpoints.hashlib.sha256(payload).hexdigest()
    monkeypatch.setattr(checkpoints, "fetch", lambda url, out: out.write(payload))
    entry = dataclasses.replace(ZOO["alexnet"], url=f"https://example.invalid/tiny-{good[:8]}.pth", sha256=good[:8])
    dest = entry.resolve_weights()
    assert dest == _hub_dir() / f"tiny-{good[:8]}.pth" and dest.read_bytes() == payload
    assert entry.resolve_weights() == dest  # second time: from the cache

    bad = dataclasses.replace(entry, url="https://example.invalid/tiny-deadbeef.pth", sha256="deadbeef")
    with pytest.raises(fv.FeaturevisError, match=r"checksum mismatch .* expected deadbeef"):
        bad.resolve_weights()
    assert sorted(p.name for p in _hub_dir().iterdir()) == [dest.name]  # no partial or bad file left


def test_hash_prefix_follows_torchvision_file_names():
    assert checkpoints.hash_prefix("vgg16-397923af.pth") == "397923af"
    assert checkpoints.hash_prefix("alexnet-owt-7be5be79.pth") == "7be5be79"
    assert checkpoints.hash_prefix("inception5h.pth") is None
    assert ZOO["resnet50"].sha256 == "0676ba61" and ZOO["inception_v1"].sha256 is None


# -- bad checkpoints: one clear line each ---------------------------------------------------
def test_wrong_architecture_is_one_line(checkpoint):
    with pytest.raises(fv.FeaturevisError, match=r"is not a inception_v1 checkpoint: missing conv2d0_pre_relu_conv"):
        fv.load_model("inception_v1", weights=checkpoint("googlenet"))


def test_wrong_shape_is_one_line(tmp_path):
    sd = inception_v1.InceptionV1().state_dict()
    sd["softmax2_pre_activation_matmul.weight"] = torch.zeros(1008, 1000)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(fv.FeaturevisError, match=r"softmax2_pre_activation_matmul.weight has shape \(1008, 1000\)"):
        fv.load_model("inception_v1", weights=tmp_path / "bad.pth")


def test_truncated_checkpoint_is_one_line_in_api_and_cli(checkpoint, tmp_path, capsys):
    data = checkpoint("inception_v1").read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(fv.FeaturevisError, match=r"not a complete PyTorch checkpoint"):
        fv.load_model("inception_v1", weights=cut)
    assert main(["layers", "inception_v1", "--weights", str(cut)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a complete PyTorch checkpoint" in err[0]


class _Payload:
    """Not a tensor: a weights-only load must refuse to unpickle it."""


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"w": torch.zeros(1), "obj": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(fv.FeaturevisError, match=r"refusing to load .*weights_only=True"):
        fv.load_model("alexnet", weights=tmp_path / "evil.pth")
    with pytest.raises(fv.FeaturevisError, match=r"weights file not found"):
        fv.load_model("alexnet", weights=tmp_path / "missing.pth")


def test_wrapped_and_dataparallel_checkpoints_load(tmp_path):
    sd = inception_v1.InceptionV1().state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "wrapped.pth")
    assert fv.load_model("inceptionv1", weights=tmp_path / "wrapped.pth").name == "inception_v1"


# -- CLI ---------------------------------------------------------------------------------
def test_cli_weights_option_on_layers_and_render(checkpoint, tmp_path, capsys, one_thread):
    ckpt = str(checkpoint("inception_v1"))
    assert main(["layers", "inception_v1", "--weights", ckpt]) == 0
    out = capsys.readouterr().out
    assert "mixed4c" in out and "(1008,)" in out
    png = tmp_path / "m.png"
    args = ["render", "inceptionv1", "mixed4c:7", "--weights", ckpt, "--steps", "2", "--size", "64", "-q"]
    assert main([*args, "-o", str(png)]) == 0
    assert png.is_file()


def test_resnet50_v2_file_in_the_cache_is_accepted():
    folder = _hub_dir()
    folder.mkdir(parents=True, exist_ok=True)
    assert ZOO["resnet50"].cached_path() is None
    (folder / "resnet50-11ad3fa6.pth").write_bytes(b"")  # torchvision's current default file name
    assert ZOO["resnet50"].cached_path() == folder / "resnet50-11ad3fa6.pth"


def test_catalog_builds_a_zoo_model_from_its_checkpoint(checkpoint, tmp_path, one_thread):
    report = fv.build_catalog(
        "googlenet",
        tmp_path / "cat",
        weights=checkpoint("googlenet"),
        layers="inception3a.branch1",
        size=64,
        steps=1,
        batch=64,
        diversity=0,
        negative=False,
        top_k=1,
        progress=False,
    )
    assert report.channels == 64
    store = fv.CatalogStore(tmp_path / "cat")
    assert len(store.done_channels(report.run, "inception3a.branch1")) == 64
    store.close()


def test_fc6_code_bounds_come_from_alexnet_fc6_and_drive_dgn(loaded, photos, one_thread):
    """DGN-AM's published setup: the fc6 generator's codes are bounded by AlexNet's fc6 (after
    its ReLU, ``classifier.2``) on real photos, [0, 3 std] per unit."""
    from featurevis.core.generators import caffe_bgr_to_unit

    alex = loaded("alexnet")
    imgs = torch.cat([torch.nn.functional.interpolate(p, size=(224, 224), mode="bilinear") for p in photos.values()])
    low, high = fv.activation_bounds(alex, "classifier.2", imgs)
    assert low.shape == high.shape == (4096,) and (low == 0).all() and high.max() > 0
    net = fv.deepsim_fc6(4096, fc=128, widths=(8,) * 8)  # fc6-shaped, toy widths for speed
    gen = fv.Generator(net, (4096,), low=low, high=high, to_image=caffe_bgr_to_unit)
    r = fv.dgn(alex, "class:1", gen, steps=2, progress=False)
    assert r.images.shape == (1, 3, 227, 227) and torch.isfinite(r.values).all()
