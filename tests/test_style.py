"""Style transfer (Gatys) and fast style (Johnson): losses fall, structure stays, bad input fails cleanly."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import featurevis as fv
from featurevis.cli import main
from featurevis.core.losses import default_layers, gram, relative_error, style_grams, style_loss
from featurevis.recipes.fast_style import TransformNet, load_style_net, stylize, train_style_net
from featurevis.recipes.style import preserve_color

pytestmark = pytest.mark.usefixtures("one_thread")


def _hubble() -> torch.Tensor:
    data = pytest.importorskip("skimage.data")
    return torch.from_numpy(data.immunohistochemistry()).permute(2, 0, 1)[None].float() / 255


def test_gram_loss_falls_over_90_percent_and_content_stays(lite0, photos):
    content = photos["astronaut"]
    r = fv.style_transfer(lite0, content, _hubble(), size=64, steps=120, progress=False)
    assert r.style_drop > 0.9, r
    assert r.content_after < 1.0, r  # bounded: the photo's features are still largely there
    assert r.image.shape == content.shape  # back at the content's own size
    # the result still looks like the content more than like the style
    small = torch.nn.functional.interpolate(r.image, size=64, mode="area")
    base = torch.nn.functional.interpolate(content, size=64, mode="area")
    assert relative_error(small, base) < 0.1


def test_noise_start_odd_size_and_lite_layers(lite0, photos):
    odd = photos["chelsea"][..., :45, :67]
    r = fv.style_transfer(lite0, odd, photos["coffee"], size=None, init="noise", steps=30, progress=False)
    assert r.image.shape == (1, 3, 45, 67) and r.style_after < r.style_before
    assert default_layers(lite0) == (["_stem_act", "_blocks.1", "_blocks.3", "_blocks.5"], "_blocks.5")


def test_other_models_get_layers_and_custom_layers_work(tiny, photos):
    styles, content = default_layers(tiny)
    assert styles and content in tiny.layer_names
    r = fv.style_transfer(
        tiny,
        photos["rocket"],
        photos["coffee"],
        style_layers="relu1,relu2",
        content_layer="conv3",
        size=32,
        steps=20,
        progress=False,
    )
    assert r.settings["style_layers"] == ["relu1", "relu2"] and r.style_after < r.style_before


def test_blending_styles_weights_their_grams(tiny, photos):
    a, b = photos["coffee"], photos["chelsea"]
    ga = style_grams(tiny, [a], [1.0], ["relu1"], 32)["relu1"]
    gb = style_grams(tiny, [b], [1.0], ["relu1"], 32)["relu1"]
    mix = style_grams(tiny, [a, b], [3.0, 1.0], ["relu1"], 32)["relu1"]
    assert torch.allclose(mix, 0.75 * ga + 0.25 * gb, atol=1e-6)
    with pytest.raises(fv.FeaturevisError, match="style weight"):
        style_grams(tiny, [a, b], [1.0], ["relu1"], 32)
    r = fv.style_transfer(tiny, photos["rocket"], [a, b], style_weights=[1, 1], size=32, steps=3, progress=False)
    assert r.settings["style_weights"] == [1, 1]


def test_gram_is_size_independent():
    f = torch.rand(1, 4, 8, 8)
    assert torch.allclose(gram(f), gram(f.repeat(1, 1, 2, 2)), atol=1e-6)


def test_preserve_color_keeps_content_chroma(tiny, photos):
    content = photos["chelsea"]
    r = fv.style_transfer(tiny, content, photos["coffee"], size=32, steps=5, color=True, progress=False)
    yiq = torch.tensor([[0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    chroma = torch.einsum("ij,bjhw->bihw", yiq, r.image)
    target = torch.einsum("ij,bjhw->bihw", yiq, content)
    assert (chroma - target).abs().mean() < 0.02
    gray = preserve_color(torch.full((1, 3, 2, 2), 0.5), torch.full((1, 3, 2, 2), 0.5))
    assert torch.allclose(gray, torch.full_like(gray, 0.5), atol=1e-5)


def test_bad_api_input(tiny, photos):
    c, s = photos["chelsea"], photos["coffee"]
    with pytest.raises(fv.FeaturevisError, match="unknown layer"):
        fv.style_transfer(tiny, c, s, content_layer="conv7", steps=1, progress=False)
    with pytest.raises(fv.FeaturevisError, match="need at least 16 px"):
        fv.style_transfer(tiny, c, s, size=8, steps=1, progress=False)
    with pytest.raises(fv.FeaturevisError, match="unknown init"):
        fv.style_transfer(tiny, c, s, init="blank", steps=1, progress=False)
    gray = torch.rand(40, 40)  # grayscale style works
    assert fv.style_transfer(tiny, c, gray, size=32, steps=2, progress=False).image.shape == c.shape


# -- fast style -----------------------------------------------------------------------------
def test_transform_net_starts_at_identity_and_keeps_odd_sizes():
    x = torch.rand(1, 3, 37, 51) * 0.9 + 0.05
    y = TransformNet(8, 1)(x)
    assert y.shape == x.shape and torch.allclose(y, x, atol=1e-4)


def test_brief_training_stylizes_and_round_trips(lite0, photos, tmp_path):
    style = _hubble()
    sn = train_style_net(
        lite0,
        style,
        [photos["chelsea"], photos["coffee"]],
        steps=150,
        size=48,
        batch=2,
        width=8,
        blocks=1,
        lr=1e-2,
        progress=False,
    )
    x = torch.nn.functional.interpolate(photos["chelsea"], size=(48, 72), mode="area")
    y = stylize(sn, x)
    assert y.shape == x.shape and (y - x).abs().mean() > 0.02  # the network changed the photo
    layers, _ = default_layers(lite0)
    grams = style_grams(lite0, [style], [1.0], layers, 48)
    with torch.no_grad():
        before = style_loss(lite0(x, layers), grams).item()
        after = style_loss(lite0(y, layers), grams).item()
    assert after < 0.85 * before, (before, after)
    path = sn.save(tmp_path / "net.pt")
    again = load_style_net(path)
    assert torch.equal(stylize(again, x), y)
    assert again.meta["steps"] == 150 and again.meta["model"] == lite0.name


def test_content_loss_compares_each_crop_with_its_own_source(tiny, photos):
    """The network starts at the identity, so with only the content term the loss is ~0 if
    and only if each stylized crop is compared with the crop it came from (handed over by
    the parameterization's draw, not left behind by a previous forward)."""
    sn = train_style_net(
        tiny,
        photos["coffee"],
        [photos["chelsea"], photos["coffee"]],
        steps=3,
        size=32,
        batch=2,
        width=4,
        blocks=1,
        lr=0.0,
        style_weight=0.0,
        tv=0.0,
        progress=False,
    )
    assert sn.meta["steps"] == 3 and 0 <= sn.meta["loss_start"] < 1e-3


def test_load_style_net_rejects_other_files(tmp_path):
    (tmp_path / "junk.pt").write_text("nope")
    with pytest.raises(fv.FeaturevisError, match="not a style network"):
        load_style_net(tmp_path / "junk.pt")
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(fv.FeaturevisError, match="not a style network"):
        load_style_net(tmp_path / "other.pt")
    with pytest.raises(fv.FeaturevisError, match="no such file"):
        load_style_net(tmp_path / "missing.pt")


# -- CLI ------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "ok.png")
    Image.effect_noise((37, 23), 60).convert("RGB").save(tmp_path / "style.jpg")
    Image.new("RGBA", (33, 21), (0, 90, 0, 128)).save(tmp_path / "rgba.png")
    Image.new("I;16", (30, 30), 40000).save(tmp_path / "deep.png")
    Image.new("L", (31, 17), 100).save(tmp_path / "gray.png")
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "empty").mkdir()
    (tmp_path / "train").mkdir()
    Image.new("RGB", (50, 40), (20, 90, 200)).save(tmp_path / "train" / "a.png")
    return tmp_path


