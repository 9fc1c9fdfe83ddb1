"""Faults, not mistakes: Ctrl-C and SIGTERM at any moment, a server stopped mid-job, a catalog
killed with ``kill -9``, an unreachable Ray cluster, a broken catalog database, a port in use,
and hostile values in the explorer's forms. Where the process itself is what is tested (signals,
exit codes, what is left on disk) the tests run the real command line in a subprocess; the
timeouts are generous bounds on a hang, never measurements."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image

import featurevis as fv
from featurevis.catalog.build import build_catalog
from featurevis.catalog.explorer import app as explorer
from featurevis.catalog.explorer.jobs import Cancelled, JobQueue
from featurevis.catalog.store import DB_NAME, CatalogStore
from featurevis.cli.main import main

HERE = Path(__file__).parent
TINY = f"{HERE / 'catalog_tiny.py'}:build"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent / "src")}
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


# -- helpers ------------------------------------------------------------------------------------
def _as_from_a_terminal() -> None:
    """A child starts with Ctrl-C and SIGTERM at their defaults, as from a terminal: when pytest
    itself runs as a background job its shell has set SIGINT to ignored, the child would inherit
    that, and featurevis rightly keeps an inherited "ignore" (``nohup``)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


_RUNNING: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    """A failed test must not leave a 100000-step render running for the rest of the suite."""
    yield
    while _RUNNING:
        proc = _RUNNING.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


class Running:
    """``featurevis ARGS`` in a subprocess whose stderr is collected as it comes (progress bars
    show when the work has begun)."""

    def __init__(self, *args: str, cwd: Path | None = None):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "featurevis.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            cwd=cwd,
            preexec_fn=_as_from_a_terminal,
        )
        _RUNNING.append(self.proc)
        self._out: list[bytes] = []
        self._err: list[bytes] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stdout, self._out), (self.proc.stderr, self._err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[bytes]) -> None:
        for chunk in iter(lambda: stream.read1(4096), b""):
            into.append(chunk)

    def wait_for(self, pattern: str, timeout: float = 120) -> None:
        """Until ``pattern`` (a regular expression) shows on stderr: the work has reached that point."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.stderr):
            assert self.proc.poll() is None, f"exited {self.proc.returncode} before {pattern!r}: {self.stderr}"
            assert time.monotonic() < deadline, f"no {pattern!r} within {timeout} s: {self.stderr}"
            time.sleep(0.05)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Exit code, stdout and stderr, once the process has ended."""
        self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return self.proc.returncode, b"".join(self._out).decode(errors="replace"), self.stderr

    @property
    def stderr(self) -> str:
        return b"".join(self._err).decode(errors="replace")


def messages(stderr: str) -> list[str]:
    """stderr's lines without the progress bars (tqdm redraws them with carriage returns)."""
    lines = stderr.replace("\r", "\n").splitlines()
    return [line for line in lines if line.strip() and "|" not in line and "it/s" not in line]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        im.load()  # the whole file decodes: not a half-written one
        return im.size


# -- Ctrl-C and SIGTERM on the command line ------------------------------------------------------
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_during_a_render_keeps_the_image_and_exits_128_plus_it(tmp_path, sig, code):
    out = tmp_path / "r.png"
    run = Running("render", "_blocks.8:1", "-m", "lite0", "--size", "64", "--steps", "100000", "-o", str(out))
    run.wait_for(r" [1-9]\d*/100000")  # the optimization loop has taken steps
    run.proc.send_signal(sig)
    rc, stdout, stderr = run.finish()
    assert rc == code, stderr
    assert png_size(out) == (64, 64)
    assert "(interrupted)" in stdout and "Traceback" not in stderr and messages(stderr) == [], stderr


def test_a_second_ctrl_c_while_the_result_is_saved_does_not_lose_it(tmp_path):
    out = tmp_path / "r.png"
    run = Running("render", "_blocks.8:1", "-m", "lite0", "--size", "96", "--steps", "100000", "-o", str(out))
    run.wait_for(r" [1-9]\d*/100000")
    run.proc.send_signal(signal.SIGINT)
    time.sleep(0.02)  # the first has landed; the second comes while the partial image is being kept
    run.proc.send_signal(signal.SIGINT)
    rc, stdout, stderr = run.finish()
    assert rc == 130 and "Traceback" not in stderr, stderr
    assert png_size(out) == (96, 96) and "(interrupted)" in stdout
    assert len(messages(stderr)) <= 1, stderr  # at most the line that says the work is being kept


