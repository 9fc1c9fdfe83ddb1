"""Learned and spectral priors: DGN-AM through a generator, generator files, prior-train, MACO."""

from __future__ import annotations

import pytest
import torch

import featurevis as fv
from featurevis import objectives as O
from featurevis.cli import main
from featurevis.core.engine import NormalizedSGD, optimize
from featurevis.core.generators import caffe_bgr_to_unit, load_bounds
from featurevis.core.params import CodeImage, rgb_to_decorrelated
from featurevis.core.params.maco import MacoImage, natural_spectrum

#: The published PyTorch conversion of DeePSiM fc6 (upconvGAN_fc6.pt): every key and shape.
FC6_SHAPES = {
    "defc7.weight": (4096, 4096),
    "defc7.bias": (4096,),
    "defc6.weight": (4096, 4096),
    "defc6.bias": (4096,),
    "defc5.weight": (4096, 4096),
    "defc5.bias": (4096,),
    "deconv5.weight": (256, 256, 4, 4),
    "deconv5.bias": (256,),
    "conv5_1.weight": (256, 512, 3, 3),
    "conv5_1.bias": (512,),
    "deconv4.weight": (512, 256, 4, 4),
    "deconv4.bias": (256,),
    "conv4_1.weight": (256, 256, 3, 3),
    "conv4_1.bias": (256,),
    "deconv3.weight": (256, 128, 4, 4),
    "deconv3.bias": (128,),
    "conv3_1.weight": (128, 128, 3, 3),
    "conv3_1.bias": (128,),
    "deconv2.weight": (128, 64, 4, 4),
    "deconv2.bias": (64,),
    "deconv1.weight": (64, 32, 4, 4),
    "deconv1.bias": (32,),
    "deconv0.weight": (32, 3, 4, 4),
    "deconv0.bias": (3,),
}


def small_fc6(code_dim: int = 32) -> fv.Generator:
    """The fc6 architecture (same layers, 256 px BGR output, crop to 227) at toy width."""
    torch.manual_seed(0)
    net = fv.deepsim_fc6(code_dim, fc=128, widths=(8, 8, 8, 8, 8, 8, 8, 8))
    with torch.no_grad():  # weights that carry the code through (zero biases), output ~±50 of 255
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.ConvTranspose2d)):
                torch.nn.init.kaiming_normal_(m.weight, a=0.3, mode="fan_out" if m.weight.dim() == 4 else "fan_in")
                torch.nn.init.zeros_(m.bias)
        net.deconv0.weight.mul_(50 / net(torch.rand(4, code_dim)).std())
    return fv.Generator(net, (code_dim,), low=0.0, high=torch.linspace(0.5, 3.0, code_dim), to_image=caffe_bgr_to_unit)


def test_fc6_architecture_matches_the_published_state_dict():
    with torch.device("meta"):
        net = fv.deepsim_fc6()
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == FC6_SHAPES
    n = sum(v.numel() for v in net.state_dict().values())
    assert 220e6 < 4 * n < 230e6  # the ~224 MB float32 checkpoint


def test_fc6_checkpoint_loads_strictly_and_draws_caffe_images(tmp_path, one_thread):
    # Real shapes, tiny storage: each tensor is one number broadcast to its shape.
    sd = {f"G.{k}": torch.zeros((1,) * len(s)).expand(s) for k, s in FC6_SHAPES.items()}
    sd["G.deconv0.bias"] = torch.tensor([10.0, 0.0, -10.0])  # B, G, R offsets
    path = tmp_path / "upconvGAN_fc6.pt"
    torch.save(sd, path)
    gen = fv.load_generator(path)
    assert gen.code_shape == (4096,) and float(gen.low.min()) == 0.0
    img = gen(torch.zeros(1, 4096))
    assert img.shape == (1, 3, 227, 227) and img.min() >= 0 and img.max() <= 1
    # BGR → RGB around CaffeNet's mean pixel: R = (123 - 10) / 255, B = (104 + 10) / 255
    mid = img[0, :, 113, 113]
    assert torch.allclose(mid, torch.tensor([113.0, 117.0, 114.0]) / 255, atol=0.02)
    bad = dict(sd)
    bad.pop("G.defc5.bias")
    torch.save(bad, path)
    with pytest.raises(fv.FeaturevisError, match="not the DeePSiM fc6"):
        fv.load_generator(path)


def test_dgn_mechanics_activation_rises_codes_stay_in_bounds(tiny, one_thread):
    gen = small_fc6()
    obj = O.channel("conv3", 3)
    g = torch.Generator().manual_seed(0)
    p = CodeImage(gen, batch=2, size=64, rng=g)
    seen = []
    r = optimize(
        tiny,
        obj,
        p,
        steps=25,
        generator=g,
        optimizer=lambda ps: NormalizedSGD(ps, lr=0.2),
        schedule="linear",
        after_step=lambda q: seen.append(q.code.detach().clone()),
        progress=False,
    )
    assert len(seen) == 25
    for code in seen:
        assert (code >= 0).all() and (code <= gen.high).all()
    assert (r.values > r.history[0] + 0.003).all() and (r.history[-5:].mean(0) > r.history[:5].mean(0)).all()


