"""``featurevis serve``: a local web explorer for catalogs (model → layers → channels → one channel),
plus on-demand renders and dreams with live progress.

Plain server-rendered HTML and a few lines of vanilla JS; FastAPI + uvicorn come from the ``web``
extra and are imported only when the explorer starts. Every request is validated: files are
served only from inside the catalog folder, uploads are size-limited and must decode as images,
and a bad parameter gets a 4xx with a message. On-demand jobs run one at a time on a single
worker thread, so many users queue instead of overloading the machine.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations, which
# name classes imported inside create_app (the web extra is optional).
import contextlib
import html
import io
import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from ...core.errors import FeaturevisError, unknown
from ..store import CatalogStore

#: Largest accepted upload, and largest photo (pixels) a dream job decodes.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
#: Dream jobs work at most at this side (CPU time stays in seconds to a minute).
DREAM_MAX_SIDE = 512
#: Jobs waiting at once; more get 503 "busy".
MAX_PENDING = 8
#: Served file types; everything else (the database, temporary files) is never served.
SERVED_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
JOBS_DIR = "_jobs"
#: Finished jobs remembered (their result files stay in the catalog's _jobs folder).
KEEP_FINISHED = 200


# -- on-demand jobs -----------------------------------------------------------------------------
@dataclass
class Job:
    id: str
    kind: str
    title: str
    status: str = "queued"  # queued, running, done, error
    done: int = 0
    total: int = 1
    message: str = ""
    result: str | None = None  # file path relative to the catalog folder
    created: float = field(default_factory=time.time)
    seconds: float = 0.0

    def public(self, position: int) -> dict:
        return dict(
            id=self.id,
            kind=self.kind,
            title=self.title,
            status=self.status,
            done=self.done,
            total=self.total,
            message=self.message,
            result=f"/files/{self.result}" if self.result else None,
            queue_position=position,
            seconds=round(self.seconds, 1),
        )


class JobQueue:
    """One worker thread runs jobs in order; the rest wait (bounded)."""

    def __init__(self, max_pending: int = MAX_PENDING):
        self.jobs: dict[str, Job] = {}
        self.pending: queue.Queue[tuple[Job, Callable[[Job], None]]] = queue.Queue()
        self.max_pending = max_pending
        self.lock = threading.Lock()
        self.order: list[str] = []
        self.thread = threading.Thread(target=self._work, daemon=True, name="featurevis-jobs")
        self.thread.start()

    def submit(self, kind: str, title: str, fn: Callable[[Job], None]) -> Job:
        with self.lock:
            waiting = sum(1 for j in self.jobs.values() if j.status in ("queued", "running"))
            if waiting >= self.max_pending:
                raise OverflowError(f"{waiting} jobs are already waiting; try again in a minute")
            job = Job(uuid.uuid4().hex[:12], kind, title)
            self.jobs[job.id] = job
            self.order.append(job.id)
            finished = [i for i in self.order if self.jobs[i].status in ("done", "error")]
            for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:  # bounded memory
                self.order.remove(old)
                del self.jobs[old]
        self.pending.put((job, fn))
        return job

    def position(self, job: Job) -> int:
        """How many jobs run or wait before this one."""
        with self.lock:
            ahead = [self.jobs[i] for i in self.order[: self.order.index(job.id)]]
        return sum(1 for j in ahead if j.status in ("queued", "running"))

    def _work(self) -> None:
        while True:
            job, fn = self.pending.get()
            job.status = "running"
            start = time.perf_counter()
            try:
                fn(job)
                job.seconds = time.perf_counter() - start
                job.status = "done"
            except FeaturevisError as e:
                job.status, job.message = "error", str(e)
            except Exception as e:  # a job must never kill the worker thread
                job.status, job.message = "error", f"{type(e).__name__}: {e}"


# -- HTML -------------------------------------------------------------------------------------
_CSS = """
body{font:14px system-ui,sans-serif;margin:0;background:#16181c;color:#e6e6e6}
a{color:#8ab4f8;text-decoration:none}a:hover{text-decoration:underline}
header{display:flex;gap:1em;align-items:center;padding:.6em 1em;background:#22252b;position:sticky;top:0;z-index:1}
header .crumbs{flex:1}header input{width:16em;padding:.3em;background:#111;color:#eee;border:1px solid #444}
main{padding:1em}h1{font-size:1.3em;margin:.2em 0 .6em}h2{font-size:1.05em;margin:1.2em 0 .4em}
table{border-collapse:collapse}td,th{padding:.25em .8em;border-bottom:1px solid #333;text-align:left}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(132px,1fr));gap:6px}
.tile{display:block;background:#222;border-radius:4px;padding:3px;color:#ccc;font-size:12px;text-align:center}
.tile:focus{outline:2px solid #8ab4f8}
.tile img{width:100%;aspect-ratio:1;display:block;border-radius:3px;background:#333}
.tile.missing{color:#777;aspect-ratio:1;display:flex;align-items:center;justify-content:center}
.row{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
figure{margin:0;background:#222;padding:4px;border-radius:4px}figure img{display:block;border-radius:3px}
figcaption{font-size:12px;color:#aaa;max-width:200px}.big{width:256px;height:256px}.mid{width:160px;height:160px}
.small{width:120px;height:120px}.keys{color:#888;font-size:12px}.err{color:#ff8a80}
progress{width:24em;height:1.2em}
form{background:#22252b;padding:1em;border-radius:6px;display:inline-block;margin:0 1em 1em 0}
label{display:block;margin:.4em 0}input,select{background:#111;color:#eee;border:1px solid #444;padding:.2em}
"""

_JS = """
document.addEventListener('keydown', e => {
  const t = e.target.tagName; if (t === 'INPUT' || t === 'SELECT' || t === 'TEXTAREA') return;
  const b = document.body.dataset;
  if (e.key === '/') { e.preventDefault(); document.getElementById('q').focus(); return; }
  if (e.key === 'ArrowLeft' && b.prev) location.href = b.prev;
  else if (e.key === 'ArrowRight' && b.next) location.href = b.next;
  else if ((e.key === 'ArrowUp' || e.key === 'u' || e.key === 'Escape') && b.up) location.href = b.up;
  else if (e.key === 'j' || e.key === 'k') {
    const tiles = [...document.querySelectorAll('.tile')]; if (!tiles.length) return;
    let i = tiles.indexOf(document.activeElement); i = e.key === 'j' ? i + 1 : i - 1;
    tiles[Math.max(0, Math.min(tiles.length - 1, i))].focus();
  }
});
"""

_JOB_JS = """
const box = document.getElementById('job');
async function poll() {
  const r = await fetch('/api/jobs/' + box.dataset.id); const j = await r.json();
  const bar = document.getElementById('bar'); bar.max = j.total; bar.value = j.done;
  const where = j.status === 'queued' ? ` (${j.queue_position} ahead)` : '';
  document.getElementById('status').textContent = j.status + where + ` ${j.done}/${j.total}`;
  if (j.status === 'done') {
    const img = document.createElement('img'); img.src = j.result; img.id = 'result'; img.className = 'big';
    document.getElementById('out').replaceChildren(img);
    document.getElementById('status').textContent = `done in ${j.seconds} s`; return;
  }
  if (j.status === 'error') { document.getElementById('status').textContent = 'error: ' + j.message; return; }
  setTimeout(poll, 400);
}
poll();
"""


def _e(x: object) -> str:
    return html.escape(str(x), quote=True)


def _page(title: str, body: str, crumbs: list[tuple[str, str]] = (), nav: dict[str, str] | None = None) -> str:
    trail = " / ".join(["<a href='/'>catalogs</a>"] + [f"<a href='{_e(u)}'>{_e(t)}</a>" for t, u in crumbs])
    data = " ".join(f"data-{k}='{_e(v)}'" for k, v in (nav or {}).items() if v)
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
        f"<title>{_e(title)} · featurevis</title><style>{_CSS}</style><body {data}>"
        f"<header><span class=crumbs>{trail}</span><a href='/new'>render / dream</a>"
        f"<form action='/search' method=get style='padding:0;margin:0;background:none'>"
        f"<input id=q name=q placeholder='search: _blocks.8:12 (press /)' aria-label=search></form></header>"
        f"<main>{body}</main><script>{_JS}</script></body></html>"
    )


def _img(src: str | None, cls: str, alt: str) -> str:
    if not src:
        return ""
    return f"<img src='/files/{_e(src)}' class={cls} alt='{_e(alt)}' loading=lazy>"


def _fmt(v: float | None) -> str:
    return "–" if v is None else f"{v:.3g}"


# -- the app ----------------------------------------------------------------------------------
def create_app(folder: str | os.PathLike):
    """The explorer's ASGI app for the catalog in ``folder``."""
    try:
        from fastapi import FastAPI, File, Form, Query, Request, UploadFile
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
        from starlette.exceptions import HTTPException
    except ImportError:
        raise FeaturevisError("the explorer needs FastAPI: pip install 'featurevis[web]'") from None

    root = Path(folder).resolve()
    with CatalogStore(root, readonly=True):
        pass  # fail now, with a clear message, when there is no catalog
    jobs = JobQueue()
    models: dict[str, object] = {}
    models_lock, probe_lock = threading.Lock(), threading.Lock()
    app = FastAPI(title="featurevis explorer", docs_url=None, redoc_url=None, openapi_url=None)

    class Problem(Exception):
        def __init__(self, status: int, message: str):
            self.status, self.message = status, message

    def problem_page(status: int, message: str, request: Request) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        body = f"<h1>{status}</h1><p class=err>{_e(message)}</p><p><a href='/'>back to the catalogs</a></p>"
        return HTMLResponse(_page(f"error {status}", body), status_code=status)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_page(exc.status, exc.message, request)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return problem_page(exc.status_code, str(exc.detail), request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return problem_page(422, "bad parameter " + "; ".join(parts), request)

    @app.exception_handler(FeaturevisError)
    async def _fv(request: Request, exc: FeaturevisError):
        return problem_page(400, str(exc), request)

    @contextlib.contextmanager
    def store() -> Iterator[CatalogStore]:
        s = CatalogStore(root, readonly=True)
        try:
            yield s
        finally:
            s.close()

    def get_run(s: CatalogStore, run: str):
        row = s.run(run)
        if row is None:
            raise Problem(404, f"no catalog run {run!r} in {root.name}")
        return row

    def get_layer(s: CatalogStore, run: str, layer: str):
        layers = s.layers(run)
        for row in layers:
            if row["layer"] == layer:
                return row, layers
        raise Problem(404, str(unknown("layer", layer, [r["layer"] for r in layers])))

    def run_label(row) -> str:
        st = json.loads(row["settings"])
        return f"{row['model']} · {st['size']} px · {st['steps']} steps · seed {st['seed']}"

    # -- pages ---------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def home():
        with store() as s:
            runs = s.runs()
        rows = "".join(
            f"<tr><td><a href='/run/{_e(r['run'])}'>{_e(r['model'])}</a></td><td>{_e(run_label(r))}</td>"
            f"<td>{r['done']} / {r['total']}</td><td><code>{_e(r['run'])}</code></td></tr>"
            for r in runs
        )
        body = (
            f"<h1>Catalogs in {_e(root.name)}</h1><table><tr><th>model</th><th>settings</th><th>channels</th>"
            f"<th>run</th></tr>{rows}</table>"
            + ("" if runs else "<p>No builds yet: <code>featurevis catalog build lite0</code></p>")
        )
        return _page("catalogs", body)

    @app.get("/run/{run}", response_class=HTMLResponse)
    def run_page(run: str):
        with store() as s:
            row = get_run(s, run)
            layers = s.layers(run)
            previews = {r["layer"]: s.channels(run, r["layer"])[:6] for r in layers}
        items = []
        for r in layers:
            strip = "".join(_img(c["vis"], "small", f"{r['layer']}:{c['channel']}") for c in previews[r["layer"]])
            url = f"/run/{run}/layer/{r['layer']}"
            items.append(
                f"<h2><a class=tile-link href='{_e(url)}'>{_e(r['layer'])}</a> "
                f"<small>{r['done']} / {r['channels']} channels · shape {_e(r['shape'])}</small></h2>"
                f"<a href='{_e(url)}' class=row>{strip}</a>"
            )
        body = f"<h1>{_e(row['model'])}</h1><p>{_e(run_label(row))}</p>{''.join(items)}"
        return _page(row["model"], body, [(row["model"], f"/run/{run}")], {"up": "/"})

    @app.get("/run/{run}/layer/{layer}", response_class=HTMLResponse)
    def layer_page(run: str, layer: str):
        with store() as s:
            row = get_run(s, run)
            info, layers = get_layer(s, run, layer)
            chans = {c["channel"]: c for c in s.channels(run, layer)}
        names = [r["layer"] for r in layers]
        i = names.index(layer)
        base = f"/run/{run}/layer/"
        tiles = []
        for ch in range(info["channels"]):
            c = chans.get(ch)
            url = f"{base}{layer}/{ch}"
            if c is None:
                tiles.append(f"<a class='tile missing' href='{_e(url)}'>{ch}<br>not rendered yet</a>")
            else:
                tiles.append(
                    f"<a class=tile href='{_e(url)}'>{_img(c['vis'], '', f'{layer}:{ch}')}"
                    f"{ch} · {_fmt(c['activation'])}</a>"
                )
        body = (
            f"<h1>{_e(layer)} <small>{len(chans)} / {info['channels']} channels</small></h1>"
            f"<p class=keys>keys: j/k move between channels, Enter opens, ←/→ previous/next layer, u up, / search</p>"
            f"<div class=grid>{''.join(tiles)}</div>"
        )
        nav = {
            "prev": base + names[i - 1] if i > 0 else "",
            "next": base + names[i + 1] if i + 1 < len(names) else "",
            "up": f"/run/{run}",
        }
        return _page(layer, body, [(row["model"], f"/run/{run}"), (layer, base + layer)], nav)

    @app.get("/run/{run}/layer/{layer}/{channel}", response_class=HTMLResponse)
    def channel_page(run: str, layer: str, channel: int):
        with store() as s:
            row = get_run(s, run)
            info, _ = get_layer(s, run, layer)
            if not 0 <= channel < info["channels"]:
                raise Problem(404, f"channel {channel} out of range: {layer} has channels 0..{info['channels'] - 1}")
            c = s.channel(run, layer, channel)
            examples = s.examples(run, layer, channel) if c else []
        base = f"/run/{run}/layer/{layer}"
        nav = {
            "prev": f"{base}/{channel - 1}" if channel > 0 else "",
            "next": f"{base}/{channel + 1}" if channel + 1 < info["channels"] else "",
            "up": base,
        }
        crumbs = [(row["model"], f"/run/{run}"), (layer, base), (str(channel), f"{base}/{channel}")]
        again = f"/new?run={run}&layer={layer}&channel={channel}"
        if c is None:
            body = (
                f"<h1>{_e(layer)}:{channel}</h1><p>Not rendered yet in this catalog.</p>"
                f"<p><a href='{_e(again)}'>render it now</a></p>"
            )
            return _page(f"{layer}:{channel}", body, crumbs, nav)
        fig = json.loads(c["figures"])
        div = json.loads(c["diversity"])
        div_html = "".join(
            f"<figure>{_img(f, 'mid', f'diversity {q}')}<figcaption>activation {_fmt(a)}</figcaption></figure>"
            for q, (f, a) in enumerate(zip(div, fig.get("diversity_activations", []), strict=False))
        )
        imgs = [e for e in examples if e["kind"] == "image"]
        crops = [e for e in examples if e["kind"] == "crop"]
        ex_imgs = "".join(
            f"<figure>{_img(e['file'], 'small', e['name'] or '')}<figcaption>{_e(e['name'])}<br>"
            f"mean {_fmt(e['value'])}</figcaption></figure>"
            for e in imgs
        )
        ex_crops = "".join(
            f"<figure>{_img(e['file'], 'small', 'crop')}<figcaption>{_e(e['name'])}<br>"
            f"max {_fmt(e['value'])}</figcaption></figure>"
            for e in crops
        )
        st = json.loads(row["settings"])
        figures = [
            ("achieved activation (mean over positions)", _fmt(c["activation"])),
            ("best dataset image (mean over positions)", _fmt(imgs[0]["value"]) if imgs else "–"),
            ("max activation over the dataset (one position)", _fmt(c["dataset_max"])),
            ("negative image's activation", _fmt(c["negative_activation"])),
            ("seed", c["seed"]),
            ("render time per channel (shard time / channels)", f"{c['seconds']:.2f} s"),
            ("shard", f"{fig.get('shard_channels')} channels in {fig.get('shard_seconds', 0):.1f} s"),
            ("settings", ", ".join(f"{k}={v}" for k, v in st.items() if k not in ("model", "dataset"))),
        ]
        table = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in figures)
        neg = c["negative"]
        body = (
            f"<h1>{_e(layer)}:{channel}</h1>"
            f"<p class=keys>keys: ←/→ previous/next channel, u back to the layer, / search · "
            f"<a href='{_e(again)}'>render again with other settings</a></p>"
            f"<div class=row><figure>{_img(c['vis'], 'big', f'{layer}:{channel}')}"
            f"<figcaption>maximizes the channel</figcaption></figure>"
            + (
                f"<figure>{_img(neg, 'big', 'negative')}<figcaption>negative: minimizes it</figcaption></figure>"
                if neg
                else ""
            )
            + f"<table>{table}</table></div>"
            + (f"<h2>Diversity</h2><div class=row>{div_html}</div>" if div_html else "")
            + (f"<h2>Dataset images that excite it most</h2><div class=row>{ex_imgs}</div>" if ex_imgs else "")
            + (f"<h2>Most-activating crops</h2><div class=row>{ex_crops}</div>" if ex_crops else "")
        )
        return _page(f"{layer}:{channel}", body, crumbs, nav)

    @app.get("/search")
    def search(q: str = "", run: str | None = None):
        q = q.strip()
        if not q or len(q) > 200:
            raise Problem(400, "search for a layer (_blocks.8) or a channel (_blocks.8:12)")
        layer, _, ch = q.partition(":")
        with store() as s:
            runs = [run] if run else [r["run"] for r in reversed(s.runs())]
            for r in runs:
                get_run(s, r)
                names = [x["layer"] for x in s.layers(r)]
                if layer in names:
                    if not ch:
                        return RedirectResponse(f"/run/{r}/layer/{layer}", status_code=303)
                    if not ch.strip().isdigit():
                        raise Problem(400, f"channel must be a number, got {ch!r}")
                    return RedirectResponse(f"/run/{r}/layer/{layer}/{int(ch)}", status_code=303)
            known = sorted({x["layer"] for r in runs for x in s.layers(r)})
        raise Problem(404, str(unknown("layer", layer, known)) if known else "no layers in this catalog")

    @app.api_route("/files/{path:path}", methods=["GET", "HEAD"])
    def files(path: str, request: Request):
        rel = Path(path)
        if "\x00" in path or rel.is_absolute() or any(p in ("..", "") or p.startswith(".") for p in rel.parts):
            raise Problem(404, "no such file")
        try:
            p = (root / rel).resolve()
            if not p.is_relative_to(root) or p.suffix.lower() not in SERVED_SUFFIXES or not p.is_file():
                raise Problem(404, "no such file")
            stat = p.stat()
        except OSError:  # a name too long, a loop of links...
            raise Problem(404, "no such file") from None
        etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
        headers = {"Cache-Control": "public, max-age=604800", "ETag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return FileResponse(p, media_type=SERVED_SUFFIXES[p.suffix.lower()], headers=headers)

    # -- on-demand ---------------------------------------------------------------------------
    def model_for(spec: str, probe: bool = False):
        """The job worker's model, or (``probe``) a separate copy that request threads validate on."""
        from ..build import load_model_spec

        key = f"{spec}#probe" if probe else spec
        with models_lock:
            if key not in models:
                models[key] = load_model_spec(spec)
            return models[key]

    @app.get("/new", response_class=HTMLResponse)
    def new_page(
        run: str | None = None,
        layer: Annotated[str, Query(max_length=200)] = "",
        channel: Annotated[int, Query(ge=0)] = 0,
    ):
        with store() as s:
            runs = s.runs()
            if run is not None:
                get_run(s, run)
        if not runs:
            raise Problem(404, "this catalog has no builds yet")
        run = run or runs[-1]["run"]
        opts = "".join(
            f"<option value='{_e(r['run'])}'{' selected' if r['run'] == run else ''}>{_e(run_label(r))}</option>"
            for r in runs
        )
        body = (
            "<h1>Render or dream on demand</h1><p>Jobs run one at a time; yours waits its turn.</p>"
            "<form id=render-form method=post action='/jobs/render'><h2>Render a channel</h2>"
            f"<label>model <select name=run>{opts}</select></label>"
            f"<label>layer <input name=layer required value='{_e(layer)}'></label>"
            f"<label>channel <input name=channel type=number min=0 value='{channel}'></label>"
            "<label>size <input name=size type=number min=32 max=384 value=128></label>"
            "<label>steps <input name=steps type=number min=1 max=1024 value=256></label>"
            "<label>seed <input name=seed type=number min=0 value=0></label>"
            "<button type=submit>render</button></form>"
            "<form id=dream-form method=post action='/jobs/dream' enctype='multipart/form-data'>"
            "<h2>Dream on a photo</h2>"
            f"<label>model <select name=run>{opts}</select></label>"
            f"<label>photo (≤ {MAX_UPLOAD_BYTES // 2**20} MiB) <input name=photo type=file accept='image/*' required>"
            "</label><label>layer <input name=layer placeholder='default'></label>"
            "<label>octaves <input name=octaves type=number min=1 max=6 value=3></label>"
            "<label>steps per octave <input name=steps type=number min=1 max=50 value=10></label>"
            "<button type=submit>dream</button></form>"
        )
        return _page("render / dream", body, [("render / dream", "/new")])

    @app.post("/jobs/render")
    def submit_render(
        run: str = Form(..., max_length=64),
        layer: str = Form(..., min_length=1, max_length=200),
        channel: int = Form(..., ge=0),
        size: int = Form(128, ge=32, le=384),
        steps: int = Form(256, ge=1, le=1024),
        seed: int = Form(0, ge=0, le=2**31 - 1),
    ):
        from ...core import objectives as O
        from ...core.images import save_image
        from ..build import CatalogSettings, _optimize

        with store() as s:
            row = get_run(s, run)
        spec = json.loads(row["settings"])["model"]
        model = model_for(spec)
        with probe_lock:  # its own model copy: probing must not hook into a running job's forward
            n = model_for(spec, probe=True).layer_shape(layer, size)
        if len(n) != 3:
            raise Problem(400, f"layer {layer!r} has no C×H×W map")
        if channel >= n[0]:
            raise Problem(400, f"channel {channel} out of range: {layer} has channels 0..{n[0] - 1}")
        settings = CatalogSettings(model=spec, size=size, steps=steps)

        def work(job: Job) -> None:
            job.total = steps

            def tick() -> None:
                job.done += 1

            result = _optimize(model, O.channel(layer, channel), 1, settings, seed, tick)
            name = f"{JOBS_DIR}/{job.id}.png"
            save_image(result.images[0], root / name)
            job.message = f"activation {float(result.values[0]):.3g}"
            job.result = name

        return enqueue("render", f"{layer}:{channel} · {size} px · {steps} steps · seed {seed}", work)

    @app.post("/jobs/dream")
    async def submit_dream(
        request: Request,
        photo: Annotated[UploadFile, File()],
        run: str = Form(..., max_length=64),
        layer: str = Form("", max_length=200),
        octaves: int = Form(3, ge=1, le=6),
        steps: int = Form(10, ge=1, le=50),
    ):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + 65536:
            raise Problem(413, f"upload too large: at most {MAX_UPLOAD_BYTES // 2**20} MiB")
        data = await photo.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise Problem(413, f"upload too large: at most {MAX_UPLOAD_BYTES // 2**20} MiB")
        image = _decode_upload(data, Problem)
        with store() as s:
            row = get_run(s, run)
        model = model_for(json.loads(row["settings"])["model"])
        if layer:
            model.check_layer(layer)

        def work(job: Job) -> None:
            from ...core.images import from_pil, save_image
            from ...recipes.dream import dream

            def tick(done: int, total: int) -> None:
                job.done, job.total = done, total

            result = dream(
                model, from_pil(image), layer or None, octaves=octaves, steps=steps, on_step=tick, progress=False
            )
            job.result = f"{JOBS_DIR}/{job.id}.jpg"
            save_image(result.image, root / job.result, quality=92)
            job.message = f"objective {result.before:.3g} → {result.after:.3g}"

        return enqueue("dream", f"dream on {photo.filename or 'photo'} · {octaves} octaves × {steps} steps", work)

    def enqueue(kind: str, title: str, work: Callable[[Job], None]):
        try:
            job = jobs.submit(kind, title, work)
        except OverflowError as e:
            raise Problem(503, str(e)) from None
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    def get_job(job_id: str) -> Job:
        job = jobs.jobs.get(job_id)
        if job is None:
            raise Problem(404, f"no job {job_id!r} (jobs are kept while the server runs)")
        return job

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(job_id: str):
        job = get_job(job_id)
        body = (
            f"<h1>{_e(job.kind)}: {_e(job.title)}</h1><div id=job data-id='{_e(job.id)}'>"
            f"<progress id=bar max=1 value=0></progress> <span id=status>{_e(job.status)}</span>"
            f"<div id=out class=row style='margin-top:1em'></div></div><script>{_JOB_JS}</script>"
        )
        return _page(job.kind, body, [("render / dream", "/new"), (job.id, f"/jobs/{job.id}")])

    @app.get("/api/jobs/{job_id}")
    def job_api(job_id: str):
        job = get_job(job_id)
        return JSONResponse(job.public(jobs.position(job)), headers={"Cache-Control": "no-store"})

    app.state.jobs = jobs
    return app


def _decode_upload(data: bytes, problem: type[Exception]):
    """The uploaded bytes as an RGB PIL image no larger than :data:`DREAM_MAX_SIDE`, or a 4xx."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise problem(400, "the upload is empty; choose a photo")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > MAX_UPLOAD_PIXELS:
                raise problem(413, f"image too large: {im.width}x{im.height} is over {MAX_UPLOAD_PIXELS:,} pixels")
            im = ImageOps.exif_transpose(im)
            im.load()
            im = im.convert("RGB")
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        raise problem(415, "the upload is not an image (PNG, JPEG, WebP...)") from None
    if min(im.size) < 16:
        raise problem(400, f"image is {im.width}x{im.height}; need at least 16x16 pixels")
    im.thumbnail((DREAM_MAX_SIDE, DREAM_MAX_SIDE), Image.Resampling.LANCZOS)
    return im
