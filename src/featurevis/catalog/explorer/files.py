"""The catalog's images over HTTP (``/files/PATH``), and nothing else from its folder.

A path is refused (404, the same answer as for a missing file, so nothing can be probed) unless
it is relative, has no ``..``, empty or hidden part, resolves (links followed) inside the catalog
folder and names an image; the database and temporary files are never served. Images never change
once written, so browsers may cache them for a week and revalidate by ETag.
"""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from .state import ExplorerDep, Problem

#: Served file types; everything else (the database, temporary files) is never served.
SERVED_SUFFIXES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

router = APIRouter()


@router.api_route("/files/{path:path}", methods=["GET", "HEAD"])
def files(request: Request, ex: ExplorerDep, path: str):
    p = _served_file(ex.root, path)
    try:
        stat = p.stat()
    except OSError:  # deleted meanwhile
        raise Problem(404, "no such file") from None
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
    headers = {"Cache-Control": "public, max-age=604800", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return FileResponse(p, media_type=SERVED_SUFFIXES[p.suffix.lower()], headers=headers)


def _served_file(root: Path, path: str) -> Path:
    """The image file ``path`` names inside ``root``, or a 404."""
    rel = Path(path)
    if "\x00" in path or rel.is_absolute() or any(p in ("..", "") or p.startswith(".") for p in rel.parts):
        raise Problem(404, "no such file")
    try:
        p = (root / rel).resolve()
        if p.is_relative_to(root) and p.suffix.lower() in SERVED_SUFFIXES and p.is_file():
            return p
    except OSError:  # a name too long, a loop of links...
        pass
    raise Problem(404, "no such file")
