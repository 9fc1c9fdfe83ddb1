"""``featurevis serve``: a local web explorer for catalogs (model → layers → channels → one channel),
plus on-demand renders and dreams with live progress.

Server-rendered pages from Jinja2 templates (``templates/``, autoescaped), one stylesheet and two
small vanilla scripts (``static/``); no build step, no JS framework. The routes live by topic:
:mod:`.pages` (browsing), :mod:`.files` (the catalog's images, validated), :mod:`.ondemand` (jobs)
with :mod:`.jobs` (the one-worker queue); :mod:`.state` holds what they share. FastAPI, uvicorn
and Jinja2 come from the ``web`` extra and are imported only when the explorer starts, so this
module imports without them. Every request is validated; a refusal is a 4xx with one line.
"""

import os
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

    from . import files, ondemand, pages
    from .jobs import JobQueue, ModelCache
    from .state import Explorer, templates

    root = Path(folder).resolve()
    with CatalogStore(root, readonly=True):
        pass  # fail now, with a clear message, when there is no catalog
    app = FastAPI(title="featurevis explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.explorer = Explorer(root, templates(), JobQueue(), ModelCache())
    _answer_errors(app)
    for module in (pages, files, ondemand):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(packages=[(__package__, "static")]), name="static")
    return app


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
