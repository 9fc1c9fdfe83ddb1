"""``featurevis serve``: a local web explorer for catalogs (model → layers → channels → one channel),
plus on-demand renders and dreams with live progress.

Server-rendered pages from Jinja2 templates (``templates/``, autoescaped), one stylesheet and two
small vanilla scripts (``static/``); no build step, no JS framework. The routes live by topic:
:mod:`.pages` (browsing), :mod:`.files` (the catalog's images, validated), :mod:`.ondemand` (jobs)
with :mod:`.jobs` (the one-worker queue); :mod:`.state` holds what they share. FastAPI, uvicorn
and Jinja2 come from the ``web`` extra and are imported only when the explorer starts, so this
module imports without them. Every request is validated; a refusal is a 4xx with one line.
"""

import contextlib
import os
import sqlite3
from pathlib import Path

from ...core.errors import FeaturevisError
from ..store import CatalogStore


def create_app(folder: str | os.PathLike):
    """The explorer's ASGI app for the catalog in ``folder``."""
    try:
        import fastapi  # noqa: F401  (the web extra: checked first, for a one-line message)
        import jinja2  # noqa: F401
    except ImportError:
        raise FeaturevisError("the explorer needs FastAPI and Jinja2: pip install 'featurevis[web]'") from None
    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from . import explain, files, ondemand, pages
    from .jobs import JobQueue, ModelCache
    from .state import Explorer, templates

    root = Path(folder).resolve()
    with CatalogStore(root, readonly=True):
        pass  # fail now, with a clear message, when there is no catalog or it cannot be read
    app = FastAPI(title="featurevis explorer", docs_url=None, redoc_url=None, openapi_url=None, lifespan=_lifespan)
    app.state.explorer = Explorer(root, templates(), JobQueue(), ModelCache())
    app.add_middleware(BodyLimit, limit=ondemand.MAX_UPLOAD_BYTES + BODY_OVERHEAD)
    _answer_errors(app)
    for module in (pages, files, ondemand, explain):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(packages=[(__package__, "static")]), name="static")
    return app


#: Bytes a form may add around its upload (field names, boundaries, the other fields).
BODY_OVERHEAD = 64 * 1024


class BodyLimit:
    """Refuse a request body over ``limit`` bytes as it arrives (413), by its declared length or
    by counting: the form parser would otherwise spool an upload of any size to disk first."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        received = int(declared) if declared.isdigit() else 0

        async def limited():
            nonlocal received
            if received > self.limit:  # the declared length, checked before a byte is read
                raise _too_large(self.limit)
            message = await receive()
            if message["type"] == "http.request" and not declared.isdigit():
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _too_large(self.limit)
            return message

        return await self.app(scope, limited, send)


def _too_large(limit: int):
    from starlette.exceptions import HTTPException

    return HTTPException(413, f"request too large: at most {limit // 2**20} MiB")


@contextlib.asynccontextmanager
async def _lifespan(app):
    """On shutdown, cancel the jobs and wait for the worker: a thread left inside torch when the
    interpreter exits aborts the process."""
    from starlette.concurrency import run_in_threadpool

    yield
    await run_in_threadpool(app.state.explorer.jobs.close)


def _answer_errors(app) -> None:
    """Every refusal, whoever raises it (a route, FastAPI's validation, Starlette's 404/405, a
    :class:`FeaturevisError` from the library), becomes the same error page or JSON."""
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    from .state import Problem

    def problem(request: Request, status: int, message: str):
        return request.app.state.explorer.problem(request, status, message)

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem(request, exc.status, exc.message)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        return problem(request, exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(x) for x in err.get("loc", ())[1:]) or "request"
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return problem(request, 422, "bad parameter " + "; ".join(parts))

    @app.exception_handler(FeaturevisError)
    async def _featurevis(request: Request, exc: FeaturevisError):
        return problem(request, 400, str(exc))

    @app.exception_handler(sqlite3.Error)
    async def _database(request: Request, exc: sqlite3.Error):
        return problem(request, 503, f"the catalog's database cannot be read now ({exc})")

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):  # still logged by the server, with its traceback
        return problem(request, 500, f"internal error ({type(exc).__name__}); the server's log has the details")
