"""The "explain a photo" pages (``/explain``): the live layer view, after DeepVis.

The form picks a catalog run and a photo (an upload, or one of the run's dataset images), the
layers to look at, and whether to add neuron groups and a caricature. The request checks all of
it (the photo decoded and bounded, every layer a spatial layer of that model) so a mistake is a
4xx at once; the work (:func:`featurevis.catalog.explain.explain_photo`) runs on the one-worker
job queue and writes its images and manifest into ``_jobs/ID/``; ``/explain/ID`` shows them,
also after the server restarts (the manifest is on disk).
"""

import json
import re
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ...core.errors import FeaturevisError
from ...core.images import from_pil, load_image
from ..explain import MANIFEST, ExplainSettings, check_settings, default_layers, explain_photo
from .ondemand import JOBS_DIR, MAX_UPLOAD_BYTES, _enqueue, decode_upload
from .state import Explorer, ExplorerDep, Problem

#: The form's numbers, (least, most): one explanation stays within about a minute of CPU.
LIMITS = {
    "top channels": (1, 16),
    "size": (64, 320),
    "groups": (1, 12),
    "steps": (1, 256),
    "layers": (1, 8),
}
_JOB_ID = re.compile(r"[0-9a-f]{12}")

router = APIRouter()


def _spatial_layers(s, run: str) -> list[str]:
    """The run's catalogued layers that have a C×H×W map (the ones a photo can be explained in)."""
    return [r["layer"] for r in s.layers(run) if len(json.loads(r["shape"])) == 3]


@router.get("/explain", response_class=HTMLResponse)
def explain_form(request: Request, ex: ExplorerDep, run: Annotated[str | None, Query(max_length=64)] = None):
    with ex.store() as s:
        runs = s.runs()
        if not runs:
            raise Problem(404, "this catalog has no builds yet")
        row = ex.run(s, run) if run is not None else runs[-1]
        layers = _spatial_layers(s, row["run"])
        dataset = s.dataset(row["run"])
    return ex.page(
        request,
        "explain_form.html",
        "explain a photo",
        [("explain a photo", "/explain")],
        runs=runs,
        run=row["run"],
        layers=layers,
        chosen=default_layers(layers),
        dataset=dataset,
        limits=LIMITS,
        max_upload_mib=MAX_UPLOAD_BYTES // 2**20,
    )


@router.post("/jobs/explain")
async def submit_explain(
    ex: ExplorerDep,
    run: str = Form(..., max_length=64),
    photo: Annotated[UploadFile | None, File()] = None,
    image: int | None = Form(None, ge=0),
    layers: Annotated[list[str] | None, Form()] = None,
    top: int = Form(8, ge=LIMITS["top channels"][0], le=LIMITS["top channels"][1]),
    size: int = Form(160, ge=LIMITS["size"][0], le=LIMITS["size"][1]),
    groups_layer: str = Form("", max_length=200),
    groups: int = Form(5, ge=LIMITS["groups"][0], le=LIMITS["groups"][1]),
    caricature_layer: str = Form("", max_length=200),
    steps: int = Form(128, ge=LIMITS["steps"][0], le=LIMITS["steps"][1]),
    seed: int = Form(0, ge=0, le=2**31 - 1),
):
    """Queue an explanation of an uploaded photo or of dataset image ``image``."""
    layers = layers or []
    if len(layers) > LIMITS["layers"][1] or any(len(x) > 200 for x in layers):
        raise Problem(422, f"choose at most {LIMITS['layers'][1]} layers")
    with ex.store() as s:
        spec = json.loads(ex.run(s, run)["settings"])["model"]
        dataset = {r["idx"]: r for r in s.dataset(run)}
    data = await photo.read(MAX_UPLOAD_BYTES + 1) if photo is not None and photo.filename else b""
    if data and image is not None:
        raise Problem(400, "give either an uploaded photo or a dataset image, not both")
    if not data and image is None:
        raise Problem(400, "choose a photo: upload one or pick a dataset image")
    if len(data) > MAX_UPLOAD_BYTES:
        raise Problem(413, f"upload too large: at most {MAX_UPLOAD_BYTES // 2**20} MiB")
    if data:
        picture = from_pil(await run_in_threadpool(decode_upload, data))
        name = photo.filename or "photo"
    else:
        if image not in dataset:
            raise Problem(404, f"no dataset image {image} in this run (0..{len(dataset) - 1})")
        picture = await run_in_threadpool(load_image, ex.root / dataset[image]["file"])
        name = dataset[image]["name"]
    settings = ExplainSettings(
        layers=tuple(dict.fromkeys(layers)),
        top=top,
        size=size,
        groups_layer=groups_layer or None,
        groups=groups,
        caricature_layer=caricature_layer or None,
        steps=steps,
        seed=seed,
    )
    model = await run_in_threadpool(_checked_model, ex, spec, settings)
    work = _explain_work(ex, model, picture, settings, run)
    what = ", ".join(settings.layers) or settings.groups_layer or settings.caricature_layer
    return _enqueue(ex, "explain", f"explain {name} · {what}", work)


def _checked_model(ex: Explorer, spec: str, settings: ExplainSettings):
    """The worker's model, once every layer of ``settings`` is known to be a spatial layer of it
    (checked on the probe copy: probing must not touch a model a job is running on)."""
    try:
        check_settings(ex.models.get(spec, probe=True), settings)
    except FeaturevisError as e:
        raise Problem(400, str(e)) from None
    return ex.models.get(spec)


def _explain_work(ex: Explorer, model, picture, settings: ExplainSettings, run: str):
    def work(job) -> None:
        job.step(0, settings.total_steps())
        out = ex.root / JOBS_DIR / job.id
        with ex.store() as s:
            manifest = explain_photo(model, picture, settings, out, catalog=(s, run), on_step=job.step)
        job.page = f"/explain/{job.id}"
        job.result = f"{JOBS_DIR}/{job.id}/{manifest['photo']}"
        top = manifest.get("prediction")
        job.message = f"top class: {top[0]['name']} ({top[0]['p']:.0%})" if top else "done"

    return work


@router.get("/explain/{job_id}", response_class=HTMLResponse)
def explain_page(request: Request, ex: ExplorerDep, job_id: str):
    """An explanation's page, from the manifest its job wrote."""
    if not _JOB_ID.fullmatch(job_id):
        raise Problem(404, f"no explanation {job_id!r}")
    path = ex.root / JOBS_DIR / job_id / MANIFEST
    if not path.is_file():
        job = ex.jobs.jobs.get(job_id)
        if job is not None and job.status in ("queued", "running"):
            raise Problem(409, f"explanation {job_id} is still {job.status}: see /jobs/{job_id}")
        raise Problem(404, f"no explanation {job_id!r} in this catalog")
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Problem(503, f"explanation {job_id} cannot be read ({e})") from None
    with ex.store() as s:
        runs = {r["run"]: r for r in s.runs()}
    run = m.get("run")
    crumbs = [("explain a photo", "/explain"), (job_id, f"/explain/{job_id}")]
    return ex.page(
        request,
        "explain.html",
        f"explanation {job_id}",
        crumbs,
        m=m,
        base=f"{JOBS_DIR}/{job_id}/",
        run=run if run in runs else None,
    )