@pytest.mark.parametrize("content,style", [("ok.png", "style.jpg"), ("rgba.png", "deep.png"), ("gray.png", "ok.png")])
def test_cli_style_any_image_mode_and_size(files, monkeypatch, capsys, content, style):
    monkeypatch.chdir(files)
    assert main(["style", content, style, "-o", "r.png", "--size", "32", "--steps", "2", "-q"]) == 0
    assert "style loss" in capsys.readouterr().out
    assert Image.open(files / "r.png").size == Image.open(files / content).size


def test_cli_style_train_and_apply(files, monkeypatch, capsys):
    monkeypatch.chdir(files)
    args = ["style-train", "style.jpg", "--images", "train", "--steps", "2", "--size", "32", "--width", "4", "-q"]
    assert main([*args, "-o", "n.pt"]) == 0
    assert "wrote n.pt" in capsys.readouterr().out
    assert main(["style-apply", "n.pt", "rgba.png", "-o", "fast.png"]) == 0
    assert Image.open(files / "fast.png").size == (33, 21)


@pytest.mark.parametrize(
    "args,message",
    [
        (["style", "ok.png", "style.jpg", "--content-layer", "_blocks.99"], "unknown layer '_blocks.99'"),
        (["style", "ok.png", "style.jpg", "--style-layers", "_blocks.1,nope"], "unknown layer 'nope'"),
        (["style", "ok.png", "notes.jpg"], "not an image"),
        (["style", "missing.png", "style.jpg"], "no such file"),
        (["style", "notes.jpg", "style.jpg", "-o", "/proc/nope/x.png"], "cannot write"),  # before any work
        (["style", "ok.png", "style.jpg", "-o", "x.txt"], "unknown image format"),
        (["style", "ok.png", "style.jpg", "ok.png", "--blend", "1"], "--blend has 1 weight(s) for 2"),
        (["style", "ok.png", "style.jpg", "--size", "8"], "need at least 16 px"),
        (["style-train", "style.jpg", "-o", "net.png"], "must end in .pt"),
        (["style-train", "style.jpg", "--images", "empty", "-o", "n.pt"], "no images"),
        (["style-train", "notes.jpg", "-o", "/proc/nope/n.pt"], "cannot write"),
        (["style-apply", "notes.jpg", "ok.png"], "not a style network"),
        (["style-apply", "missing.pt", "ok.png"], "no such file"),
        (["style-apply", "notes.jpg", "ok.png", "-o", "x.txt"], "unknown image format"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(files, monkeypatch, capsys, args, message):
    monkeypatch.chdir(files)
    extra = ["-q", "--steps", "1"] if args[0] != "style-apply" else []
    try:
        code = main([*args, *extra])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_time_budget_and_default_sample_photos(tiny, photos):
    pytest.importorskip("skimage.data")
    sn = train_style_net(tiny, photos["coffee"], minutes=0.01, size=32, batch=1, width=4, blocks=1, progress=False)
    assert sn.meta["steps"] >= 1 and sn.meta["seconds"] < 10
    with pytest.raises(fv.FeaturevisError, match="too small"):
        train_style_net(tiny, photos["coffee"], steps=1, size=16, progress=False)
