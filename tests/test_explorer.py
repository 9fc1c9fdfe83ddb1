"""The explorer: input validation over HTTP, and a real headless Chromium browsing a tiny catalog."""

from __future__ import annotations

import io
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from featurevis.catalog.build import build_catalog
from featurevis.catalog.explorer import app as explorer

HERE = Path(__file__).parent
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
TINY = f"{HERE / 'catalog_tiny.py'}:build"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory) -> tuple[Path, str]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("explorer") / "cat"
    try:
        report = build_catalog(
            TINY, out, layers="conv2,conv3", size=32, steps=8, batch=16, diversity=2, top_k=3, progress=False
        )
    finally:
        torch.set_num_threads(before)
    return out, report.run


@pytest.fixture(scope="module")
def client(catalog):
    from fastapi.testclient import TestClient

    return TestClient(explorer.create_app(catalog[0]), raise_server_exceptions=False)


def _message(r) -> str:
    m = re.search(r"class=err>([^<]*)", r.text)
    return m.group(1) if m else r.text


def test_pages_and_cached_images(client, catalog):
    _, run = catalog
    for url in ["/", f"/run/{run}", f"/run/{run}/layer/conv2", f"/run/{run}/layer/conv2/3", "/new"]:
        assert client.get(url).status_code == 200, url
    page = client.get(f"/run/{run}/layer/conv2/3").text
    srcs = re.findall(r"src='(/files/[^']+)'", page)
    assert len(srcs) >= 1 + 1 + 2 + 3 + 3  # visualization, negative, diversity, crops, whole images
    r = client.get(srcs[0])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert "max-age" in r.headers["cache-control"] and r.headers["etag"]
    assert client.get(srcs[0], headers={"If-None-Match": r.headers["etag"]}).status_code == 304
    head = client.head(srcs[0])
    assert head.status_code == 200 and head.headers["etag"] == r.headers["etag"] and not head.content
    assert client.get("/search?q=conv3:4", follow_redirects=False).headers["location"] == f"/run/{run}/layer/conv3/4"


@pytest.mark.parametrize(
    "url",
    [
        "/files/../catalog.sqlite",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files//etc/passwd",
        "/files/catalog.sqlite",
        "/files/catalog.sqlite-wal",
        "/files/..%2fcatalog.sqlite",
        "/files/%00.png",
        "/files/" + "a" * 5000 + ".png",
        "/files/" + "/".join(["d"] * 3000) + ".png",
    ],
)
def test_no_file_outside_the_catalog_images_is_served(client, url):
    r = client.get(url)
    assert r.status_code in (400, 404) and "SQLite" not in r.text and "root:" not in r.text


def test_bad_parameters_get_4xx_with_a_message(client, catalog, monkeypatch):
    _, run = catalog
    cases = {
        f"/run/{run}/layer/conv2/99": (404, "out of range"),
        f"/run/{run}/layer/conv9": (404, "unknown layer"),
        f"/run/{run}/layer/conv2/x": (422, "channel"),
        "/run/nope": (404, "no catalog run"),
        "/search?q=conv9:1": (404, "unknown layer"),
        "/search?q=conv2:x": (400, "channel must be a number"),
        "/api/jobs/nope": (404, "no job"),
    }
    for url, (status, text) in cases.items():
        r = client.get(url)
        assert r.status_code == status and text in _message(r), (url, r.status_code, r.text[:200])
    form = dict(run=run, layer="conv2", channel="3", size="32", steps="5")
    for bad, text in [
        ({"steps": "-5"}, "steps"),
        ({"size": "100000"}, "size"),
        ({"channel": "abc"}, "channel"),
        ({"channel": "400"}, "out of range"),
        ({"layer": "conv9"}, "unknown layer"),
        ({"layer": "fc"}, "no C×H×W"),
        ({"run": "nope"}, "no catalog run"),
    ]:
        r = client.post("/jobs/render", data={**form, **bad})
        assert 400 <= r.status_code < 500 and text in _message(r), (bad, r.status_code, r.text[:300])
    r = client.post("/jobs/dream", data={"run": run}, files={"photo": ("x.png", b"not an image", "image/png")})
    assert r.status_code == 415 and "not an image" in _message(r)
    monkeypatch.setattr(explorer, "MAX_UPLOAD_BYTES", 1000)
    r = client.post("/jobs/dream", data={"run": run}, files={"photo": ("x.png", bytes(5000), "image/png")})
    assert r.status_code == 413 and "too large" in _message(r)


