"""The tutorial notebooks (notebooks/*.ipynb): they run top to bottom against this checkout's
featurevis, use only the public API, and are stored executed, small and clean, so they read
well on GitHub.

Each notebook runs with nbclient in a fresh IPython kernel. The kernel is this very interpreter
(``sys.executable``), declared in a kernel spec written to a temporary folder that is put first
on ``JUPYTER_PATH``: a bare CI machine where only the virtualenv exists needs no registered
kernel, and a user's own ``python3`` kernel (another Python, another featurevis) cannot be picked
up by mistake. The kernel's ``PYTHONPATH`` starts with the folder this featurevis was imported
from, and the test checks the kernel imported that very package. (nbclient rather than the
nbmake plugin because the test needs that control over the kernel, and checks the outputs
themselves, not only that the cells ran.)

To refresh the stored outputs after editing a notebook::

    FEATUREVIS_UPDATE_NOTEBOOKS=1 pytest -q tests/test_notebooks.py
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image, ImageStat

import featurevis as fv

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
EXPECTED = ["01_rendering_and_objectives", "02_deepdream", "03_catalog", "04_fooling_and_saliency"]
KERNEL = "featurevis-tutorials"
#: Everything stored under notebooks/ together: images at small sizes, no huge outputs.
MAX_TOTAL_BYTES = 3_000_000
#: featurevis imports a tutorial may use besides ``import featurevis as fv`` and names from
#: ``fv.__all__``: the explorer's app factory, which is what ``featurevis serve`` runs.
EXTRA_IMPORTS = {"from featurevis.catalog.explorer.app import create_app"}
UPDATE = os.environ.get("FEATUREVIS_UPDATE_NOTEBOOKS") == "1"
PROBE = "import featurevis\nprint(featurevis.__file__)"


def _code(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _images(nb: nbformat.NotebookNode) -> list[Image.Image]:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            for mime in ("image/png", "image/jpeg"):
                if mime in o.get("data", {}):
                    out.append(Image.open(io.BytesIO(base64.b64decode(o["data"][mime]))))
    return out


@pytest.fixture(scope="module")
def kernel(tmp_path_factory) -> str:
    """A kernel spec running ``sys.executable``, found before any other, and an environment in
    which the kernel imports the featurevis under test (the kernel inherits this process's)."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    src = str(Path(fv.__file__).resolve().parents[1])
    pythonpath = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(root))
        mp.setenv("JUPYTER_RUNTIME_DIR", str(root / "runtime"))
        mp.setenv("IPYTHONDIR", str(root / "ipython"))  # no user profile or startup scripts
        mp.setenv("PYTHONPATH", pythonpath)
        if "OMP_NUM_THREADS" not in os.environ:
            # One intra-op thread, like conftest's one_thread: on a shared 2-core machine two
            # threads wait on each other (measured: notebook 01 in 42 s with one, 219 s with two;
            # its 96-px CPPN render 7 s vs 153 s); on an idle one, one thread costs little here.
            mp.setenv("OMP_NUM_THREADS", "1")
        yield KERNEL


def test_all_tutorials_are_here():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, kernel: str, tmp_path: Path, monkeypatch):
    """Every cell runs without an error (nbclient raises CellExecutionError with the traceback),
    in this checkout's featurevis, and every picture it shows has content (a failed render is
    a flat image)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebooks' scratch folders land here
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=600,
        startup_timeout=120,
        record_timing=False,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    probe = nb.cells.pop()
    imported = "".join(o.get("text", "") for o in probe.outputs).strip()
    assert Path(imported).resolve() == Path(fv.__file__).resolve()
    images = _images(nb)
    assert images, "a tutorial should show what it does"
    for i, im in enumerate(images):
        assert max(ImageStat.Stat(im.convert("RGB")).stddev) > 8, f"image {i} is flat"
    if UPDATE:
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, path)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_uses_public_api(path: Path):
    """Tutorials teach ``import featurevis as fv`` and the names in ``fv.__all__``; an internal
    module they reach into could move without the tests of the API noticing."""
    nb = nbformat.read(path, as_version=4)
    source = "\n".join(_code(nb))
    for line in re.findall(r"^\s*(?:from|import)\s+featurevis\b.*$", source, flags=re.M):
        line = line.strip()
        m = re.fullmatch(r"from featurevis import (\w+)(?: as \w+)?", line)
        assert line == "import featurevis as fv" or (m and m.group(1) in fv.__all__) or line in EXTRA_IMPORTS, line
    used = set(re.findall(r"\bfv\.(\w+)", source))
    assert used and used <= set(fv.__all__), sorted(used - set(fv.__all__))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_executed_and_clean(path: Path):
    """The stored copy is what a reader sees on GitHub: run once top to bottom (execution counts
    1..N), with its pictures, and no errors, warnings or progress bars in the outputs."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert _images(nb)
    for c in code:
        for o in c.outputs:
            assert o.output_type in ("stream", "display_data", "execute_result"), (c.source, o.output_type)
            assert o.get("name") != "stderr", (c.source, o.get("text"))


def test_notebooks_are_small():
    total = sum(p.stat().st_size for p in NOTEBOOKS)
    assert total < MAX_TOTAL_BYTES, f"notebooks take {total:,} bytes; show fewer or smaller images"
