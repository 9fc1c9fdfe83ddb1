"""On-demand renders and dreams: the form (``/new``), the submissions, and each job's live page.

A submission is checked completely in the request (run, layer, channel, upload size and content)
so a mistake is a 4xx with a message at once, never a failed job later; the work itself is queued
on the app's one-worker :class:`~.jobs.JobQueue` and writes its image into the catalog's
``_jobs`` folder, from where ``/files/`` serves it.
"""

import io
import json
import warnings
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from PIL import Image, ImageOps, UnidentifiedImageError
from starlette.concurrency import run_in_threadpool

from ...core import objectives as O
from ...core.images import from_pil, save_image
from ...core.model import FeatureModel
from ...recipes.dream import dream
from ..build import CatalogSettings, render_objective
from .jobs import Job
from .state import Explorer, ExplorerDep, Problem

#: Largest accepted upload, and largest photo (pixels) a dream job decodes.
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_PIXELS = 40_000_000
#: Dream jobs work at most at this side (CPU time stays in seconds to a minute).
DREAM_MAX_SIDE = 512
#: The forms' numbers, (least, most): each job stays within seconds to a minute of CPU and a
#: bounded amount of memory. The form shows them, and a value outside is a 422.
LIMITS = {
    "render size": (32, 384),
    "render steps": (1, 1024),
    "dream octaves": (1, 6),
    "dream steps": (1, 50),
}
#: Job results, inside the catalog folder.
JOBS_DIR = "_jobs"

router = APIRouter()


@router.get("/new", response_class=HTMLResponse)
def new_page(
    request: Request,
    ex: ExplorerDep,
    run: str | None = None,
    layer: Annotated[str, Query(max_length=200)] = "",
    channel: Annotated[int, Query(ge=0)] = 0,
):
    """The render and dream forms, pre-filled from a channel page's "render again" link."""
    with ex.store() as s:
        runs = s.runs()
        if run is not None:
            ex.run(s, run)
    if not runs:
        raise Problem(404, "this catalog has no builds yet")
    context = dict(runs=runs, run=run or runs[-1]["run"], layer=layer, channel=channel)
    crumbs = [("render / dream", "/new")]
    return ex.page(
        request,
        "new.html",
        "render / dream",
        crumbs,
        max_upload_mib=MAX_UPLOAD_BYTES // 2**20,
        max_side=DREAM_MAX_SIDE,
        limits=LIMITS,
        **context,
    )


@router.post("/jobs/render")
def submit_render(
    ex: ExplorerDep,
    run: str = Form(..., max_length=64),
    layer: str = Form(..., min_length=1, max_length=200),
    channel: int = Form(..., ge=0),
    size: int = Form(128, ge=LIMITS["render size"][0], le=LIMITS["render size"][1]),
    steps: int = Form(256, ge=LIMITS["render steps"][0], le=LIMITS["render steps"][1]),
    seed: int = Form(0, ge=0, le=2**31 - 1),
):
    """Queue one channel's visualization, made as the catalog makes its own."""
    with ex.store() as s:
        spec = json.loads(ex.run(s, run)["settings"])["model"]
    shape = ex.models.layer_shape(spec, layer, size)
    if len(shape) != 3:
        raise Problem(400, f"layer {layer!r} has no C×H×W map")
    if channel >= shape[0]:
        raise Problem(400, f"channel {channel} out of range: {layer} has channels 0..{shape[0] - 1}")
    settings = CatalogSettings(model=spec, size=size, steps=steps)
    work = _render_work(ex, ex.models.get(spec), settings, layer, channel, seed)
    return _enqueue(ex, "render", f"{layer}:{channel} · {size} px · {steps} steps · seed {seed}", work)


def _render_work(
    ex: Explorer, model: FeatureModel, settings: CatalogSettings, layer: str, channel: int, seed: int
) -> Callable[[Job], None]:
    """The job that renders ``layer:channel`` and saves it as ``_jobs/ID.png``."""

    def work(job: Job) -> None:
        job.step(0, settings.steps)

        def tick() -> None:
            job.step(job.done + 1)

        result = render_objective(model, O.channel(layer, channel), 1, settings, seed, tick)
        name = f"{JOBS_DIR}/{job.id}.png"
        save_image(result.images[0], ex.root / name)
        job.message = f"activation {float(result.values[0]):.3g}"
        job.result = name

    return work


