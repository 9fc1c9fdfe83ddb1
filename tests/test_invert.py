"""Feature inversion: the reconstruction's features match the photo's; bad input fails cleanly."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

import featurevis as fv
from featurevis.cli import main
from featurevis.core.images import as_image
from featurevis.core.layers import depth_layers
from featurevis.recipes.invert import invert_depths, strip

pytestmark = pytest.mark.usefixtures("one_thread")


def test_reconstruction_matches_features_far_better_than_noise(lite0, photos):
    r = fv.invert(lite0, photos["chelsea"], "_blocks.3", size=64, steps=60, progress=False)
    assert r.image.shape == r.target.shape == (1, 3, 43, 64)
    assert r.feature_error < 0.1 * r.random_error, r
    assert r.image.min() >= 0 and r.image.max() <= 1  # range constraint


def test_shallow_layer_gives_the_photo_back_better_than_a_deep_one(lite0, photos):
    kw = dict(size=64, steps=100, progress=False)
    shallow = fv.invert(lite0, photos["coffee"], "_blocks.1", **kw)
    deep = fv.invert(lite0, photos["coffee"], "_blocks.12", **kw)
    assert shallow.feature_error < 0.2 * shallow.random_error
    assert deep.feature_error < 0.2 * deep.random_error
    assert shallow.psnr > deep.psnr + 2, (shallow.psnr, deep.psnr)


def test_several_layers_pixel_and_custom_param(tiny, photos):
    photo = photos["rocket"]
    both = fv.invert(tiny, photo, {"relu1": 1.0, "conv3": 0.5}, size=32, steps=40, param="pixel", progress=False)
    assert set(both.layers) == {"relu1", "conv3"} and both.feature_error < 0.5 * both.random_error
    h, w = both.image.shape[-2:]
    p = fv.FourierImage(1, (h, w), sd=0.5)
    custom = fv.invert(tiny, photo, "relu2", size=32, steps=40, param=p, progress=False)
    assert custom.feature_error < 0.5 * custom.random_error
    with pytest.raises(fv.FeaturevisError, match="parameterization makes"):
        fv.invert(tiny, photo, "relu2", size=32, steps=1, param=fv.FourierImage(1, 8), progress=False)


def test_depth_layers_run_shallow_to_deep_and_make_a_strip(tiny, photos):
    names = depth_layers(tiny)
    order = [i.name for i in tiny.layers()]
    assert names == sorted(names, key=order.index) and len(names) >= 3
    results = invert_depths(tiny, photos["chelsea"], size=24, steps=2, progress=False)
    assert [next(iter(r.layers)) for r in results] == names
    row = strip(results)
    assert row.shape[1] == results[0].image.shape[-2] and row.shape[2] > row.shape[1] * len(results)


def test_odd_images_are_fixed_up():
    gray = torch.rand(5, 7)
    assert as_image(gray).shape == (1, 3, 5, 7)
    rgba = torch.ones(4, 5, 7)
    rgba[3] = 0  # fully transparent: composited on white
    assert torch.allclose(as_image(rgba), torch.ones(1, 3, 5, 7))
    deep = torch.full((1, 1, 4, 4), 65535, dtype=torch.int32)
    assert torch.allclose(as_image(deep), torch.ones(1, 3, 4, 4))
    with pytest.raises(fv.FeaturevisError, match="channels"):
        as_image(torch.rand(1, 2, 4, 4))
    with pytest.raises(fv.FeaturevisError, match="at least 2x2"):
        as_image(torch.rand(3, 1, 9))


def test_unknown_layer_lists_close_names(tiny, photos):
    with pytest.raises(fv.FeaturevisError, match=r"unknown layer 'conv9'.*closest"):
        fv.invert(tiny, photos["chelsea"], "conv9", steps=1, progress=False)
    with pytest.raises(fv.FeaturevisError, match="malformed layer weight"):
        fv.invert(tiny, photos["chelsea"], "conv1=lots", steps=1, progress=False)


@pytest.fixture
def files(tmp_path):
    Image.new("RGB", (40, 30), (200, 30, 30)).save(tmp_path / "ok.png")
    Image.new("RGBA", (33, 21), (0, 90, 0, 128)).save(tmp_path / "rgba.png")
    Image.new("I;16", (30, 30), 40000).save(tmp_path / "deep.png")
    Image.new("L", (31, 17), 100).save(tmp_path / "gray.png")
    (tmp_path / "notes.jpg").write_text("not an image")
    return tmp_path


@pytest.mark.parametrize("photo", ["ok.png", "rgba.png", "deep.png", "gray.png"])
def test_cli_invert_any_image_mode(files, monkeypatch, capsys, photo):
    monkeypatch.chdir(files)
    assert main(["invert", photo, "-l", "_blocks.1", "--size", "32", "--steps", "2", "-o", "r.png", "-q"]) == 0
    assert "feature error" in capsys.readouterr().out
    assert Image.open(files / "r.png").mode == "RGB"


def test_cli_all_layers_writes_a_strip(files, monkeypatch, capsys):
    monkeypatch.chdir(files)
    code = main(["invert", "ok.png", "--all-layers", "-l", "_blocks.1,_blocks.5", "--size", "32", "--steps", "2", "-q"])
    assert code == 0
    out = capsys.readouterr().out
    assert "_blocks.1" in out and "_blocks.5" in out
    w, h = Image.open(files / "ok-invert.png").size
    assert w > 3 * h  # photo + two reconstructions in a row


@pytest.mark.parametrize(
    "args,message",
    [
        (["ok.png"], "give -l LAYER or --all-layers"),
        (["ok.png", "-l", "_blocks.99"], "unknown layer '_blocks.99'"),
        (["ok.png", "-l", "input"], "not a layer to match"),
        (["notes.jpg", "-l", "_blocks.1"], "not an image"),
        (["missing.png", "-l", "_blocks.1"], "no such file"),
        (["notes.jpg", "-l", "_blocks.1", "-o", "/proc/nope/x.png"], "cannot write"),  # before any work
        (["ok.png", "-l", "_blocks.1", "-o", "x.txt"], "unknown image format"),
        (["ok.png", "-l", "_blocks.1", "--tv", "-1"], "--tv must be >= 0"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(files, monkeypatch, capsys, args, message):
    monkeypatch.chdir(files)
    try:
        code = main(["invert", *args, "-q", "--steps", "1"])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
