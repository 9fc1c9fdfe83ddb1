"""The explorer: input validation over HTTP, and a real headless Chromium browsing a tiny catalog."""

from __future__ import annotations

import fnmatch
import html
import io
import json
import re
import shutil
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from featurevis.catalog.build import build_catalog
from featurevis.catalog.explorer import app as explorer
from featurevis.catalog.explorer import ondemand
from featurevis.catalog.explorer.jobs import JobQueue

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
    monkeypatch.setattr(ondemand, "MAX_UPLOAD_BYTES", 1000)
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
    q = JobQueue(max_pending=3)
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
        page.goto(server + f"/run/{run}/layer/conv3")  # the grid sorted by a fidelity score
        page.select_option("#sort-form select[name=sort]", "mis")  # applies at once (explorer.js)
        page.wait_for_url("**sort=mis**")
        mis = page.eval_on_selector_all(".tile", "ts => ts.map(t => parseFloat(t.dataset.mis))")
        assert len(mis) == 16 and mis == sorted(mis, reverse=True)
        browser.close()


def test_explain_a_photo_in_headless_chromium(server, catalog):
    """The explain page as a person uses it: pick a dataset photo, submit, follow the job to the
    explanation, and see every image decode."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])  # fmt: skip
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.goto(server + "/")
        page.click("text=explain a photo")
        page.check("#explain-form input[name=image] >> nth=2")
        page.fill("#explain-form input[name=size]", "64")
        page.fill("#explain-form input[name=steps]", "3")
        page.select_option("#explain-form select[name=caricature_layer]", "conv2")
        page.click("#explain-form button")
        page.wait_for_url("**/explain/*", timeout=120_000)
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function("[...document.images].every(i => i.complete)")
        assert page.locator(".top-channel").count() == 2 * 8  # both catalogued layers, 8 channels each
        assert page.locator("#groups figure").count() == 5 and page.locator("#caricature img").count() == 2
        assert _loaded(page, "main img") == page.locator("main img").count()
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


# -- templates: escaping, coverage, links ----------------------------------------------------------
TEMPLATES = Path(explorer.__file__).parent / "templates"
STATIC = Path(explorer.__file__).parent / "static"
#: Names a catalog could hold (a model's own name, a layer, a dataset photo's file name, a setting)
#: that would become markup, or break out of an attribute, if a template forgot to escape them.
MODEL = '<script>alert("model")</script>'
LAYER = "<img src=x onerror=alert(1)>"
PHOTO = "\"'><svg onload=alert(2)>"
SETTING = "<i onmouseover=alert(3)>0.05</i>"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> tuple[object, str, str]:
    """A client on a catalog whose names are all HTML: channel 0 rendered, channel 1 not."""
    from fastapi.testclient import TestClient

    from featurevis.catalog.store import CatalogStore, ChannelRecord

    folder, run = tmp_path_factory.mktemp("hostile"), "0123456789abcdef"
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (90, 20, 200)).save(buf, "PNG")
    with CatalogStore(folder) as store:
        store.add_run(run, MODEL, dict(model=MODEL, size=32, steps=8, seed=0, lr=SETTING))
        store.add_layers(run, [(LAYER, 2, (2, 4, 4))])
        for name in ("vis", "neg", "div0", "crop0", "photo"):
            store.write_file(f"{run}/{name}.png", buf.getvalue())
        store.add_dataset(run, [(0, PHOTO, f"{run}/photo.png")])
        examples = [
            dict(kind="image", rank=0, image=0, value=0.5, box=None, file=f"{run}/photo.png"),
            dict(kind="crop", rank=0, image=0, value=0.9, box=[0, 0, 4, 4], file=f"{run}/crop0.png"),
        ]
        figures = dict(diversity_activations=[0.4], shard_seconds=0.2, shard_channels=2)
        record = ChannelRecord(
            LAYER, 0, f"{run}/vis.png", f"{run}/neg.png", [f"{run}/div0.png"], 0.7, -0.3, 0.9, 1, 0.1, figures, examples
        )
        store.add_channels(run, [record])
        store.write_file("_jobs/0123456789ab/explain.json", json.dumps(_hostile_explanation(run)).encode())
    app = explorer.create_app(folder)
    job = app.state.explorer.jobs.submit("render", MODEL, lambda job: None)
    return TestClient(app, raise_server_exceptions=False), run, job.id


def _hostile_explanation(run: str) -> dict:
    """An explanation manifest (what ``catalog.explain`` writes) naming the hostile layer and photo."""
    top = [dict(rank=0, channel=0, mean=0.5, max=0.9, map="m.jpg", vis=f"{run}/vis.png")]
    return dict(
        run=run,
        photo="photo.png",
        size=[8, 8],
        prediction=[dict(cls=0, name=PHOTO, p=0.5)],
        layers=[dict(layer=LAYER, channels=2, hw=[4, 4], norm="n.jpg", top=top, catalogued=True)],
        groups=dict(layer=LAYER, error=0.5, panel="g.jpg", items=[dict(map="g0.jpg", vis="g0.png", share=1.0)]),
        caricature=dict(layer=LAYER, image="c.png", cosine_start=0.1, cosine=0.8),
    )


class _Markup(HTMLParser):
    """A page's elements (tag, attributes) and its visible text."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_every_page_template_escapes_what_the_catalog_names(hostile):
    client, run, job = hostile
    base = f"/run/{run}/layer/{LAYER}"
    shown = {  # url: the hostile names it must show as plain text (or attribute values)
        "/": [MODEL],
        f"/run/{run}": [MODEL, LAYER],
        base: [MODEL, LAYER],
        f"{base}/0": [MODEL, LAYER, PHOTO, SETTING],
        f"{base}/1": [MODEL, LAYER],
        f"/new?run={run}&channel=0&layer={LAYER.replace('=', '%3D')}": [LAYER],
        f"/jobs/{job}": [MODEL],
        f"/explain?run={run}": [MODEL, LAYER, PHOTO],
        "/explain/0123456789ab": [LAYER, PHOTO],
        f"/run/{run}/layer/{LAYER}x": [LAYER],  # the error page quotes the unknown name
    }
    used = set()
    for url, names in shown.items():
        r = client.get(url)
        assert r.status_code == (404 if url.endswith("x") else 200), (url, r.status_code, r.text[:300])
        used.add(r.template.name)
        page = _Markup(r.text)
        for tag, attrs in page.tags:
            assert tag != "svg" and not any(a.startswith("on") for a in attrs), (url, tag, attrs)
            assert tag != "script" or attrs.get("src", "").startswith("/static/"), (url, attrs)
            assert tag != "i", url
        visible = "".join(page.text) + " ".join(v or "" for _, attrs in page.tags for v in attrs.values())
        for name in names:
            assert name in visible, (url, name)
    alts = [attrs.get("alt") for tag, attrs in _Markup(client.get(f"{base}/0").text).tags if tag == "img"]
    assert PHOTO in alts  # a quote in a name cannot end the attribute early
    pages = {p.name for p in TEMPLATES.glob("*.html")} - {"base.html", "macros.html"}
    assert used == pages  # every page template was rendered above (base.html and macros.html by all)


