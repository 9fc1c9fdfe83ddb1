"""The one loop, tested once for every recipe: Ctrl-C and NaNs keep finite images, the gradient
hook (DeepDream's tiles) and a parameterization's extras plug into it."""

from __future__ import annotations

import pytest
import torch

import featurevis as fv
from featurevis import objectives as O
from featurevis.core.engine import Gradient, optimize
from featurevis.core.tiling import TiledGradient


def pixels(seed: int = 0, **kw) -> fv.PixelImage:
    return fv.PixelImage(1, 32, generator=torch.Generator().manual_seed(seed), **kw)


def run(tiny, obj=None, param=None, steps: int = 100, **kw) -> fv.RenderResult:
    obj = obj or O.channel("conv2", 0)
    g = torch.Generator().manual_seed(0)
    return optimize(tiny, obj, param or pixels(), steps=steps, generator=g, progress=False, **kw)


def interrupt_on_call(n: int):
    """A counter that raises KeyboardInterrupt (as Ctrl-C does) on its ``n``-th call."""
    calls = {"n": 0}

    def tick() -> None:
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt

    return tick


@pytest.mark.parametrize("source", ["objective", "transform", "gradient"])
def test_ctrl_c_mid_run_returns_the_images_so_far(tiny, source):
    """Ctrl-C on the 6th step, wherever it lands, ends the run with 5 steps done and finite,
    changed images, flagged as interrupted."""
    tick = interrupt_on_call(6)
    kw: dict = {}
    obj = O.channel("conv2", 0)
    if source == "objective":

        def interrupting(acts):
            tick()
            return acts["conv2"][:, 0].mean((1, 2))

        obj = fv.Objective(interrupting, frozenset({"conv2"}), "interrupting", (("conv2", 0),))
    elif source == "transform":
        kw["transforms"] = lambda x, g: (tick(), x)[1]
    else:

        class Interrupting(Gradient):
            def __call__(self, *args, backward=True):
                if backward:
                    tick()
                return super().__call__(*args, backward=backward)

        kw["gradient"] = Interrupting()
    start = pixels()().detach()
    r = run(tiny, obj, **kw)
    assert r.interrupted and len(r.history) == 5 and r.images.shape == (1, 3, 32, 32)
    assert torch.isfinite(r.images).all() and torch.isfinite(r.values).all()
    assert not torch.equal(r.images, start)


def test_nan_stops_and_keeps_the_last_good_image(tiny):
    """A NaN objective on the 21st step stops the run at the last parameters that gave a finite
    objective (saved every 8 steps): those after 16 steps."""
    calls = {"n": 0}

    def exploding(acts):
        calls["n"] += 1
        v = acts["conv2"][:, 0].mean((1, 2))
        return v * float("nan") if calls["n"] > 20 else v

    obj = fv.Objective(exploding, frozenset({"conv2"}), "exploding", (("conv2", 0),))
    r = run(tiny, obj)
    assert torch.isfinite(r.images).all() and len(r.history) == 20 and not r.interrupted
    torch.testing.assert_close(r.images, run(tiny, steps=16).images)


