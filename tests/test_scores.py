"""Fidelity scores: stored for every catalogued unit, idempotent and interruptible, exported,
shown and sortable in the explorer; on the real lite0 they tell a proper visualization from a
bad one."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from pathlib import Path

import pytest
import torch

import featurevis as fv
from featurevis import objectives as O
from featurevis.catalog import scores as S
from featurevis.catalog.build import CatalogSettings, LayerStats, build_catalog, load_dataset, render_objective
from featurevis.catalog.store import DB_NAME, SCORE_COLUMNS, CatalogStore
from featurevis.cli.main import main
from featurevis.zoo import label_peers

HERE = Path(__file__).parent
TINY = f"{HERE / 'catalog_tiny.py'}:build"
SMALL = dict(layers="conv2", size=32, steps=8, batch=16, diversity=2, top_k=3, progress=False)
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> tuple[Path, str]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("scores") / "cat"
        report = build_catalog(TINY, out, **SMALL)
    finally:
        torch.set_num_threads(before)
    return out, report.run


def _scores(folder: Path, run: str) -> dict:
    with CatalogStore(folder, readonly=True) as store:
        return {k: dict(r) for k, r in store.scores(run).items()}


def test_the_build_scores_every_channel_and_stores_bottom_examples(catalog):
    folder, run = catalog
    scores = _scores(folder, run)
    assert sorted(scores) == [("conv2", c) for c in range(16)]
    for row in scores.values():
        assert row["transfer"] is None  # not a class unit: not applicable, no number
        assert 0 <= row["mis"] <= 1 and -1 <= row["path"] <= 1 and 0 <= row["diversity"] <= 2
        assert row["activation_ratio"] is None or abs(row["activation_ratio"]) < 1e4
        details = json.loads(row["details"])
        assert details["mis_trials"] == 9 and set(details["path_layers"]) == {"conv1", "relu1"}
    with CatalogStore(folder, readonly=True) as store:
        bottom = [e for e in store.examples(run, "conv2", 5) if e["kind"] == "bottom"]
        top = [e for e in store.examples(run, "conv2", 5) if e["kind"] == "crop"]
        assert len(bottom) == 3 and all((folder / e["file"]).is_file() for e in bottom)
        assert max(e["value"] for e in bottom) < min(e["value"] for e in top)  # least vs most activating


def test_score_is_idempotent_resumes_after_ctrl_c_and_opens_older_catalogs(tmp_path, catalog, monkeypatch, one_thread):
    folder, run = catalog
    old = tmp_path / "old"
    build_catalog(TINY, old, **SMALL, scores=False)
    with sqlite3.connect(old / DB_NAME) as db:  # a catalog from before scores existed
        db.execute("DROP TABLE scores")
        db.execute("DELETE FROM examples WHERE kind='bottom'")
    with CatalogStore(old, readonly=True) as store:
        assert not store.has_scores_table() and store.scores(run) == {}
    real, calls = S.CatalogScorer.score, []

    def interrupted_at_the_fourth(self, layer, channel):
        calls.append(channel)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(self, layer, channel)

    monkeypatch.setattr(S.CatalogScorer, "score", interrupted_at_the_fourth)
    report = S.score_catalog(old, progress=False)
    assert report.interrupted and report.scored == 3 and len(_scores(old, run)) == 3  # the done ones kept
    monkeypatch.setattr(S.CatalogScorer, "score", real)
    report = S.score_catalog(old, progress=False)
    assert (report.scored, report.skipped, report.interrupted) == (13, 3, False)
    again = S.score_catalog(old, progress=False)
    assert (again.scored, again.skipped) == (0, 16)
    # the same numbers as the build's own scoring (bottom examples from the stored JPEG dataset
    # may differ slightly from the build's exact pixels, so the 2AFC and path may move a little)
    built, rescored = _scores(folder, run), _scores(old, run)
    for key in built:
        assert rescored[key]["diversity"] == pytest.approx(built[key]["diversity"], abs=1e-5)
        ratio = built[key]["activation_ratio"]
        assert (rescored[key]["activation_ratio"] is None) == (ratio is None)


def test_export_csv_and_json_through_the_command_line(tmp_path, catalog, capsys):
    folder, run = catalog
    assert main(["score", str(folder), "-q", "--export", str(tmp_path / "s.csv")]) == 0
    assert "scored 0 units, 16 already scored" in capsys.readouterr().out
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert len(rows) == 16 and list(rows[0])[:4] == ["run", "model", "layer", "channel"]
    stored = _scores(folder, run)
    for r in rows:
        assert r["transfer"] == ""  # not applicable: an empty cell
        assert float(r["mis"]) == pytest.approx(stored[("conv2", int(r["channel"]))]["mis"])
    assert main(["score", str(folder), "-q", "--export", str(tmp_path / "s.json")]) == 0
    data = json.loads((tmp_path / "s.json").read_text())
    assert len(data) == 16 and all(d["transfer"] is None and d["scored"] for d in data)
    assert set(SCORE_COLUMNS) <= set(data[0])
    capsys.readouterr()
    for bad in ["s.txt", "/proc/featurevis/s.csv"]:
        assert main(["score", str(folder), "-q", "--export", str(tmp_path / bad) if bad[0] != "/" else bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("featurevis: error:"), err


def test_explorer_shows_scores_and_sorts_and_filters_the_grid(catalog):
    from fastapi.testclient import TestClient

    from featurevis.catalog.explorer import app as explorer

    folder, run = catalog
    client = TestClient(explorer.create_app(folder), raise_server_exceptions=False)
    mis = {c: r["mis"] for (_, c), r in _scores(folder, run).items()}
    base = f"/run/{run}/layer/conv2"
    page = client.get(base + "?sort=mis&order=desc").text
    order = [int(c) for c in re.findall(r"data-channel=(\d+)", page)]
    assert sorted(order) == list(range(16))
    assert [mis[c] for c in order] == sorted(mis.values(), reverse=True)
    asc = [int(c) for c in re.findall(r"data-channel=(\d+)", client.get(base + "?sort=mis&order=asc").text)]
    assert [mis[c] for c in asc] == sorted(mis.values())
    cut = sorted(mis.values())[8]
    shown = [int(c) for c in re.findall(r"data-channel=(\d+)", client.get(f"{base}?sort=mis&min={cut}").text)]
    assert shown and all(mis[c] >= cut for c in shown) and len(shown) == sum(v >= cut for v in mis.values())
    # every score rides on its tile, for scripts; transfer is empty (not applicable)
    assert f"data-mis='{mis[order[0]]}'" in page and "data-transfer=''" in page
    channel = client.get(f"{base}/{order[0]}").text
    assert "Fidelity scores" in channel and "not applicable" in channel and "Least-activating crops" in channel
    assert f"<th>2AFC</th><td>{mis[order[0]]:.3g}</td>" in channel
    for bad, text in [("sort=nope", "unknown sort key"), ("sort=mis&min=x", "min must be a number")]:
        r = client.get(f"{base}?{bad}")
        assert r.status_code == 400 and text in r.text


def test_score_unit_refuses_what_is_not_a_batch_of_images(tiny):
    objective = O.channel("conv2", 0)
    for bad, text in [
        (torch.rand(3, 32, 32), "N×3×H×W"),
        (torch.rand(1, 1, 32, 32), "N×3×H×W"),
        (torch.full((1, 3, 32, 32), float("nan")), "finite values in \\[0, 1\\]"),
        (torch.rand(1, 3, 32, 32) * 255, "finite values"),
    ]:
        with pytest.raises(fv.FeaturevisError, match=text):
            S.score_unit(tiny, objective, bad)
    with pytest.raises(fv.FeaturevisError, match="top must be"):
        S.score_unit(tiny, objective, torch.rand(1, 3, 32, 32), top=torch.rand(0, 3, 32, 32))
    assert S.score_unit(tiny, objective, torch.rand(1, 3, 32, 32)).values() == dict.fromkeys(SCORE_COLUMNS)


def test_spearman_ranks_ties_and_constants():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert S.spearman(a, a * 10 + 3) == pytest.approx(1.0)
    assert S.spearman(a, -a) == pytest.approx(-1.0)
    assert S.spearman(torch.tensor([1.0, 1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])) == pytest.approx(
        0.9486833
    )  # scipy.stats.spearmanr's value with the tie at mean rank 1.5
    assert S.spearman(torch.ones(4), a) is None


def test_lite0_scores_tell_a_real_visualization_from_bad_ones(lite0, one_thread):
    """Six _blocks.8 channels rendered properly, for 2 steps, and with another channel's picture:
    the activation ratio ranks the real one above the 2-step one for each channel, and the 2AFC
    score of the real one beats another channel's picture (on average, by a margin)."""
    layer, chs = "_blocks.8", [1, 5, 12, 30, 47, 60]
    _, data = load_dataset(None, 224)
    stats = LayerStats.of_layer(lite0, layer, data)
    settings = CatalogSettings(model="efficientnet_lite0", size=64, steps=64)
    good = render_objective(lite0, O.channels(layer, chs), len(chs), settings, 1).images
    bad = render_objective(lite0, O.channels(layer, chs), len(chs), CatalogSettings(model="x", size=64, steps=2), 1)
    sim, below = S.similarity_model(), S.layers_below(lite0, layer)
    assert below == ["_blocks.0", "_blocks.4", "_blocks.7"]
    real_mis, other_mis = [], []
    for j, c in enumerate(chs):
        from featurevis.catalog.build import _examples, bottom_examples

        top = torch.cat([_png_tensor(e["png"]) for e in _examples(stats, data, c, 6)[1] if e["kind"] == "crop"])
        bottom = torch.cat([_png_tensor(e["png"]) for e in bottom_examples(stats, data, c, 6)])
        kw = dict(top=top, bottom=bottom, similarity=sim, lower_layers=below)
        real = S.score_unit(lite0, O.channel(layer, c), good[j : j + 1], **kw)
        two_steps = S.score_unit(lite0, O.channel(layer, c), bad.images[j : j + 1], **kw)
        other = S.score_unit(lite0, O.channel(layer, c), good[(j + 1) % len(chs)][None], **kw)
        assert real.activation_ratio > 2 * max(two_steps.activation_ratio, other.activation_ratio), c
        real_mis.append(real.mis)
        other_mis.append(other.mis)
    assert sum(real_mis) / len(chs) > sum(other_mis) / len(chs) + 0.1, (real_mis, other_mis)
    assert sum(real_mis) / len(chs) > 0.6  # well above chance (0.5)


