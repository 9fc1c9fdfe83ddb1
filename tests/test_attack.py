"""Adversarial perturbations: within the budget, on the 8-bit grid, and they fool lite0."""

from __future__ import annotations

import argparse

import pytest
import torch
from PIL import Image

import featurevis as fv
from featurevis.cli import main
from featurevis.cli.fool import parse_eps
from featurevis.recipes.attack import _quantize

TOL = 1e-6  # float rounding of (photo*255 + q)/255 - photo


@pytest.mark.parametrize("method,norm,eps", [("pgd", "linf", 8 / 255), ("fgsm", "linf", 4 / 255), ("pgd", "l2", 0.5)])
def test_perturbation_stays_in_the_ball_on_the_8bit_grid(tiny, one_thread, method, norm, eps):
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    r = fv.attack(tiny, photo, method=method, norm=norm, eps=eps, steps=10, progress=False)
    assert r.image.shape == r.photo.shape == (1, 3, 32, 32)
    assert r.image.min() >= 0 and r.image.max() <= 1
    assert torch.allclose(r.image * 255, (r.image * 255).round(), atol=1e-4)  # what a PNG holds
    assert (r.linf if norm == "linf" else r.l2) <= eps + TOL
    assert r.linf > 0  # it did move


def test_untargeted_attack_raises_the_loss_and_targeted_reaches_the_class(tiny, one_thread):
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    clean = tiny.predict(photo)[0]
    r = fv.attack(tiny, photo, eps=16 / 255, steps=30, progress=False)
    after = tiny.predict(r.image)[0]
    assert after[r.original] < clean[r.original]
    target = int(clean.argmin())
    t = fv.attack(tiny, photo, target, eps=32 / 255, steps=40, progress=False)
    assert t.target == target and tiny.predict(t.image)[0][target] > clean[target]


def test_pgd_flips_every_photo_at_2_over_255_on_lite0(lite0, photos):
    for name, photo in photos.items():
        r = fv.attack(lite0, photo, progress=False)
        assert r.success, (name, r)
        assert r.linf <= 2 / 255 + TOL
        assert lite0.predict(r.image)[0].argmax() != r.original  # judged on the saved pixels
    t = fv.attack(lite0, photos["chelsea"], "goldfish", progress=False)
    assert t.success and t.predicted == 1 and t.linf <= 2 / 255 + TOL


def test_quantize_never_leaves_the_ball():
    g = torch.Generator().manual_seed(0)
    photo = torch.randint(0, 256, (1, 3, 8, 8), generator=g) / 255
    for norm, eps in (("linf", 1.5 / 255), ("l2", 0.05)):
        delta = torch.randn(1, 3, 8, 8, generator=g)
        delta = delta.clamp(-eps, eps) if norm == "linf" else delta / delta.norm() * eps
        adv = _quantize(photo, delta, eps, norm)
        d = adv - photo
        assert (d.abs().max() if norm == "linf" else d.norm()) <= eps + TOL


def test_result_panel_and_magnified_view(tiny, one_thread):
    r = fv.attack(tiny, torch.rand(1, 3, 32, 32), eps=8 / 255, steps=3, progress=False)
    m = r.magnified()
    assert m.min() >= 0 and m.max() <= 1 and (m - 0.5).abs().max() > 0.4  # ±eps spans the range
    assert r.panel().shape == (3, 32, 3 * 32 + 4)
    assert "AttackResult(pgd linf" in repr(r)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(method="cw"), "unknown attack method"),
        (dict(norm="l1"), "unknown norm"),
        (dict(eps=0.0), "eps must be a positive number"),
        (dict(eps=float("nan")), "eps must be a positive number"),
        (dict(eps=0.5 / 255), "under one grey level"),
        (dict(eps=2.0), "allows any image"),
        (dict(target="no such class"), "unknown class"),
        (dict(target=99), "out of range"),
    ],
)
def test_bad_arguments_are_clear_errors(tiny, kwargs, message):
    with pytest.raises(fv.FeaturevisError, match=message):
        fv.attack(tiny, torch.rand(1, 3, 32, 32), progress=False, **kwargs)


def test_target_equal_to_the_prediction_is_refused(tiny):
    photo = torch.rand(1, 3, 32, 32)
    top = int(tiny.predict(photo)[0].argmax())
    with pytest.raises(fv.FeaturevisError, match="already classified"):
        fv.attack(tiny, photo, top, progress=False)


def test_parse_eps():
    assert parse_eps("2/255") == pytest.approx(2 / 255)
    assert parse_eps("0.5") == 0.5
    for bad in ("x", "1/0", "-1", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_eps(bad)


@pytest.fixture
def photo_file(tmp_path, photos):
    path = tmp_path / "cat.png"
    Image.fromarray((photos["chelsea"][0].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    (tmp_path / "notes.png").write_text("not an image")
    return path


def test_cli_fool_writes_photo_perturbation_and_panel(photo_file, monkeypatch, capsys):
    monkeypatch.chdir(photo_file.parent)
    assert main(["fool", "cat.png", "--target", "goldfish", "--steps", "10", "-q"]) == 0
    out = capsys.readouterr().out
    assert "before: 285 Egyptian cat" in out and "after:  1 goldfish" in out and "success" in out
    adv = Image.open("cat-adv.png")
    assert adv.size == (224, 149)
    assert Image.open("cat-adv-perturbation.png").size == adv.size
    assert Image.open("cat-adv-panel.png").size[0] > 3 * adv.size[0]


@pytest.mark.parametrize(
    "args,message",
    [
        (["missing.png"], "no such file"),
        (["notes.png"], "not an image"),
        (["cat.png", "-o", "adv.jpg"], "save the adversarial photo as .png"),
        (["cat.png", "--eps", "zero"], "not a number or fraction"),
        (["cat.png", "--target", "unicorn"], "unknown class 'unicorn'"),
        (["cat.png", "--eps", "0.1/255"], "under one grey level"),
    ],
)
def test_cli_fool_bad_input_is_one_line_exit_2(photo_file, monkeypatch, capsys, args, message):
    monkeypatch.chdir(photo_file.parent)
    try:
        code = main(["fool", *args, "-q", "--steps", "1"])
    except SystemExit as e:
        code = e.code
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