class _Poisoning(torch.optim.SGD):
    """An update that makes every parameter infinite (what lr=1e308 did before it was refused)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.fill_(float("inf"))


def test_nan_from_the_very_first_update_keeps_the_initial_image(tiny):
    """A first update that turns the parameters infinite makes the next objective NaN: the
    images go back to the start, which gave the only finite objective (a real image, not the
    all-black picture of NaN pixels)."""
    start = pixels(squash="clamp")().detach()
    r = run(tiny, param=pixels(squash="clamp"), optimizer=lambda ps: _Poisoning(ps, lr=0.1))
    assert len(r.history) == 1 and torch.isfinite(r.images).all()
    torch.testing.assert_close(r.images, start)


@pytest.mark.parametrize("lr", [float("inf"), float("nan"), -1.0])
def test_a_learning_rate_that_cannot_give_finite_images_is_refused(tiny, lr):
    with pytest.raises(fv.FeaturevisError, match="learning rate must be a finite number >= 0"):
        run(tiny, lr=lr)


def test_an_objective_not_finite_at_the_start_is_an_error_not_a_result(tiny):
    """No step ever gave a finite value, so there is no good image: an error, never a
    "success" holding NaN values."""
    obj = fv.Objective(lambda a: a["conv2"][:, 0].mean((1, 2)) * float("nan"), frozenset({"conv2"}), "nan")
    with pytest.raises(fv.FeaturevisError, match="not a finite number"):
        run(tiny, obj)


def test_one_tile_gradient_in_the_loop_is_the_plain_one(tiny):
    """The tiled gradient hook, rolling the image under its tiles, steps exactly as one whole
    pass over the same rolled image does."""

    def roll(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        h, w = x.shape[-2:]
        shift = (int(torch.randint(0, h, (1,), generator=g)), int(torch.randint(0, w, (1,), generator=g)))
        return torch.roll(x, shift, dims=(-2, -1))

    plain = run(tiny, steps=6, transforms=roll)
    tiled = run(tiny, steps=6, gradient=TiledGradient(tile=64, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(tiled.history, plain.history)
    torch.testing.assert_close(tiled.images, plain.images)
    torch.testing.assert_close(tiled.values, plain.values)
    assert not torch.equal(tiled.images, pixels()().detach())


def test_extras_reach_the_objective_from_the_same_draw(tiny):
    """A parameterization's extras sit beside the activations, from the draw that made the
    images (not a stale one), at every step and in the final evaluation."""

    class Shifting(fv.PixelImage):
        """Pixels shifted by a fresh random amount at each draw."""

        g = torch.Generator().manual_seed(1)

        def images_and_extras(self):
            shift = torch.rand(1, generator=self.g)
            img = torch.sigmoid(self.pixels + shift)
            return img, {"shift": shift, "drawn": img.detach()}

    param = Shifting(1, 32, generator=torch.Generator().manual_seed(0))
    seen: list[bool] = []

    def reads_extras(acts):
        seen.append(torch.equal(acts["input"].detach(), acts["drawn"]) and acts["shift"].shape == (1,))
        return acts["conv2"][:, 0].mean((1, 2))

    obj = fv.Objective(reads_extras, frozenset({"conv2"}), "extras", (("conv2", 0),))
    r = run(tiny, obj, param=param, steps=5)
    assert seen == [True] * 6 and r.history.shape == (5, 1)


def _decayed_mean(states: list[torch.Tensor], decay: float) -> torch.Tensor:
    n = len(states)
    weights = [(1 - decay) * decay ** (n - 1 - k) for k in range(n)]
    return sum(w * s for w, s in zip(weights, states, strict=True)) / sum(weights)


def test_an_iterate_average_is_the_decayed_mean_of_the_steps(tiny):
    """With ``average`` the result and the snapshots are drawn from the bias-corrected moving
    average of the parameters after each step (the start left out), a ``k``-step render's
    average is a longer render's snapshot at ``k``, and the values are those of the averaged
    images; 0 is the last step, as without it."""
    seen: list[torch.Tensor] = []
    r = run(tiny, steps=12, average=0.8, snapshots=[5], after_step=lambda p: seen.append(p.pixels.detach().clone()))
    torch.testing.assert_close(r.param.pixels.detach(), _decayed_mean(seen, 0.8))
    torch.testing.assert_close(r.snapshots[5], run(tiny, steps=5, average=0.8).images)
    with torch.no_grad():
        torch.testing.assert_close(r.values, tiny(r.images, ["conv2"])["conv2"][:, 0].mean((1, 2)))
    plain = run(tiny, steps=12)
    assert not torch.equal(plain.images, r.images)
    torch.testing.assert_close(run(tiny, steps=12, average=0.0).images, plain.images)


def test_an_iterate_average_leaves_out_steps_that_are_not_finite(tiny):
    """A first update that poisons the parameters is never averaged: the images go back to
    the start, as without an average."""
    start = pixels(squash="clamp")().detach()
    r = run(tiny, param=pixels(squash="clamp"), optimizer=lambda ps: _Poisoning(ps, lr=0.1), average=0.9)
    assert torch.isfinite(r.images).all()
    torch.testing.assert_close(r.images, start)


@pytest.mark.parametrize("decay", [1.0, -0.1, float("nan")])
def test_an_average_decay_outside_0_1_is_a_one_line_error(tiny, decay):
    with pytest.raises(fv.FeaturevisError, match=r"decay is in \[0, 1\)") as e:
        run(tiny, steps=2, average=decay)
    assert "\n" not in str(e.value)
