"""Objectives compute what they claim, per image, and compose with algebra."""

from __future__ import annotations

import pytest
import torch

from featurevis import objectives as O
from featurevis.core.errors import FeaturevisError
from featurevis.core.model import INPUT, LOGITS


@pytest.fixture
def acts():
    g = torch.Generator().manual_seed(0)
    return {
        "l": torch.randn(3, 4, 5, 6, generator=g),
        LOGITS: torch.randn(3, 10, generator=g),
        INPUT: torch.rand(3, 3, 8, 8, generator=g),
    }


def test_channel_neuron_layer(acts):
    t = acts["l"]
    torch.testing.assert_close(O.channel("l", 2)(acts), t[:, 2].mean((1, 2)))
    torch.testing.assert_close(O.neuron("l", 1, x=3, y=4)(acts), t[:, 1, 4, 3])
    torch.testing.assert_close(O.neuron("l", 1)(acts), t[:, 1, 2, 3])  # centre
    torch.testing.assert_close(O.layer("l")(acts), t.pow(2).mean((1, 2, 3)))
    torch.testing.assert_close(O.class_logit(7)(acts), acts[LOGITS][:, 7])


def test_batch_index_and_channels(acts):
    t = acts["l"]
    v = O.channel("l", 2, batch=1)(acts)
    assert v[0] == 0 and v[2] == 0 and v[1] == t[1, 2].mean()
    per_image = O.channels("l", [3, 0, 1])(acts)
    torch.testing.assert_close(per_image, torch.stack([t[0, 3].mean(), t[1, 0].mean(), t[2, 1].mean()]))


def test_direction_matches_channel_for_a_unit_vector(acts):
    torch.testing.assert_close(O.direction("l", [0, 0, 5.0, 0])(acts), O.channel("l", 2)(acts))
    a, b = O.random_direction("l", 4, seed=1), O.random_direction("l", 4, seed=1)
    torch.testing.assert_close(a(acts), b(acts))
    assert not torch.allclose(a(acts), O.random_direction("l", 4, seed=2)(acts))


def test_algebra(acts):
    c, n = O.channel("l", 0), O.neuron("l", 1)
    torch.testing.assert_close((2 * c - n / 2 + 1)(acts), 2 * c(acts) - n(acts) / 2 + 1)
    torch.testing.assert_close((-c)(acts), -c(acts))
    torch.testing.assert_close((1 - c)(acts), 1 - c(acts))
    total = sum([c, n])
    assert total.layers == {"l"} and len(total.checks) == 2
    torch.testing.assert_close(total(acts), c(acts) + n(acts))


def test_diversity_prefers_different_images():
    same = {"l": torch.ones(2, 3, 4, 4)}
    g = torch.Generator().manual_seed(0)
    diff = {"l": torch.stack([torch.rand(3, 4, 4, generator=g), torch.rand(3, 4, 4, generator=g) ** 4])}
    diff["l"][1, 0] = 0
    assert O.diversity("l")(same).sum() < O.diversity("l")(diff).sum()
    assert O.diversity("l")({"l": torch.ones(1, 3, 4, 4)}).item() == 0


def test_penalties(acts):
    flat = {INPUT: torch.full((1, 3, 8, 8), 0.5)}
    noisy = {INPUT: torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))}
    for pen in (O.l1(), O.total_variation(), O.blur()):
        assert pen(flat).item() == pytest.approx(0.0, abs=1e-7)
        assert pen(noisy).item() > 0.01


def test_neuron_position_follows_a_resized_map(acts):
    """@x,y names a cell of the map at the render size; a map the transforms resized is read at
    the cell covering the same place of the frame (the old cell's centre), corners included."""
    obj = O.neuron("l", 1, x=3, y=4)
    (grid,) = obj.grids
    grid.hw = (5, 6)  # what validate measures at the render size
    t = acts["l"]
    torch.testing.assert_close(obj(acts), t[:, 1, 4, 3])  # same size: the cell itself
    big = {"l": torch.nn.functional.interpolate(t, scale_factor=2.0, mode="nearest")}
    torch.testing.assert_close(obj(big), t[:, 1, 4, 3])  # twice the size: the same content
    for ref in [(4, 4), (5, 6), (14, 14)]:
        for hw in [(1, 1), (3, 3), (4, 5), (11, 11), (17, 17)]:
            for x, y in [(0, 0), (ref[1] - 1, 0), (0, ref[0] - 1), (ref[1] - 1, ref[0] - 1)]:
                mx, my = O.map_position(x, y, ref, hw)
                # the new cell spans the old cell's centre, as fractions of the frame
                assert mx / hw[1] <= (x + 0.5) / ref[1] < (mx + 1) / hw[1]
                assert my / hw[0] <= (y + 0.5) / ref[0] < (my + 1) / hw[0]


def test_neuron_grid_survives_algebra():
    obj = 2.0 * -O.neuron("l", 1, x=3, y=4) + O.channel("m", 0) - 0.5 * O.neuron("m", 2, x=0, y=0)
    assert [g.layer for g in obj.grids] == ["l", "m"]


def test_interpolation_goes_from_a_to_b(acts):
    a, b = O.channel("l", 0), O.channel("l", 1)
    t = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(O.interpolation(a, b)(acts), (1 - t) * a(acts) + t * b(acts))


def test_class_log_odds_is_log_p_over_one_minus_p(acts):
    p = acts[LOGITS].softmax(-1)[:, 7]
    torch.testing.assert_close(O.class_log_odds(7)(acts), (p / (1 - p)).log())
    assert O.class_log_odds(7, batch=1)(acts)[[0, 2]].eq(0).all()
    with pytest.raises(FeaturevisError, match="at least two classes"):
        O.class_log_odds(0)({LOGITS: torch.zeros(2, 1)})


def test_class_log_odds_keeps_pushing_the_rival_down_once_the_class_is_sure():
    """Log-softmax's gradient fades as p -> 1; the log-odds' does not, so a render keeps
    separating the class from its nearest rival (a sibling breed) after the network is sure."""
    z = torch.zeros(1, 10)
    z[0, 3], z[0, 5] = 12.0, 4.0  # p(3) = 0.9996, class 5 the rival
    grads = {}
    for name, obj in (("logp", O.class_log_prob(3)), ("odds", O.class_log_odds(3))):
        x = z.clone().requires_grad_()
        obj({LOGITS: x}).sum().backward()
        grads[name] = x.grad[0]
    assert grads["logp"][3] < 1e-3 and grads["logp"][5] > -1e-3
    assert grads["odds"][3] == 1 and grads["odds"][5] < -0.8
