"""Black-box evolution of fooling images: elitism, MAP-Elites cells, batching, errors, CLI."""

from __future__ import annotations

import json
import random

import pytest
import torch

import featurevis as fv
from featurevis.cli import main
from featurevis.recipes.evolve import DirectEncoding, confidences


def _count_forwards(model: fv.FeatureModel) -> list[int]:
    """Batch sizes of every forward pass the network runs (after the cached shape probe)."""
    model.layer_shape("logits", 32)
    sizes: list[int] = []
    model.net.register_forward_pre_hook(lambda mod, args: sizes.append(args[0].shape[0]))
    return sizes


@pytest.mark.parametrize("encoding", ["cppn", "direct"])
def test_best_fitness_never_decreases_and_each_generation_is_one_batch(tiny, one_thread, encoding):
    forwards = _count_forwards(tiny)
    r = fv.evolve(tiny, [0, 3, 7], encoding=encoding, population=8, generations=6, size=32, seed=1, progress=False)
    assert forwards == [8] * 7  # the initial population, then one batched pass per generation
    assert r.evaluations == 56 and r.generations == 6 and r.history.shape == (7, 3)
    assert (r.history[1:] >= r.history[:-1]).all()  # elitism: the champion is never lost
    assert (r.history[-1] > r.history[0]).any()  # and selection makes progress
    assert torch.equal(r.confidences, r.history[-1])
    assert r.images.shape == (3, 3, 32, 32) and r.images.min() >= 0 and r.images.max() <= 1


def test_map_elites_keeps_the_best_image_for_each_class(tiny, one_thread):
    classes = ["class1", "class4", "class6", "class9"]
    r = fv.evolve(tiny, classes, population=10, generations=4, size=32, seed=2, progress=False)
    assert r.classes == [1, 4, 6, 9] and r.names == classes
    # black-box scores, re-measured: each cell's champion is the one it claims to be...
    conf = confidences(tiny, r.images, r.classes)
    assert torch.allclose(conf.diagonal(), r.confidences, atol=1e-5)
    # ... and every champion was offered to every cell, so no other cell's champion beats it
    for k in range(len(classes)):
        assert conf[k, k] >= conf[:, k].max() - 1e-6
    assert len({id(g) for g in r.genomes}) >= 2  # different classes, different elites
    # a CPPN champion is drawn again at any size
    assert r.render_at(64).shape == (4, 3, 64, 64)


def test_direct_mutation_stays_in_range_and_changes_the_genome():
    enc, rng = DirectEncoding(genome_size=8, rate=0.1), random.Random(0)
    g = enc.random(rng)
    for _ in range(20):
        child = enc.mutate(g, rng)
        assert not torch.equal(child, g) and child.min() >= 0 and child.max() <= 1
        g = child
    mixed = enc.crossover(torch.zeros(3, 8, 8), torch.ones(3, 8, 8), rng)
    assert 0 < mixed.mean() < 1 or mixed.sum() == 0  # a rectangle of the other parent
    assert enc.render([g, g], 24).shape == (2, 3, 24, 24)


def test_interrupt_keeps_the_best_so_far(tiny, one_thread):
    calls = []

    def stop(mod, args):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt

    tiny.layer_shape("logits", 32)
    tiny.net.register_forward_pre_hook(stop)
    r = fv.evolve(tiny, "class2", population=6, generations=50, size=32, progress=False)
    assert r.interrupted and r.generations == 2 and r.evaluations == 18
    assert r.images.shape == (1, 3, 32, 32) and r.confidences[0] > 0


def test_bad_arguments_are_clear_errors(tiny):
    with pytest.raises(fv.FeaturevisError, match="unknown class 'penguin'"):
        fv.evolve(tiny, ["class1", "penguin"], generations=1)
    with pytest.raises(fv.FeaturevisError, match="out of range"):
        fv.evolve(tiny, 12, generations=1)
    with pytest.raises(fv.FeaturevisError, match="no target class"):
        fv.evolve(tiny, " , ", generations=1)
    with pytest.raises(fv.FeaturevisError, match="encoding"):
        fv.evolve(tiny, 1, encoding="bits")
    with pytest.raises(fv.FeaturevisError, match="population"):
        fv.evolve(tiny, 1, population=1)
    with pytest.raises(fv.FeaturevisError, match="generations"):
        fv.evolve(tiny, 1, generations=-3)
    with pytest.raises(fv.FeaturevisError, match="crossover"):
        fv.evolve(tiny, 1, crossover=1.5)


def test_cli_evolve_writes_each_class_a_grid_and_confidences(tmp_path, capsys, one_thread):
    out = tmp_path / "evo"
    rc = main(
        [
            "evolve",
            "--class",
            "king penguin,starfish",
            *["--population", "4", "--generations", "1", "--size", "64"],
            *["--save-size", "96", "-q", "--out"],
            str(out),
        ]
    )
    assert rc == 0
    assert (out / "0145-king_penguin.png").exists() and (out / "0327-starfish.png").exists()
    assert fv.load_image(out / "grid.png").shape[-1] == 2 * 96 + 2
    record = json.loads((out / "confidences.json").read_text())
    assert record["evaluations"] == 8 and set(record["confidences"]) == {"king penguin", "starfish"}
    assert "king penguin" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class", "king pengiun"], "unknown class 'king pengiun'"),
        (["--class", "1001"], "out of range"),
        (["--class", "3", "--generations", "-1"], "--generations"),
    ],
)
def test_cli_evolve_bad_input_is_one_line_exit_2(args, message, capsys, tmp_path):
    assert main(["evolve", *args, "-q", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "grid.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--class", "3", "--population", "0"], "must be positive"),
        (["--class", "3", "--encoding", "bits"], "invalid choice"),
        (["--class", "3", "--crossover", "2"], "between 0 and 1"),
        (["--encoding", "cppn"], "--class"),
    ],
)
def test_cli_evolve_bad_numbers_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evolve", *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_all_classes_and_the_most_confident_few(tiny, one_thread):
    r = fv.evolve(tiny, "all", population=6, generations=2, size=32, progress=False)
    assert r.classes == list(range(10)) and r.history.shape == (3, 10)
    best = r.top(3)
    assert len(best.classes) == 3 and best.images.shape[0] == 3
    assert best.confidences.tolist() == sorted(r.confidences.tolist(), reverse=True)[:3]
    k = r.classes.index(best.classes[0])
    assert torch.equal(best.images[0], r.images[k]) and best.names[0] == r.names[k]


def test_on_lite0_cppn_genomes_fool_more_classes_than_pixels(lite0, one_thread):
    """The paper's contrast on the real network, on a tiny budget (144 evaluations per encoding,
    96 px): CPPN patterns find many confidently fooled classes, pixel genomes hardly any."""
    kw = dict(population=16, generations=8, size=96, seed=0, progress=False)
    cppn = fv.evolve(lite0, "all", encoding="cppn", **kw)
    direct = fv.evolve(lite0, "all", encoding="direct", **kw)
    assert cppn.evaluations == direct.evaluations == 144
    assert cppn.confidences.max() > 0.9
    assert (cppn.confidences > 0.5).sum() >= (direct.confidences > 0.5).sum() + 4
    assert cppn.confidences.mean() > 2 * direct.confidences.mean()