def test_ctrl_c_while_torch_is_imported_is_one_line_exit_130():
    """A real SIGINT, sent by the process to itself the moment torch starts importing (so the
    test does not depend on when a signal sent from outside would land)."""
    start = (
        "import os, signal, sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch':\n"
        "            os.kill(os.getpid(), signal.SIGINT)\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "import runpy\n"
        "sys.argv = ['featurevis', 'layers', '-m', 'lite0']\n"
        "runpy.run_module('featurevis.cli', run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", start],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
        preexec_fn=_as_from_a_terminal,
    )
    assert (proc.returncode, proc.stderr, proc.stdout) == (130, "featurevis: interrupted\n", "")


def test_evolve_with_no_bound_shows_progress_and_keeps_the_best_on_ctrl_c(tmp_path):
    out = tmp_path / "evo"
    run = Running(
        "evolve", "lite0", "-c", "1,2", "--population", "1000000", "--generations", str(10**12),
        "--size", "32", "-o", str(out),
    )  # fmt: skip
    run.wait_for(r" [1-9]\d*/1000000000001000000")  # a batch of the first (million-image) generation is scored
    run.proc.send_signal(signal.SIGINT)
    rc, _, stderr = run.finish()
    assert rc == 130 and "Traceback" not in stderr, stderr
    record = json.loads((out / "confidences.json").read_text())
    assert record["interrupted"] and record["evaluations"] >= 256 and record["generations"] == 0
    assert png_size(out / "grid.png")[0] > 32 and len(list(out.glob("000[12]-*.png"))) == 2


def test_saliency_with_many_samples_keeps_the_average_so_far_on_ctrl_c(tmp_path):
    photo = tmp_path / "p.png"
    Image.new("RGB", (80, 60), (200, 120, 40)).save(photo)
    out = tmp_path / "s.png"
    run = Running("saliency", str(photo), "--samples", "100000", "--size", "64", "-o", str(out))
    run.wait_for(r" [1-9]\d*/100000")  # SmoothGrad has averaged a batch
    run.proc.send_signal(signal.SIGINT)
    rc, stdout, stderr = run.finish()
    assert rc == 130 and "Traceback" not in stderr, stderr
    assert "SmoothGrad over" in stdout and png_size(out)[0] > 64


def test_saliency_interrupted_averages_only_the_samples_done(monkeypatch, tiny):
    import featurevis.recipes.saliency as sal

    calls, real = [], sal.input_gradient

    def gradient(model, x, cls):
        calls.append(len(x))
        if len(calls) == 4:  # the raw gradient, then two batches of SmoothGrad, then Ctrl-C
            raise KeyboardInterrupt
        return real(model, x, cls)

    monkeypatch.setattr(sal, "input_gradient", gradient)
    photo = torch.rand(1, 3, 32, 32)
    r = fv.saliency(tiny, photo, 3, samples=1000, batch=8, progress=False)
    assert r.interrupted and r.settings["samples"] == 16
    monkeypatch.setattr(sal, "input_gradient", real)
    full = fv.saliency(tiny, photo, 3, samples=16, batch=8, progress=False)
    assert torch.allclose(r.smoothgrad, full.smoothgrad)  # the same samples, averaged over 16
    calls.clear()
    monkeypatch.setattr(sal, "input_gradient", gradient)
    calls.extend([0, 0])  # Ctrl-C in the first SmoothGrad batch: nothing to average, nothing kept
    with pytest.raises(KeyboardInterrupt):
        fv.saliency(tiny, photo, 3, samples=1000, batch=8, progress=False)