def test_dgn_l2_decay_shrinks_the_code(tiny, one_thread):
    gen = small_fc6()
    start = gen.high[None] / 2
    for decay in (0.99, 1.0):
        p = CodeImage(gen, init=start, decay=decay, size=32)
        optimize(tiny, O.channel("conv3", 0), p, steps=10, generator=torch.Generator(), progress=False,
                 optimizer=lambda ps: NormalizedSGD(ps, lr=0.0))  # fmt: skip
        assert torch.allclose(p.code.detach(), start * decay**10)


def test_dgn_restarts_keep_the_best_and_start_from_images(tiny, photos, one_thread):
    gen = small_fc6()
    obj = O.channel("conv3", 3)
    runs = [fv.dgn(tiny, obj, gen, steps=8, seed=s, size=32, progress=False).values for s in (0, 1)]
    best = fv.dgn(tiny, obj, gen, steps=8, restarts=2, seed=0, size=32, progress=False)
    assert torch.allclose(best.values, torch.maximum(*runs))
    assert best.images.shape == (1, 3, 32, 32) and best.settings["codes"].shape == (1, 32)
    with pytest.raises(fv.FeaturevisError, match="no known encoder"):
        fv.dgn(tiny, obj, gen, init=photos["chelsea"], steps=2, progress=False)
    # A generator whose codes are tiny's pooled conv3 features: start from a photo's code.
    net = fv.UpconvGenerator((16, 1, 1), 32, 8)
    g2 = fv.Generator(net, (16, 1, 1), low=0.0, high=5.0)
    codes = fv.encode_images(g2, [photos["chelsea"], photos["coffee"]], encoder=(tiny, "pool"))
    assert codes.shape == (2, 16, 1, 1) and (codes >= 0).all()
    r = fv.dgn(tiny, obj, g2, init=codes, batch=2, steps=3, progress=False)
    assert r.images.shape == (2, 3, 32, 32)


def test_bounds_are_three_std_and_files_are_checked(tiny, tmp_path, one_thread):
    x = torch.rand(6, 3, 32, 32)
    low, high = fv.activation_bounds(tiny, "relu2", x)  # after a ReLU: DGN-AM's [0, 3 std]
    acts = tiny(x, ["relu2"])["relu2"]
    assert (low == 0).all() and torch.allclose(high, 3 * acts.std(0), atol=1e-5)
    low, high = fv.activation_bounds(tiny, "conv3", x)  # signed: mean +- 3 std
    acts = tiny(x, ["conv3"])["conv3"]
    assert torch.allclose(low, acts.mean(0) - 3 * acts.std(0), atol=1e-5) and (high > low).all()
    f = tmp_path / "fc6.txt"
    f.write_text(" ".join(str(v) for v in range(16)))
    assert load_bounds(f, (16, 1, 1)).shape == (16, 1, 1)
    with pytest.raises(fv.FeaturevisError, match="the code has 32"):
        load_bounds(f, (32,))


def test_prior_train_checkpoints_resumes_and_loads(tiny, photos, tmp_path, one_thread):
    out = tmp_path / "prior.pt"
    imgs = [photos["chelsea"], photos["coffee"]]
    gen = fv.train_prior(tiny, "pool", imgs, out=out, steps=4, batch=2, width=8, checkpoint_every=2, progress=False)
    assert out.is_file() and [e[0] for e in gen.meta["eval"]] == [0, 2, 4]
    loaded = fv.load_generator(out)
    assert loaded.encoder == ("tiny", "pool") and loaded.code_shape == (16, 1, 1)
    assert (loaded.high > loaded.low).all() and torch.isfinite(loaded.high).all()
    more = fv.train_prior(tiny, "pool", imgs, out=out, steps=6, batch=2, width=8, resume=True, progress=False)
    assert more.meta["steps"] == 6 and [e[0] for e in more.meta["eval"]] == [0, 2, 4, 6]
    with pytest.raises(fv.FeaturevisError, match="width 8"):
        fv.train_prior(tiny, "pool", imgs, out=out, steps=8, width=16, resume=True, progress=False)
    adv = tmp_path / "adv.pt"  # the optional adversarial term: its discriminator is checkpointed too
    fv.train_prior(tiny, "relu2", imgs, out=adv, steps=2, batch=2, width=8, adversarial=0.1, progress=False)
    assert torch.load(adv, weights_only=True)["train"]["disc"]
    again = fv.train_prior(tiny, "relu2", imgs, out=adv, steps=3, batch=2, width=8, adversarial=0.1, resume=True,
                           progress=False)  # fmt: skip
    assert again.meta["steps"] == 3