def test_dream_job_on_an_uploaded_photo(client, catalog):
    _, run = catalog
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), (180, 120, 60)).save(buf, "PNG")
    data = {"run": run, "layer": "conv2", "octaves": "2", "steps": "3"}
    r = client.post(
        "/jobs/dream", data=data, files={"photo": ("p.png", buf.getvalue(), "image/png")}, follow_redirects=False
    )
    assert r.status_code == 303
    job = r.headers["location"].rsplit("/", 1)[1]
    for _ in range(300):
        state = client.get(f"/api/jobs/{job}").json()
        if state["status"] in ("done", "error"):
            break
        time.sleep(0.05)
    assert state["status"] == "done" and state["done"] == state["total"] == 6, state
    with Image.open(io.BytesIO(client.get(state["result"]).content)) as im:
        assert im.size == (80, 60)


def test_jobs_run_one_at_a_time_and_the_queue_is_bounded():
    q = explorer.JobQueue(max_pending=3)
    running, peak, release = [], [], threading.Event()

    def work(job):
        running.append(job.id)
        peak.append(len(running))
        release.wait(5)
        running.remove(job.id)

    jobs = [q.submit("render", str(i), work) for i in range(3)]
    with pytest.raises(OverflowError):
        q.submit("render", "one too many", work)
    time.sleep(0.1)
    assert q.position(jobs[2]) == 2
    release.set()
    deadline = time.monotonic() + 5
    while any(j.status != "done" for j in jobs) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [j.status for j in jobs] == ["done"] * 3 and max(peak) == 1


@pytest.fixture(scope="module")
def server(catalog):
    import uvicorn

    config = uvicorn.Config(explorer.create_app(catalog[0]), host="127.0.0.1", port=0, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


def _loaded(page, selector: str) -> int:
    """How many images matching ``selector`` have loaded (after scrolling them into view)."""
    return page.eval_on_selector_all(selector, "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")


def test_browse_and_render_in_headless_chromium(server, catalog):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium is needed: apt-get install -y chromium (the README's test command does it)")
    _, run = catalog
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    args += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"), args=args
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(server + "/")
        page.click("text=tiny")  # model
        assert page.url.endswith(f"/run/{run}")
        page.click("h2 >> text=conv3")  # layer
        assert page.url.endswith(f"/run/{run}/layer/conv3")
        page.wait_for_function(
            "[...document.querySelectorAll('.tile img')].slice(0, 4).every(i => i.complete && i.naturalWidth > 0)"
        )
        assert page.locator(".tile").count() == 16
        page.click(".tile >> nth=5")  # channel
        assert page.url.endswith("/layer/conv3/5")
        page.wait_for_load_state("load")
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("[...document.images].every(i => i.complete)")
        assert _loaded(page, "main img") >= 10  # vis, negative, diversity, examples all decoded
        page.keyboard.press("ArrowRight")  # keyboard navigation: next channel
        page.wait_for_url("**/layer/conv3/6")
        page.keyboard.press("u")  # back up to the layer grid
        page.wait_for_url("**/layer/conv3")
        page.fill("#q", "conv2:7")  # search
        page.press("#q", "Enter")
        page.wait_for_url("**/layer/conv2/7")
        page.click("text=render again with other settings")  # on-demand render, pre-filled
        page.fill("#render-form input[name=steps]", "60")
        page.fill("#render-form input[name=size]", "64")
        page.click("#render-form button")
        page.wait_for_url("**/jobs/*")
        page.wait_for_selector("#result", timeout=60_000)
        assert "done" in page.inner_text("#status")
        page.wait_for_function("document.getElementById('result').complete")
        assert page.eval_on_selector("#result", "i => i.naturalWidth") == 64
        assert page.eval_on_selector("#bar", "b => b.value") == 60
        browser.close()


def test_odd_requests_never_get_a_500(client, catalog):
    _, run = catalog
    gets = [
        "/run/%00",
        f"/run/{run}/layer/%00",
        f"/run/{run}/layer/conv2/-1",
        f"/run/{run}/layer/conv2/99999999999999999999999",
        "/search?q=",
        "/search?q=:::",
        "/search?q=conv2:-1",
        f"/search?q=conv2:1&run={'x' * 300}",
        "/new?channel=-1",
        "/new?run=%00",
        "/jobs/%00",
        "/jobs/render",
    ]
    for url in gets:
        r = client.get(url)
        assert 400 <= r.status_code < 500, (url, r.status_code)
    for data, files in [({}, None), ({"run": run}, None), ({"run": run, "layer": "conv2", "channel": "1e9"}, None)]:
        for url in ("/jobs/render", "/jobs/dream"):
            r = client.post(url, data=data, files=files)
            assert 400 <= r.status_code < 500, (url, data, r.status_code)