def test_evolve_interrupted_mid_generation_keeps_the_scored_part(monkeypatch, tiny):
    import featurevis.recipes.evolve as evo

    monkeypatch.setattr(evo, "EVAL_BATCH", 4)
    scored, real = [], evo.confidences

    def confidences(model, images, classes):
        scored.append(len(images))
        if len(scored) == 4:  # the initial population (2 batches), then half a generation
            raise KeyboardInterrupt
        return real(model, images, classes)

    monkeypatch.setattr(evo, "confidences", confidences)
    r = fv.evolve(tiny, [0, 3], population=8, generations=1000, size=32, seed=1, progress=False)
    assert r.interrupted and r.evaluations == 12 and r.generations == 0
    assert r.history.shape == (2, 2) and torch.equal(r.confidences, r.history[-1])


def test_evolve_scores_a_population_in_batches_with_the_same_result(monkeypatch, tiny):
    import featurevis.recipes.evolve as evo

    kw = dict(population=10, generations=3, size=32, seed=4, progress=False)
    whole = fv.evolve(tiny, [1, 2], **kw)
    monkeypatch.setattr(evo, "EVAL_BATCH", 3)
    pieces = fv.evolve(tiny, [1, 2], **kw)
    assert torch.equal(whole.history, pieces.history) and torch.equal(whole.images, pieces.images)


# -- the catalog -------------------------------------------------------------------------------
TEMPORARIES = ("{run}/conv2/0/.vis.png.k3j9x_2a.tmp", "{run}/dataset/.4.jpg.0abcdefg.tmp")


def test_a_build_killed_with_kill_9_leaves_no_temporary_file_once_resumed(tmp_path, one_thread):
    out = tmp_path / "cat"
    args = [
        "catalog", "build", TINY, "--layers", "conv2", "--out", str(out), "--size", "32", "--steps", "30",
        "--batch", "2", "--diversity", "0", "--no-negative", "--top-k", "1",
    ]  # fmt: skip
    run = Running(*args)
    run.wait_for(r" [1-9]\d*/16")  # a shard is committed: the build is writing files
    run.proc.send_signal(signal.SIGKILL)
    run.finish()
    (run_id,) = (p.name for p in out.iterdir() if p.is_dir())
    for rel in TEMPORARIES:  # what a kill -9 between a write and its rename leaves
        (out / rel.format(run=run_id)).write_bytes(b"half a file")
    mine = out / run_id / "notes.tmp"  # not a name atomic_write makes: not the catalog's to delete
    mine.write_text("keep me")
    assert len(list(out.rglob("*.tmp"))) >= 3
    report = build_catalog(
        TINY, out, layers="conv2", size=32, steps=30, batch=2, diversity=0, negative=False, top_k=1, progress=False
    )
    assert report.run == run_id and report.skipped >= 2 and report.channels + report.skipped == 16
    assert [p.name for p in out.rglob("*.tmp")] == ["notes.tmp"] and mine.read_text() == "keep me"


def test_one_build_at_a_time_writes_a_catalog(tmp_path):
    with CatalogStore(tmp_path) as store:
        with pytest.raises(fv.FeaturevisError, match=f"process {os.getpid()} is writing this catalog"):
            CatalogStore(tmp_path)
        store.add_run("r", "m", {})
    CatalogStore(tmp_path).close()  # released with the first store
    with CatalogStore(tmp_path, readonly=True) as reader:  # readers never wait for the writer
        assert [r["run"] for r in reader.runs()] == ["r"]


