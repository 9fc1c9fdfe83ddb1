"""CPPN genomes (evolution's indirect encoding) and the differentiable CPPN parameterization."""

from __future__ import annotations

import random

import pytest
import torch

import featurevis as fv
from featurevis.cli import main
from featurevis.core.params import cppn, make_param

STRUCTURE = cppn.MutationRates(add_node=0.5, add_conn=0.7, activation=0.5, toggle=0.2)


def test_random_genome_is_valid_and_draws_an_image():
    rng, inn = random.Random(0), cppn.Innovations()
    g = cppn.random_genome(rng, inn, hidden=3)
    assert g.is_valid() and len(g.hidden) == 3
    img = g.render(40)
    assert img.shape == (3, 40, 40) and img.min() >= 0 and img.max() <= 1
    assert img.std() > 0.01  # a pattern, not a flat colour


def test_mutation_changes_genomes_and_keeps_them_evaluable():
    rng, inn = random.Random(1), cppn.Innovations()
    g = cppn.random_genome(rng, inn)
    grew = 0
    for _ in range(150):
        child = cppn.mutate(g, rng, inn, STRUCTURE)
        assert child.conns != g.conns or child.nodes != g.nodes  # every offspring differs
        assert child.is_valid()  # acyclic, no edge into an input or out of an output
        img = child.render(16)
        assert torch.isfinite(img).all() and img.min() >= 0 and img.max() <= 1
        grew += len(child.hidden) > len(g.hidden)
        g = child
    assert grew > 10 and len(g.hidden) > 20  # structure really grows


def test_structure_mutations_never_close_a_cycle():
    rng, inn = random.Random(2), cppn.Innovations()
    g = cppn.random_genome(rng, inn, hidden=6)
    for _ in range(300):
        cppn.add_connection(g, rng)
        if rng.random() < 0.3:
            cppn.add_node(g, rng, inn, list(cppn.ACTIVATIONS))
        # re-enabling any disabled connection must stay acyclic too
        h = g.copy()
        h.conns = {k: (w, True) for k, (w, _) in h.conns.items()}
        assert g.is_valid() and h.is_valid()


def test_crossover_aligns_genes_and_keeps_the_fitter_structure():
    rng, inn = random.Random(3), cppn.Innovations()
    a = cppn.random_genome(rng, inn)
    b = cppn.mutate(a, rng, inn, cppn.MutationRates(add_node=1.0))
    c = cppn.mutate(a, rng, inn, cppn.MutationRates(weight=1.0, weight_each=1.0))
    child = cppn.crossover(c, b, rng)
    assert child.is_valid() and set(child.conns) == set(c.conns)
    shared = set(b.conns) & set(c.conns)
    from_b = sum(child.conns[k][0] == b.conns[k][0] != c.conns[k][0] for k in shared)
    assert 0 < from_b < len(shared)  # weights come from both parents
    # the same split makes the same node id in different genomes (NEAT's innovation numbers)
    g1, g2 = a.copy(), a.copy()
    key = next(k for k, (_, on) in a.conns.items() if on)
    assert inn.split_node(*key, g1.nodes) == inn.split_node(*key, g2.nodes)


def test_genome_draws_the_same_pattern_at_any_resolution():
    g = cppn.random_genome(random.Random(4), cppn.Innovations(), hidden=4)
    small, big = g.render(21), g.render(63)
    # pixel centres of the 21 px grid are every third centre of the 63 px grid
    assert torch.allclose(small, big[:, 1::3, 1::3], atol=1e-5)
    assert g.render((30, 50)).shape == (3, 30, 50)


def test_cppn_param_rises_a_channel_under_optimize(tiny, one_thread):
    r = fv.render(tiny, "conv2:3", size=32, steps=40, lr=0.01, param="cppn", transforms="none", progress=False)
    assert r.history[-1].item() > r.history[0].item() + 0.5
    assert r.values.item() > r.history[0].item()
    big = r.render_at(96)
    assert big.shape == (1, 3, 96, 96)
    small = r.param.render_at(32)
    assert torch.allclose(small, r.images, atol=1e-5)  # drawing again at the trained size is exact
    assert torch.allclose(r.render_at(99)[..., 1::3, 1::3], r.param.render_at(33), atol=1e-5)


def test_cppn_param_saves_large_and_others_refuse(tiny, one_thread, tmp_path):
    r = fv.render(tiny, "conv2:3", size=32, steps=3, param="cppn", progress=False)
    path = r.save(tmp_path / "big.png", size=80)
    assert fv.load_image(path).shape == (1, 3, 80, 80)
    assert isinstance(make_param("cppn", 2, 16), cppn.CPPNImage)
    fourier = fv.render(tiny, "conv2:3", size=32, steps=2, progress=False)
    with pytest.raises(fv.FeaturevisError, match="one size only"):
        fourier.save(tmp_path / "x.png", size=64)
    with pytest.raises(fv.FeaturevisError, match="cppn"):
        make_param("spline", 1, 16)


def test_cli_render_cppn_save_size(tmp_path, capsys, one_thread):
    out = tmp_path / "c.png"
    rc = main(
        [
            "render",
            "lite0",
            "class:1",
            *["--param", "cppn", "--steps", "2", "--size", "64", "--save-size", "96", "-q"],
            "-o",
            str(out),
        ]
    )
    assert rc == 0 and fv.load_image(out).shape == (1, 3, 96, 96)
    rc = main(["render", "lite0", "class:1", "--save-size", "96", "-o", str(tmp_path / "f.png")])
    err = capsys.readouterr().err
    assert rc == 2 and "--param cppn" in err and len(err.strip().splitlines()) == 1