def _links(page: str) -> set[str]:
    """Every same-site url a page loads or links to, the keyboard's data-prev/next/up included."""
    keys = ("href", "src", "data-prev", "data-next", "data-up")
    return {html.unescape(v) for _, attrs in _Markup(page).tags for k, v in attrs.items() if k in keys and v[:1] == "/"}


def test_no_page_links_to_a_missing_page_or_file(client, catalog):
    _, run = catalog
    job = client.app.state.explorer.jobs.submit("render", "nothing", lambda job: None)
    pages = ["/", f"/run/{run}", f"/run/{run}/layer/conv2", f"/run/{run}/layer/conv3/5", "/new", f"/jobs/{job.id}"]
    pages.append(f"/run/{run}/layer/conv2/99")  # an error page
    links = set()
    for url in pages:
        links |= _links(client.get(url).text)
    assert {"/static/explorer.css", "/static/explorer.js", "/static/job.js"} <= links
    assert len(links) > 50
    for url in sorted(links):
        r = client.get(url)
        assert r.status_code == 200, (url, r.status_code)
    assert client.get("/static/explorer.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/nope.css").status_code == 404
    assert client.get("/static/../catalog.sqlite").status_code == 404


def test_every_template_and_static_file_ships_in_the_wheel():
    """pyproject's package-data must name every file the explorer reads at run time, or a
    non-editable install serves pages without them."""
    import tomllib

    globs = tomllib.loads((HERE.parent / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = Path(explorer.__file__).parent
    files = [p for folder in (TEMPLATES, STATIC) for p in folder.iterdir()]
    assert len(files) >= 10
    for p in files:
        rel = p.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(rel, g) for g in globs["featurevis.catalog.explorer"]), rel


def _finished(client, job: str) -> dict:
    for _ in range(1200):
        state = client.get(f"/api/jobs/{job}").json()
        if state["status"] in ("done", "error"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not finish: {state}")


def test_explain_a_dataset_photo_shows_top_channels_groups_and_caricature(client, catalog):
    folder, run = catalog
    form = client.get(f"/explain?run={run}")
    assert form.status_code == 200 and "name=image" in form.text and "conv3" in form.text
    data = {
        "run": run,
        "image": "1",
        "layers": ["conv2", "conv3"],
        "top": "4",
        "size": "64",
        "groups_layer": "conv3",
        "groups": "3",
        "caricature_layer": "conv3",
        "steps": "4",
    }
    r = client.post("/jobs/explain", data=data, follow_redirects=False)
    assert r.status_code == 303, _message(r)
    job = r.headers["location"].rsplit("/", 1)[1]
    state = _finished(client, job)
    assert state["status"] == "done" and state["done"] == state["total"] == 2 + 2 * 4, state
    assert state["page"] == f"/explain/{job}"
    page = client.get(state["page"])
    assert page.status_code == 200
    manifest = json.loads((folder / "_jobs" / job / "explain.json").read_text())
    assert [L["layer"] for L in manifest["layers"]] == ["conv2", "conv3"]
    for L in manifest["layers"]:
        means = [e["mean"] for e in L["top"]]
        assert len(means) == 4 and means == sorted(means, reverse=True)  # the photo's strongest channels first
        assert all(e["vis"] for e in L["top"])  # the catalog rendered every channel: its pictures are shown
    assert len(manifest["groups"]["items"]) == 3 and manifest["caricature"]["layer"] == "conv3"
    srcs = re.findall(r"src='(/files/[^']+)'", page.text)
    assert len(srcs) >= 1 + 2 * (1 + 2 * 4) + 2 * 3 + 2
    for src in set(srcs):
        assert client.get(src).status_code == 200, src
    assert f"/run/{run}/layer/conv3/" in page.text  # top channels link to their catalog pages


def test_explain_refuses_bad_requests_with_one_line(client, catalog):
    _, run = catalog
    base = {"run": run, "layers": ["conv2"]}
    cases = [
        ({**base}, 400, "choose a photo"),
        ({**base, "image": "99"}, 404, "no dataset image 99"),
        ({**base, "image": "0", "layers": ["nope"]}, 400, "unknown layer 'nope'"),
        ({**base, "image": "0", "layers": ["fc"]}, 400, "no spatial map"),
        ({**base, "image": "0", "groups_layer": "conv1", "groups": "10"}, 400, "groups must be 1..8"),
        ({**base, "image": "0", "groups": "40"}, 422, "groups"),
        ({**base, "image": "0", "steps": "0"}, 422, "steps"),
        ({**base, "image": "0", "layers": [f"l{i}" for i in range(9)]}, 422, "at most 8 layers"),
        ({"run": "nope", "image": "0"}, 404, "no catalog run"),
    ]
    for data, status, message in cases:
        r = client.post("/jobs/explain", data=data, follow_redirects=False)
        assert r.status_code == status and message in html.unescape(_message(r)), (data, r.status_code, _message(r))
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buf, "PNG")
    r = client.post("/jobs/explain", data={**base, "image": "0"}, files={"photo": ("p.png", buf.getvalue())})
    assert r.status_code == 400 and "not both" in _message(r)
    assert client.get("/explain/0123456789ab").status_code == 404
    assert client.get("/explain/..%2F..").status_code == 404