def _png_tensor(png: bytes) -> torch.Tensor:
    import io

    from PIL import Image

    from featurevis.core.images import from_pil

    with Image.open(io.BytesIO(png)) as im:
        return from_pil(im.convert("RGB"))


def test_a_class_unit_gets_transfer_from_the_zoo_models_that_share_its_labels(lite0, one_thread):
    """A class visualization's transfer is another zoo network's probability of its class (the
    catalog asks lite1 and lite2 for lite0; lite1 alone here); a channel has none (not applicable)."""
    assert label_peers("lite0") == ["efficientnet_lite1", "efficientnet_lite2"]
    cls = 1  # goldfish
    objective = O.class_logit(cls)  # what a catalog unit on the logits pseudo-layer maximizes
    vis = render_objective(lite0, objective, 1, CatalogSettings(model="x", size=96, steps=48), 0).images
    lite1 = fv.load_model("lite1")
    scores = S.score_unit(lite0, objective, vis, target_class=cls, transfer_models=[lite1])
    chance = S.score_unit(lite0, objective, torch.rand(1, 3, 96, 96), target_class=cls, transfer_models=[lite1])
    # class visualizations transfer weakly (about 1 % at 96 px here), but clearly above noise (0.1 %)
    assert scores.transfer > 4 * chance.transfer and scores.details["transfer_models"].keys() == {lite1.name}
    assert S.score_unit(lite0, O.channel("_blocks.8", 3), vis).transfer is None
