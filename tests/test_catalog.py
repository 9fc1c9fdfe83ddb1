"""Catalog builds: batched shards, transactional storage, resume after kill -9, Ray = in-process."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

import featurevis as fv
import featurevis.core.images
from featurevis import objectives as O
from featurevis.catalog.build import CatalogSettings, build_catalog, load_model_spec, render_shard
from featurevis.catalog.store import DB_NAME, CatalogStore

HERE = Path(__file__).parent
TINY = f"{HERE / 'catalog_tiny.py'}:build"
SMALL = dict(size=32, steps=12, batch=8, diversity=2, top_k=2, progress=False)


def _rows(folder: Path) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(folder / DB_NAME)) as db:
        return db.execute(
            "SELECT layer, channel, vis, negative, diversity FROM channels ORDER BY layer, channel"
        ).fetchall()


def test_group_diversity_compares_images_only_within_their_group():
    same = torch.ones(2, 3, 4, 4)
    diff = torch.stack([torch.ones(3, 4, 4), torch.rand(3, 4, 4) - 0.5])
    v = O.diversity("l", group=2)({"l": torch.cat([same, diff])})
    assert v.shape == (4,)
    assert v[:2].mean() < v[2:].mean()  # the identical pair is penalized, the different one less
    # each group is scored on its own: the same pair alone gives the same values
    assert torch.allclose(v[:2], O.diversity("l")({"l": same}))


def test_build_stores_every_channel_and_resumes_nothing_twice(tmp_path, one_thread):
    out = tmp_path / "cat"
    report = build_catalog(TINY, out, layers="conv2", **SMALL)
    assert (report.channels, report.skipped) == (16, 0)
    rows = _rows(out)
    assert [r[1] for r in rows] == list(range(16))
    with CatalogStore(out, readonly=True) as store:
        assert store.integrity() == "ok"
        c = store.channel(report.run, "conv2", 5)
        # the visualization excites its channel more than the negative image does
        assert c["activation"] > c["negative_activation"]
        assert c["dataset_max"] > 0
        kinds = [e["kind"] for e in store.examples(report.run, "conv2", 5)]
        assert kinds == ["bottom", "bottom", "crop", "crop", "image", "image"]  # bottom: for the scores
        files = [c["vis"], c["negative"], *json.loads(c["diversity"])]
        for rel in files + [e["file"] for e in store.examples(report.run, "conv2", 5)]:
            with Image.open(out / rel) as im:
                im.load()
        assert Image.open(out / c["vis"]).size == (32, 32)
    again = build_catalog(TINY, out, layers="conv2", **SMALL)
    assert (again.run, again.channels, again.skipped) == (report.run, 0, 16)
    changed = build_catalog(TINY, out, layers="conv2", **{**SMALL, "steps": 13})
    assert changed.run != report.run and changed.channels == 16  # new settings: rendered anew


def test_batched_shard_renders_each_channel_in_its_own_image(one_thread, monkeypatch):
    # the shard's seed comes from the settings hash, which holds TINY's absolute path: fixed here,
    # so where the checkout lies cannot decide the (narrow) margins below
    monkeypatch.setattr(CatalogSettings, "shard_seed", lambda self, layer, first: 0)
    model = load_model_spec(TINY)
    s = CatalogSettings(model=TINY, size=32, steps=96, diversity=0, negative=False)
    shard = render_shard(model, s, "conv3", [1, 7])
    acts = {}
    for r in shard.results:
        img = featurevis.core.images.from_pil(Image.open(io.BytesIO(r.vis)))
        acts[r.channel] = model(img, ["conv3"])["conv3"][0].flatten(1).mean(1)
    # image for channel 1 excites channel 1 more than channel 7's image does, and vice versa
    assert acts[1][1] > acts[7][1] and acts[7][7] > acts[1][7]


def test_bad_input_is_a_clear_error(tmp_path):
    with pytest.raises(fv.FeaturevisError, match="unknown layer"):
        build_catalog(TINY, tmp_path / "c", layers="conv9", **SMALL)
    with pytest.raises(fv.FeaturevisError, match="C×H×W"):
        build_catalog(TINY, tmp_path / "c", layers="fc", **SMALL)
    with pytest.raises(fv.FeaturevisError, match="no such model file"):
        load_model_spec("missing.py:build")
    with pytest.raises(fv.FeaturevisError, match="not a folder"):
        build_catalog(TINY, tmp_path / "c", layers="conv2", images=tmp_path / "none", **SMALL)
    with pytest.raises(fv.FeaturevisError, match="diversity"):
        build_catalog(TINY, tmp_path / "c", layers="conv2", **{**SMALL, "diversity": 1})


def test_kill_9_mid_build_then_rerun_gives_every_channel_exactly_once(tmp_path):
    out = tmp_path / "cat"
    cmd = [
        sys.executable, "-m", "featurevis.cli", "catalog", "build", TINY, "--layers", "conv1,conv2,conv3",
        "--out", str(out), "--size", "32", "--steps", "40", "--batch", "2", "--diversity", "2", "--top-k", "2", "-q",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / DB_NAME).exists():
            try:
                done = len(_rows(out))
            except sqlite3.OperationalError:  # tables not created yet
                done = 0
            if done >= 4:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(_rows(out))
    assert 4 <= partial < 40, f"kill landed outside the build ({partial} channels done)"
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert f"rendered {40 - partial} channels" in finished.stdout and f"{partial} already done" in finished.stdout
    rows = _rows(out)
    keys = [(r[0], r[1]) for r in rows]
    assert sorted(keys) == sorted(
        {(layer, c) for layer, n in [("conv1", 8), ("conv2", 16), ("conv3", 16)] for c in range(n)}
    )
    assert len(keys) == len(set(keys)) == 40
    with sqlite3.connect(out / DB_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    for _, _, vis, neg, _ in rows:
        assert (out / vis).stat().st_size > 0 and (out / neg).stat().st_size > 0


def test_ray_build_gives_the_same_images_and_survives_a_worker_crash(tmp_path, one_thread, monkeypatch):
    ray = pytest.importorskip("ray")
    spec = f"{HERE / 'catalog_tiny.py'}:build_crashing_once"
    kw = {**SMALL, "batch": 4}
    local = build_catalog(spec, tmp_path / "local", layers="conv2", **kw)
    monkeypatch.setenv("FV_CRASH_PARENT", str(os.getpid()))
    monkeypatch.setenv("FV_CRASH_MARKER", str(tmp_path / "crashed"))
    monkeypatch.setenv("PYTHONPATH", str(HERE.parent / "src"))
    try:
        remote = build_catalog(spec, tmp_path / "ray", layers="conv2", ray="local", ray_num_cpus=2, **kw)
    finally:
        ray.shutdown()
    assert (tmp_path / "crashed").exists()  # a worker died mid-task; Ray retried its shard
    assert remote.run == local.run and remote.channels == 16
    a, b = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert a == b
    figures = "SELECT channel, seed, activation, negative_activation, dataset_max FROM channels ORDER BY channel"
    with sqlite3.connect(tmp_path / "local" / DB_NAME) as da, sqlite3.connect(tmp_path / "ray" / DB_NAME) as db:
        assert da.execute(figures).fetchall() == db.execute(figures).fetchall()
    for _, _, vis, neg, div in a:
        for rel in [vis, neg, *json.loads(div)]:
            assert (tmp_path / "local" / rel).read_bytes() == (tmp_path / "ray" / rel).read_bytes(), rel