@router.post("/jobs/dream")
async def submit_dream(
    ex: ExplorerDep,
    photo: Annotated[UploadFile, File()],
    run: str = Form(..., max_length=64),
    layer: str = Form("", max_length=200),
    octaves: int = Form(3, ge=LIMITS["dream octaves"][0], le=LIMITS["dream octaves"][1]),
    steps: int = Form(10, ge=LIMITS["dream steps"][0], le=LIMITS["dream steps"][1]),
):
    """Queue a DeepDream of the uploaded photo (at most :data:`DREAM_MAX_SIDE` px a side). A body
    far over :data:`MAX_UPLOAD_BYTES` was refused while it arrived (:class:`.app.BodyLimit`)."""
    data = await photo.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise Problem(413, f"upload too large: at most {MAX_UPLOAD_BYTES // 2**20} MiB")
    # decoding and a first model load take seconds: off the event loop, so pages keep loading
    image = await run_in_threadpool(decode_upload, data)
    model = await run_in_threadpool(_dream_model, ex, run, layer)
    work = _dream_work(ex, model, image, layer, octaves, steps)
    return _enqueue(ex, "dream", f"dream on {photo.filename or 'photo'} · {octaves} octaves × {steps} steps", work)


def _dream_model(ex: Explorer, run: str, layer: str) -> FeatureModel:
    """The worker's model for ``run``, once ``layer`` (when given) is known to be one of its layers."""
    with ex.store() as s:
        spec = json.loads(ex.run(s, run)["settings"])["model"]
    model = ex.models.get(spec)
    if layer:
        model.check_layer(layer)
    return model


def _dream_work(
    ex: Explorer, model: FeatureModel, image: Image.Image, layer: str, octaves: int, steps: int
) -> Callable[[Job], None]:
    """The job that dreams on ``image`` and saves it as ``_jobs/ID.jpg``."""

    def work(job: Job) -> None:
        result = dream(
            model, from_pil(image), layer or None, octaves=octaves, steps=steps, on_step=job.step, progress=False
        )
        job.result = f"{JOBS_DIR}/{job.id}.jpg"
        save_image(result.image, ex.root / job.result, quality=92)
        job.message = f"objective {result.before:.3g} → {result.after:.3g}"

    return work


def decode_upload(data: bytes) -> Image.Image:
    """The uploaded bytes as an RGB image no larger than :data:`DREAM_MAX_SIDE`, or a 4xx: the
    pixel count is checked before decoding, so a small file cannot unpack into gigabytes."""
    if not data:
        raise Problem(400, "the upload is empty; choose a photo")
    too_large = f"image too large: at most {MAX_UPLOAD_PIXELS:,} pixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # a bomb is refused, not decoded
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_UPLOAD_PIXELS:
                    raise Problem(413, f"{too_large}; this one is {im.width}x{im.height}")
                im = ImageOps.exif_transpose(im)
                im.load()
                im = im.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Problem(413, too_large) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise Problem(415, "the upload is not an image Pillow can read whole (PNG, JPEG, WebP...)") from None
    if min(im.size) < 16:
        raise Problem(400, f"image is {im.width}x{im.height}; need at least 16x16 pixels")
    im.thumbnail((DREAM_MAX_SIDE, DREAM_MAX_SIDE), Image.Resampling.LANCZOS)
    return im


def _enqueue(ex: Explorer, kind: str, title: str, work: Callable[[Job], None]) -> RedirectResponse:
    """Queue ``work`` and send the browser to its job page, or a 503 while the queue is full."""
    try:
        job = ex.jobs.submit(kind, title, work)
    except OverflowError as e:
        raise Problem(503, str(e)) from None
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


def _job(ex: Explorer, job_id: str) -> Job:
    job = ex.jobs.jobs.get(job_id)
    if job is None:
        raise Problem(404, f"no job {job_id!r} (jobs are kept while the server runs)")
    return job


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, ex: ExplorerDep, job_id: str):
    """A job's progress bar; its script polls the API below and shows the image when done."""
    job = _job(ex, job_id)
    crumbs = [("render / dream", "/new"), (job.id, f"/jobs/{job.id}")]
    return ex.page(request, "job.html", job.kind, crumbs, job=job)


@router.get("/api/jobs/{job_id}")
def job_api(ex: ExplorerDep, job_id: str):
    job = _job(ex, job_id)
    return JSONResponse(job.public(ex.jobs.position(job)), headers={"Cache-Control": "no-store"})