def test_a_ray_address_where_nothing_answers_is_refused_before_any_file(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as closed:  # bound but not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(fv.FeaturevisError, match="cannot reach Ray"):
            build_catalog(TINY, tmp_path / "cat", layers="conv2", ray=address, progress=False)
    with pytest.raises(fv.FeaturevisError, match="not HOST:PORT"):
        build_catalog(TINY, tmp_path / "cat", layers="conv2", ray="nowhere", progress=False)
    assert list(tmp_path.iterdir()) == []


# -- the explorer --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> tuple[Path, str]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("faults") / "cat"
    try:
        report = build_catalog(TINY, out, layers="conv2", size=32, steps=4, batch=16, diversity=0, progress=False)
    finally:
        torch.set_num_threads(before)
    return out, report.run


def _post(url: str, form: dict) -> str:
    """POST a form; the job's id from the redirect."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    try:
        urllib.request.build_opener(NoRedirect).open(url, data=urllib.parse.urlencode(form).encode(), timeout=60)
    except urllib.error.HTTPError as e:
        assert e.code == 303, e.read()[:300]
        return e.headers["location"].rsplit("/", 1)[1]
    raise AssertionError("no redirect to the job")


def test_serve_stopped_with_ctrl_c_while_a_job_runs_exits_130_cleanly(catalog):
    folder, run_id = catalog
    port = free_port()
    server = Running("serve", str(folder), "--port", str(port))
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(base + "/", timeout=5).read()
            break
        assert server.proc.poll() is None and time.monotonic() < deadline, server.stderr
        time.sleep(0.1)
    job = _post(base + "/jobs/render", dict(run=run_id, layer="conv2", channel=1, size=384, steps=1024))
    while json.loads(urllib.request.urlopen(f"{base}/api/jobs/{job}", timeout=30).read())["done"] < 2:
        assert time.monotonic() < deadline, "the job never ran"
        time.sleep(0.05)
    server.proc.send_signal(signal.SIGINT)
    rc, stdout, stderr = server.finish()
    assert (rc, stderr) == (130, "featurevis: interrupted\n"), stderr  # no abort, no traceback
    assert stdout.startswith(f"featurevis explorer: {base}/")


@pytest.mark.parametrize("content", [b"", b"SQLite format 3\x00" + bytes(4000), os.urandom(5000), "another"])
def test_serve_on_a_broken_catalog_database_is_one_line_exit_2(tmp_path, content, capsys):
    db = tmp_path / DB_NAME
    if content == "another":  # a real SQLite database, but not a catalog
        with contextlib.closing(sqlite3.connect(db)) as con:
            con.execute("CREATE TABLE notes (x)")
    else:
        db.write_bytes(content)
    assert main(["serve", str(tmp_path), "--port", str(free_port())]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not a readable catalog database" in err[0], err


def test_serve_on_a_port_in_use_or_an_unknown_host_is_one_line_exit_2(catalog, capsys):
    folder, _ = catalog
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", str(folder), "--port", str(taken.getsockname()[1])]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "Address already in use" in err[0] and "--port" in err[0], err
    assert main(["serve", str(folder), "--host", "no.such.host.invalid"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--host 'no.such.host.invalid'" in err[0], err


@pytest.fixture(scope="module")
def client(catalog):
    from fastapi.testclient import TestClient

    return TestClient(explorer.create_app(catalog[0]), raise_server_exceptions=False)


def _png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (field, value)
        for field in ("size", "steps", "channel", "seed")
        for value in ("nan", "inf", "-1", "1e3", "abc", "99999999999999999999999", "3.5")
    ],
)
def test_every_bad_render_field_is_a_4xx(client, catalog, field, value):
    form = {**dict(run=catalog[1], layer="conv2", channel="3", size="32", steps="5", seed="0"), field: value}
    r = client.post("/jobs/render", data=form)
    assert 400 <= r.status_code < 500 and "class=err>" in r.text, (r.status_code, r.text[-300:])


@pytest.mark.parametrize(
    ("form", "photo", "status"),
    [
        ({"octaves": "nan"}, lambda: _png((64, 64)), 422),
        ({"octaves": "7"}, lambda: _png((64, 64)), 422),
        ({"steps": "-3"}, lambda: _png((64, 64)), 422),
        ({"steps": "1e9"}, lambda: _png((64, 64)), 422),
        ({}, lambda: b"", 400),  # empty upload
        ({}, lambda: b"GIF89a but not really", 415),
        ({}, lambda: _png((64, 64))[:60], 415),  # a PNG cut short
        ({}, lambda: _png((20000, 20000), "1"), 413),  # 48 KB that decode to 400 million pixels
        ({}, lambda: _png((7000, 7000), "1"), 413),  # over the upload's pixel limit, under Pillow's
        ({}, lambda: bytes(11 * 2**20), 413),  # over the size limit, refused while it arrives
        ({}, lambda: _png((8, 8)), 400),  # too small to dream on
    ],
)
def test_every_bad_dream_upload_or_field_is_a_4xx(client, catalog, form, photo, status):
    data = {"run": catalog[1], "layer": "conv2", **form}
    r = client.post("/jobs/dream", data=data, files={"photo": ("p.png", photo(), "image/png")})
    assert r.status_code == status and "class=err>" in r.text, (r.status_code, r.text[-300:])


@pytest.mark.parametrize("declared", [True, False])
def test_a_body_over_the_limit_is_refused_as_it_arrives(declared):
    """The limit acts on the ASGI stream itself: by the declared length before a byte is read, or
    by counting a body sent without one (chunked), so a huge upload is never spooled whole."""
    import asyncio

    from starlette.exceptions import HTTPException

    chunk, read = 1000, []

    async def app(scope, receive, send):  # reads the whole body, as the form parser does
        while (await receive()).get("more_body"):
            pass

    async def receive():
        read.append(chunk)
        return {"type": "http.request", "body": bytes(chunk), "more_body": True}

    headers = [(b"content-length", b"1000000")] if declared else []
    scope = {"type": "http", "method": "POST", "headers": headers}
    with pytest.raises(HTTPException) as e:
        asyncio.run(explorer.BodyLimit(app, limit=10_000)(scope, receive, None))
    assert e.value.status_code == 413 and sum(read) == (0 if declared else 11_000)


def test_the_form_shows_its_limits(client):
    page = client.get("/new").text
    for text in ("size (px, 32–384)", "steps (1–1024)", "octaves (1–6)", "steps per octave (1–50)", "≤ 10 MiB"):
        assert text in page


def test_a_catalog_broken_while_serving_is_a_503_page_not_a_500(catalog, tmp_path):
    from fastapi.testclient import TestClient

    folder = tmp_path / "cat"
    folder.mkdir()
    with (
        contextlib.closing(sqlite3.connect(catalog[0] / DB_NAME)) as src,
        contextlib.closing(sqlite3.connect(folder / DB_NAME)) as dst,
    ):
        src.backup(dst)
    client = TestClient(explorer.create_app(folder), raise_server_exceptions=False)
    assert client.get("/").status_code == 200
    (folder / DB_NAME).write_bytes(os.urandom(4096))
    for url in ("/", f"/run/{catalog[1]}", f"/run/{catalog[1]}/layer/conv2/0", "/new", "/search?q=conv2"):
        r = client.get(url)
        assert r.status_code == 503 and "not a readable catalog database" in r.text, (url, r.status_code)
    (folder / DB_NAME).unlink()
    r = client.get("/")
    assert r.status_code == 503 and "no catalog here" in r.text


def test_shutting_the_server_down_cancels_its_jobs(catalog):
    from fastapi.testclient import TestClient

    app = explorer.create_app(catalog[0])
    with TestClient(app, raise_server_exceptions=False) as client:  # runs the app's lifespan
        form = dict(run=catalog[1], layer="conv2", channel="1", size="384", steps="1024")
        running = client.post("/jobs/render", data=form, follow_redirects=False).headers["location"].split("/")[-1]
        waiting = client.post("/jobs/render", data=form, follow_redirects=False).headers["location"].split("/")[-1]
        while client.get(f"/api/jobs/{running}").json()["done"] < 2:
            time.sleep(0.05)
    jobs = app.state.explorer.jobs
    assert not jobs.thread.is_alive()
    for job in (running, waiting):
        assert (jobs.jobs[job].status, jobs.jobs[job].message) == ("error", "cancelled: the server stopped")
    assert jobs.jobs[running].done < 1024
    with pytest.raises(OverflowError, match="shutting down"):
        jobs.submit("render", "late", lambda job: None)


def test_a_job_stops_at_its_next_step_once_the_queue_closes():
    q = JobQueue()
    started = threading.Event()
    steps = []

    def work(job):
        started.set()
        for i in range(10**9):
            job.step(i, 10**9)
            steps.append(i)
            time.sleep(0.001)

    job = q.submit("render", "endless", work)
    assert started.wait(30)
    assert q.close(timeout=30)
    assert job.status == "error" and 0 < len(steps) < 10**9
    with pytest.raises(Cancelled):
        job.step(0)
