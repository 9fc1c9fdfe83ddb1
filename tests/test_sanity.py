"""Sanity checks on the real lite0: cascading randomization changes the picture more than a new
seed does, and a standard render survives fresh transforms better than a bare pixel render."""

from __future__ import annotations

import pytest
import torch

import featurevis as fv
from featurevis.core.errors import FeaturevisError
from featurevis.recipes.sanity import randomization_stages, weighted_modules

pytest.importorskip("skimage")


def test_cascading_randomization_of_lite0(lite0, one_thread):
    before = {k: v.clone() for k, v in lite0.state_dict().items()}
    r = fv.randomization_check(lite0, "_blocks.8:12", stages=3, size=64, steps=40, progress=False)
    assert all(torch.equal(before[k], v) for k, v in lite0.state_dict().items())  # a copy was randomized
    assert r.labels[0] == "original" and len(r.images) == len(r.labels) == 2 + 3
    _, reseed, above, *below = range(len(r.labels))
    # Layers above the unit cannot change it: the same seed gives the same image.
    assert r.ssim[above] > 0.99 and r.judge_cosine[above] > 0.99
    # Randomizing everything: less like the original than another seed of it, and no longer exciting the unit.
    assert r.judge_cosine[below[-1]] < r.judge_cosine[reseed] - 0.1
    assert r.activation[below[-1]] < 0.25 * r.activation[reseed]
    assert r.image.shape[-1] > 5 * 64  # the row of images
    assert "judge cos" in r.table()


def test_stages_reach_from_the_top_to_the_first_layer(lite0):
    modules = weighted_modules(lite0)
    assert modules[0] == "_conv_stem" and modules[-1] == "_fc"
    cuts = randomization_stages(modules, ["_blocks.8"], 4)
    assert cuts[-1] == 0 and cuts == sorted(cuts, reverse=True)
    assert modules[cuts[1]].startswith("_blocks.8.") and not modules[cuts[0]].startswith("_blocks.8.")
    assert randomization_stages(modules, ["logits"], 2) == [len(modules) - 1, 0]
    with pytest.raises(FeaturevisError, match="no weights"):
        randomization_stages(modules, ["_blocks.8._bn0"], 3)


def test_transform_robustness_of_a_standard_render_beats_a_bare_pixel_render(lite0, one_thread):
    standard = fv.transform_check(lite0, "_blocks.8:12", size=64, steps=40, draws=12, progress=False)
    pixel = fv.transform_check(
        lite0, "_blocks.8:12", param="pixel", transforms=None, size=64, steps=40, draws=12, progress=False
    )
    assert 0.6 < standard.ratio < 1.5, standard.summary()
    assert pixel.ratio < 0.6 * standard.ratio, (standard.summary(), pixel.summary())
    assert pixel.own == pytest.approx([pixel.untransformed] * 12, rel=1e-4)  # no transforms: its own draws are none
    assert "ratio" in standard.summary()


def test_the_commands_print_their_figures_and_save_the_picture(tmp_path, capsys, one_thread):
    from PIL import Image

    from featurevis.cli.main import main

    small = ["--size", "32", "--steps", "2", "-q"]
    assert main(["sanity", "randomize", "_blocks.8:12", "--stages", "2", *small, "-o", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "original, seed 1" in out and "judge cos" in out and "random down to" in out
    assert Image.open(tmp_path / "r.png").size[0] > 4 * 32
    assert main(["sanity", "transforms", "_blocks.8:12", "--draws", "2", *small, "-o", str(tmp_path / "t.png")]) == 0
    assert "ratio fresh/own" in capsys.readouterr().out and (tmp_path / "t.png").is_file()