def test_prior_train_learns_and_a_divergence_keeps_the_last_good_weights(tiny, photos, tmp_path, one_thread):
    imgs = [photos["chelsea"], photos["coffee"]]
    gen = fv.train_prior(tiny, "pool", imgs, out=tmp_path / "a.pt", steps=30, batch=2, width=8, checkpoint_every=10,
                         lr=3e-3, progress=False)  # fmt: skip
    mse = [e[1] for e in gen.meta["eval"]]
    assert mse[-1] < mse[0]  # the held-out reconstruction error falls
    out = tmp_path / "nan.pt"
    with pytest.raises(fv.FeaturevisError, match="learning rate must be a finite number"):
        fv.train_prior(tiny, "pool", imgs, out=out, steps=5, batch=2, width=8, lr=float("inf"), progress=False)
    with pytest.raises(fv.FeaturevisError, match=r"diverged at step 1\b.*lower --lr"):
        fv.train_prior(tiny, "pool", imgs, out=out, steps=5, batch=2, width=8, lr=1e30, progress=False)
    saved = fv.load_generator(out)  # the weights that gave the last finite loss, loadable
    assert saved.meta["steps"] == 1
    assert all(torch.isfinite(v).all() for v in saved.net.state_dict().values())


def test_prior_train_and_dgn_render_from_the_cli(tmp_path, capsys, one_thread):
    prior = tmp_path / "p.pt"
    args = ["prior-train", "lite0", "--layer", "_blocks.3", "--size", "64", "--steps", "2", "--width", "8"]
    assert main([*args, "--out", str(prior), "-q"]) == 0
    assert "held-out reconstruction" in capsys.readouterr().out
    out = tmp_path / "dgn.png"
    code = main(["render", "lite0", "_blocks.3:5", "--prior", "dgn", "--generator", str(prior), "--steps", "3",
                 "--restarts", "2", "-o", str(out), "-q"])  # fmt: skip
    assert code == 0 and out.is_file()
    assert main(["render", "lite0", "_blocks.3:5", "--prior", "dgn", "--generator", str(tmp_path / "no.pt")]) == 2
    assert "no such generator file" in capsys.readouterr().err
    assert main(["render", "lite0", "_blocks.3:5", "--generator", str(prior)]) == 2
    assert "belong to --prior dgn" in capsys.readouterr().err


def test_maco_spectrum_is_natural_and_cached(tmp_path, monkeypatch, photos):
    monkeypatch.setenv("FEATUREVIS_CACHE", str(tmp_path))
    spec = natural_spectrum(32, [photos["chelsea"]])
    assert spec.shape == (3, 32, 17) and len(list(tmp_path.glob("maco-spectrum-v2-32x32-*.pt"))) == 1
    assert torch.equal(natural_spectrum(32, [photos["chelsea"]]), spec)
    low, high = spec[:, 1:4, 1:4].mean(), spec[:, 12:16, 12:16].mean()
    assert low > 5 * high  # natural images: energy falls with frequency


def test_maco_render_keeps_the_magnitude_and_maps_attribution(tiny, photos, one_thread):
    spec = natural_spectrum(32, [photos["coffee"]])
    p = MacoImage(2, 32, spectrum=spec, generator=torch.Generator().manual_seed(0))
    r = fv.render(tiny, O.channel("conv3", 1), param=p, transforms="maco", steps=30, lr=0.1, progress=False)
    assert (r.values > r.history[0]).all()
    assert list(dict(p.named_parameters())) == ["phase"]
    # The render's spectrum is still the natural one, up to the standardization's scale
    # (columns 0 and W/2 excepted: a real image forces their Hermitian symmetry).
    t = rgb_to_decorrelated(torch.logit(r.images.double()) / p.contrast)
    mag = torch.fft.rfft2(t, norm="ortho").abs()[..., 1:-1]
    ratio = mag / spec[..., 1:-1].double()
    assert torch.allclose(ratio, ratio.flatten(1).median(1).values.view(-1, 1, 1, 1), rtol=1e-3)
    alpha = p.transparency()
    assert alpha.shape == (2, 1, 32, 32) and alpha.max() == 1 and alpha.min() >= 0
    assert p.composite().shape == (2, 3, 32, 32)


def test_render_cli_param_maco(tmp_path, capsys, one_thread):
    out = tmp_path / "m.png"
    code = main(["render", "lite0", "_blocks.4:7", "--param", "maco", "--transforms", "maco", "--size", "64",
                 "--steps", "3", "-o", str(out), "-q"])  # fmt: skip
    assert code == 0 and out.is_file()


def test_any_callable_is_a_generator(tiny, one_thread):
    basis = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))

    def draw(code: torch.Tensor) -> torch.Tensor:  # e.g. a GAN the user has, with codes in [-2, 2]
        return torch.sigmoid(torch.einsum("bk,kchw->bchw", code, basis.to(code)))

    gen = fv.Generator(draw, (8,), low=-2.0, high=2.0)
    r = fv.dgn(tiny, O.channel("conv3", 2), gen, steps=20, transforms="none", progress=False)
    codes = r.settings["codes"]
    assert r.images.shape == (1, 3, 16, 16) and codes.abs().max() <= 2
    assert r.values[0] > r.history[0, 0]
