"""Concept atoms (NMF, TopK SAE) as catalog units: the fits do what they promise on lite0, the atoms'
renders point along their own atoms, and the explorer browses them beside the channels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from featurevis.catalog import concepts
from featurevis.catalog.concepts import atom_cosines, atoms_objective, build_concepts, fit_atoms, unit_objective
from featurevis.catalog.scores import score_rows
from featurevis.catalog.store import CatalogStore
from featurevis.core.errors import FeaturevisError
from featurevis.core.sae import train_sae
from featurevis.core.samples import layer_samples
from featurevis.core.visualize import visualize

pytest.importorskip("sklearn")
HERE = Path(__file__).parent
TINY = f"{HERE / 'catalog_tiny.py'}:build"
TINY_VIT = f"{HERE / 'catalog_tiny.py'}:build_vit"
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="module")
def squares(photos) -> torch.Tensor:
    """The four sample photos as 128 px centre squares."""
    out = []
    for p in photos.values():
        h, w = p.shape[-2:]
        s = min(h, w)
        sq = p[..., (h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
        out.append(torch.nn.functional.interpolate(sq, size=(128, 128), mode="bilinear", antialias=True))
    return torch.cat(out)


@pytest.fixture(scope="module")
def blocks8(lite0, squares) -> torch.Tensor:
    """lite0 ``_blocks.8`` activation vectors at every position of the photos (4 × 8 × 8)."""
    return layer_samples(lite0, list(squares.split(1)), "_blocks.8", side=128).values


def test_nmf_atoms_of_lite0_reconstruct_better_as_k_grows(lite0, squares, one_thread):
    fits = [fit_atoms(lite0, "_blocks.8", squares, "nmf", k, crops=8) for k in (2, 8, 32)]
    ev = [f.figures["explained_variance"] for f in fits]
    err = [f.figures["error"] for f in fits]
    assert ev[0] < ev[1] < ev[2] and err[0] > err[1] > err[2], (ev, err)
    assert ev[2] > 0.5  # 32 parts of 112 channels hold most of the variance of 12 photos' positions
    f = fits[1]
    assert f.directions.shape == (8, 112) and f.dataset_weights.shape == (4, 8, 8, 8)
    assert (f.dataset_weights >= 0).all()


def test_sae_error_falls_while_training_and_exactly_topk_latents_are_active(blocks8, one_thread):
    fit = train_sae(blocks8, 32, topk=4, steps=400, batch=256, log_every=20)
    assert fit.losses[-1] < 0.7 * fit.losses[0], fit.losses
    codes = fit.transform(blocks8)
    assert ((codes != 0).sum(1) == 4).all()
    assert torch.allclose(fit.directions.norm(dim=1), torch.ones(32), atol=1e-5)
    assert 0 < fit.explained_variance < 1 and fit.error < 1
    more = train_sae(blocks8, 32, topk=12, steps=400, batch=256)  # more active latents: a closer fit
    assert more.explained_variance > fit.explained_variance
    with pytest.raises(FeaturevisError, match="topk"):
        train_sae(blocks8, 8, topk=9)


def test_an_atoms_visualization_points_along_its_own_atom(lite0, squares, one_thread):
    f = fit_atoms(lite0, "_blocks.8", squares, "nmf", 6, crops=8)
    r = visualize(lite0, atoms_objective("_blocks.8", f.directions), batch=6, size=96, steps=64, progress=False)
    cos = atom_cosines(lite0, "_blocks.8", r.images, f.directions)  # image × atom
    own = cos.diag()
    others = (cos - 2 * torch.eye(6)).max(1).values
    assert (own > others).all(), cos


def _tiny_build(out: Path, **kw):
    defaults = dict(layer="conv2", method="nmf", k=4, size=32, steps=4, diversity=2, top_k=2, crops=4, batch=2)
    return build_concepts(TINY, out, progress=False, **{**defaults, **kw})


def test_atoms_are_browsable_beside_the_channels_resumable_and_idempotent(tmp_path, monkeypatch, one_thread):
    from fastapi.testclient import TestClient

    from featurevis.catalog.build import build_catalog
    from featurevis.catalog.explorer import app as explorer

    out = tmp_path / "cat"
    channels = build_catalog(TINY, out, layers="conv2", size=32, steps=4, batch=2, diversity=2, top_k=2, progress=False)
    real, calls = concepts.render_atoms, []

    def killed_after_one_shard(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(concepts, "render_atoms", killed_after_one_shard)
    with pytest.raises(KeyboardInterrupt):
        _tiny_build(out)
    monkeypatch.setattr(concepts, "render_atoms", real)
    resumed = _tiny_build(out)
    assert resumed.run == channels.run  # same render settings and dataset: the atoms join the channels' run
    assert (resumed.fitted, resumed.atoms, resumed.skipped) == (False, 2, 2)
    again = _tiny_build(out)
    assert (again.fitted, again.atoms, again.skipped) == (False, 0, 4)
    sae = _tiny_build(out, method="sae", k=6, topk=2, sae_steps=50)
    assert sae.fitted and sae.atoms == 6 and sae.figures["dead"] >= 0

    run = channels.run
    client = TestClient(explorer.create_app(out), raise_server_exceptions=False)
    assert "16 / 16 · atoms 10 / 10" in client.get("/").text  # conv2's channels, then the 4 + 6 atoms
    page = client.get(f"/run/{run}").text
    assert "<code>conv2</code> NMF atoms (4)" in page and "<code>conv2</code> SAE atoms (6)" in page
    assert f"/run/{run}/layer/conv2'" in page  # the channels are still there
    for unit_set in ("conv2~nmf4", "conv2~sae6"):
        grid = client.get(f"/run/{run}/layer/{unit_set}")
        assert grid.status_code == 200 and "explained variance" in grid.text
        unit = client.get(f"/run/{run}/layer/{unit_set}/1")
        assert unit.status_code == 200 and "mean cosine to its own atom" in unit.text
        srcs = re.findall(r"src='(/files/[^']+)'", unit.text)
        assert len(srcs) >= 1 + 2 + 2 + 2  # visualization, diversity, top crops, top images
        assert all(client.get(s).status_code == 200 for s in srcs)
        assert client.get(f"/run/{run}/layer/{unit_set}/99").status_code == 404
    location = client.get("/search?q=conv2~nmf4:3", follow_redirects=False).headers["location"]
    assert location == f"/run/{run}/layer/conv2~nmf4/3"

    with CatalogStore(out, readonly=True) as store:
        obj = unit_objective(store, run, "conv2~nmf4", 2)
        direction = torch.tensor(store.atom_directions(run, "conv2~nmf4")[2])
        assert unit_objective(store, run, "conv2", 5).layers == {"conv2"}
        with pytest.raises(FeaturevisError, match="atom 4 out of range"):
            unit_objective(store, run, "conv2~nmf4", 4)
        with pytest.raises(FeaturevisError, match="unknown"):
            unit_objective(store, run, "conv9", 0)
    from featurevis.catalog.build import load_model_spec

    model = load_model_spec(TINY)
    x = torch.rand(2, 3, 32, 32)
    a = model(x, ["conv2"])["conv2"]
    cos = (a * direction.view(1, -1, 1, 1)).sum(1) / direction.norm() / a.norm(dim=1).clamp_min(1e-6)
    expected = ((a * direction.view(1, -1, 1, 1)).sum(1) / direction.norm() * cos.clamp_min(0.1)).flatten(1).mean(1)
    assert torch.allclose(obj(model(x, ["conv2"])), expected, atol=1e-5)

    with CatalogStore(out, readonly=True) as store:  # every atom scored like a channel, bottoms stored
        scores = store.scores(run)
        for unit_set, k in (("conv2~nmf4", 4), ("conv2~sae6", 6)):
            for a in range(k):
                row = scores[(unit_set, a)]
                assert row["mis"] is not None and 0 <= row["mis"] <= 1 and row["transfer"] is None
                assert any(e["kind"] == "bottom" for e in store.examples(run, unit_set, a))
    exported = {(r["layer"], r["channel"]) for r in score_rows(out)}
    assert {("conv2~nmf4", 3), ("conv2~sae6", 5), ("conv2", 15)} <= exported
    assert "2AFC" in client.get(f"/run/{run}/layer/conv2~nmf4/1").text

    with pytest.raises(FeaturevisError, match="other settings"):
        _tiny_build(out, crops=5)


def test_a_token_layer_of_a_vit_gets_atoms(tmp_path, one_thread):
    from fastapi.testclient import TestClient

    from featurevis.catalog.explorer import app as explorer

    out = tmp_path / "cat"
    r = build_concepts(TINY_VIT, out, layer="blocks.1", k=4, size=32, steps=4, diversity=0, top_k=2, crops=4,
                       progress=False)  # fmt: skip
    assert r.atoms == 4 and 0 < r.figures["explained_variance"] < 1
    with CatalogStore(out, readonly=True) as store:
        assert len(store.atom_directions(r.run, "blocks.1~nmf4")[0]) == 24  # the token width, not a patch count
    client = TestClient(explorer.create_app(out), raise_server_exceptions=False)
    for url in [f"/run/{r.run}", f"/run/{r.run}/layer/blocks.1~nmf4", f"/run/{r.run}/layer/blocks.1~nmf4/3"]:
        assert client.get(url).status_code == 200, url


def test_the_command_fits_renders_and_says_where(tmp_path, capsys, one_thread):
    from featurevis.cli.main import main

    argv = ["concepts", "-m", TINY, "-l", "conv3", "--method", "sae", "--k", "3", "--active", "1", "--sae-steps", "20"]
    argv += ["--crops", "2", "--size", "32", "--steps", "2", "--diversity", "0", "-q", "-o", str(tmp_path / "c")]
    assert main(argv) == 0
    assert "conv3~sae3 (fitted)" in capsys.readouterr().out
    assert main(argv) == 0
    assert "rendered 0 atoms" in capsys.readouterr().out
