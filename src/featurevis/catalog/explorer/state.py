"""What every route of the explorer shares: :class:`Explorer` (the catalog folder, the templates,
the job queue and its models; one per app, on ``app.state``, handed to routes by
:data:`ExplorerDep`) and :class:`Problem`, the one way a route refuses a request."""

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined

from ...core.errors import FeaturevisError, unknown
from ..store import SCORES, CatalogStore
from .jobs import JobQueue, ModelCache

#: Each fidelity score's short label, by column.
SCORE_LABELS = {key: label for key, label, _ in SCORES}


class Problem(Exception):
    """A request the explorer refuses: an HTTP status and one line that tells the user why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Explorer:
    root: Path  # the catalog folder, resolved
    templates: Jinja2Templates
    jobs: JobQueue
    models: ModelCache

    def store(self) -> CatalogStore:
        """A read-only connection for one request (``with ex.store() as s``): connections are cheap,
        and the database's WAL mode lets a build write meanwhile. A catalog gone or broken since
        the server started is a 503 (the server's trouble, not the request's)."""
        try:
            return CatalogStore(self.root, readonly=True)
        except FeaturevisError as e:
            raise Problem(503, str(e)) from None

    def run(self, s: CatalogStore, run: str) -> sqlite3.Row:
        """The catalog run ``run``, or a 404."""
        row = s.run(run)
        if row is None:
            raise Problem(404, f"no catalog run {run!r} in {self.root.name}")
        return row

    def layer(self, s: CatalogStore, run: str, layer: str) -> tuple[dict, list[dict]]:
        """``layer``'s row and all the run's layers, then its sets of atoms (:func:`units`), or a
        404 naming the closest names."""
        layers = units(s, run)
        for row in layers:
            if row["layer"] == layer:
                return row, layers
        raise Problem(404, str(unknown("layer", layer, [r["layer"] for r in layers])))

    def page(
        self,
        request: Request,
        template: str,
        title: str,
        crumbs: Sequence[tuple[str, str]] = (),
        nav: dict[str, str] | None = None,
        status: int = 200,
        **context: object,
    ) -> HTMLResponse:
        """``template`` rendered in the layout of ``base.html``: ``crumbs`` are (text, url) after
        "catalogs", ``nav`` the prev/next/up urls the arrow keys follow."""
        context.update(title=title, crumbs=crumbs, nav={k: v for k, v in (nav or {}).items() if v})
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def problem(self, request: Request, status: int, message: str) -> Response:
        """The answer to a refused request: JSON under /api/, an error page elsewhere."""
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return self.page(request, "error.html", f"error {status}", status=status, code=status, message=message)


def units(s: CatalogStore, run: str) -> list[dict]:
    """The run's browsable sets of units: its layers (``atoms`` None), then its sets of concept
    atoms (``_blocks.8~nmf64``: ``channels`` is the number of atoms, ``atoms`` a title such as
    "_blocks.8 NMF atoms", ``fit`` the fit's settings and figures)."""
    out = [dict(r, atoms=None, of=r["layer"], fit=None) for r in s.layers(run)]
    for u in s.unit_sets(run):
        label = {"nmf": "NMF", "sae": "SAE"}.get(u["method"], u["method"])
        out.append(
            dict(
                layer=u["unit_set"],
                channels=u["k"],
                shape=f"{u['k']} directions in {u['layer']}",
                done=u["done"],
                atoms=f"{label} atoms",
                of=u["layer"],
                fit=json.loads(u["fit"]),
            )
        )
    return out


def explorer(request: Request) -> Explorer:
    return request.app.state.explorer


#: A route's parameter ``ex: ExplorerDep`` receives the app's :class:`Explorer`.
ExplorerDep = Annotated[Explorer, Depends(explorer)]


def fmt(v: float | None) -> str:
    """A figure as the pages show it: three significant digits, a dash when unknown."""
    return "–" if v is None else f"{v:.3g}"


def run_label(row: sqlite3.Row) -> str:
    """One line that tells catalog runs apart: model, size, steps and seed."""
    st = json.loads(row["settings"])
    return f"{row['model']} · {st['size']} px · {st['steps']} steps · seed {st['seed']}"


def templates() -> Jinja2Templates:
    """The pages' templates, found through the package (so an installed wheel uses its own copy),
    escaped by default, and failing loudly on a name a route forgot to pass."""
    env = Environment(
        loader=PackageLoader(__package__, "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, run_label=run_label)
    return Jinja2Templates(env=env)
