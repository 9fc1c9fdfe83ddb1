"""The folder layout is the architecture: imports only go down the layers, and no recipe imports
another recipe (what two recipes share belongs in core). Read from the source, not by importing."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "featurevis"

#: Each subpackage and the subpackages it may import (besides itself).
ALLOWED = {
    "core": set(),
    "zoo": {"core"},
    "recipes": {"core", "zoo"},
    "catalog": {"core", "zoo", "recipes"},
    "cli": {"core", "zoo", "recipes", "catalog"},
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for f in sorted(PACKAGE.rglob("*.py")):
        parts = f.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(("featurevis", *parts))
        out.append((name.removesuffix(".__init__"), f))
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Absolute names of the featurevis modules ``path`` imports (top level and inside functions)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {t for t in found if t.startswith("featurevis.")}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else None


MODULES = [(n, p) for n, p in _modules() if _layer(n)]


def test_every_module_sits_in_a_layer():
    top = [n for n, _ in _modules() if n.count(".") == 1 and not _layer(n)]
    assert set(top) <= {"featurevis.data"}, f"modules outside the layered folders: {top}"


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[n for n, _ in MODULES])
def test_imports_only_go_down(name, path):
    mine = _layer(name)
    bad = sorted(t for t in _imports(name, path) if _layer(t) and _layer(t) != mine and _layer(t) not in ALLOWED[mine])
    assert not bad, f"{name} ({mine}) imports {bad}"


@pytest.mark.parametrize(
    ("name", "path"), [(n, p) for n, p in MODULES if n.startswith("featurevis.recipes.")], ids=lambda v: str(v)[-30:]
)
def test_no_recipe_imports_another(name, path):
    others = sorted(t for t in _imports(name, path) if t.startswith("featurevis.recipes.") and t != name)
    assert not others, f"{name} imports the recipes {others}: move what they share into core"


def test_the_engine_knows_no_parameterization_or_recipe_by_name():
    engine = PACKAGE / "core" / "engine.py"
    imported = _imports("featurevis.core.engine", engine)
    assert not {t for t in imported if t.startswith(("featurevis.core.params.", "featurevis.recipes"))} - {
        "featurevis.core.params.Parameterization"
    }


def test_type_checkers_see_exactly_the_lazily_exported_names():
    """``featurevis/__init__`` imports its public names on first use; its ``if TYPE_CHECKING:``
    block must name the same modules and names, or IDEs and type checkers would show others."""
    import featurevis

    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    (block,) = [n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"]
    seen: dict[str, set[str]] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.level == 1
        seen.setdefault("." + (node.module or ""), set()).update(a.name for a in node.names)
    assert seen == {module: set(names) for module, names in featurevis._EXPORTS.items()}
    assert sorted(featurevis.__all__) == sorted(n for names in seen.values() for n in names)
