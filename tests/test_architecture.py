"""The package's architecture, as the user guide draws it, holds in the code.

* ``docs/architecture_modules.csv`` (shown in the user guide's "Architecture" section)
  lists every module of the package with its layer; the test fails when a module is
  added, moved or removed without the table following.
* Data flows one way: a module imports only modules of its own layer or below
  (imports inside functions count too), and the import graph has no cycle.
* Every module imports on its own in a fresh interpreter, and ``import sklearn_music``
  pulls in none of the heavy dependencies.
"""

import ast
import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "sklearn_music"
TABLE = ROOT / "docs" / "architecture_modules.csv"


def _modules():
    """Map dotted module name -> source path for every module of the package."""
    found = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _lazy_names():
    """The package's lazily exported names -> defining module (``_LAZY`` in __init__)."""
    tree = ast.parse((PKG / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_LAZY":
            lazy = ast.literal_eval(node.value)
            return {name: f"sklearn_music.{mod}" for name, mod in lazy.items()}
    return {}


LAZY = _lazy_names()


def _targets(module, node, is_package):
    """Package modules that one import statement of ``module`` brings in."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "sklearn_music"]
    if node.level:  # relative import
        base = module.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source.split(".")[0] != "sklearn_music":
        return []
    out = []
    for alias in node.names:
        full = f"{source}.{alias.name}"
        if full in MODULES:
            out.append(full)
        elif source == "sklearn_music" and alias.name in LAZY:
            out.append(LAZY[alias.name])
        else:
            out.append(source)
    return out


def _import_graph():
    graph = {}
    for module, path in MODULES.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps.update(_targets(module, node, path.name == "__init__.py"))
        deps.discard(module)
        # a package's own __init__ is run by importing any of its modules: not an edge
        graph[module] = {d for d in deps if not module.startswith(d + ".")}
    return graph


def _layers():
    with open(TABLE, newline="") as fh:
        return {row["module"]: int(row["layer"]) for row in csv.DictReader(fh)}


def test_table_lists_every_module():
    table = set(_layers())
    assert table - set(MODULES) == set(), "modules in the docs table but not in the tree"
    assert set(MODULES) - table == set(), "modules in the tree but not in the docs table"


def test_imports_flow_downwards():
    layers = _layers()
    upward = [
        f"{m} (layer {layers[m]}) imports {d} (layer {layers[d]})"
        for m, deps in _import_graph().items()
        for d in sorted(deps)
        if d in layers and m in layers and layers[d] > layers[m]
    ]
    assert upward == []


def test_import_graph_has_no_cycle():
    graph = _import_graph()
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == [], " ; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_a_cycle():
    # the checker itself: a planted cycle through a lazy name is found
    tree = ast.parse("from sklearn_music import ConvEmbedder\nfrom . import io\n")
    found = [
        t for node in tree.body for t in _targets("sklearn_music.metrics", node, is_package=False)
    ]
    assert found == ["sklearn_music._embedder", "sklearn_music.io"]


_OPTIONAL = {"sklearn_music.serve", "sklearn_music.batch"}  # need their extra installed


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_alone(module):
    code = f"import importlib; importlib.import_module({module!r})"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode and module in _OPTIONAL and "ModuleNotFoundError" in proc.stderr:
        pytest.skip(f"{module}: optional dependency missing ({proc.stderr.splitlines()[-1]})")
    assert proc.returncode == 0, proc.stderr


def test_package_import_is_light():
    code = (
        "import sys, sklearn_music; "
        "heavy = [m for m in ('torch', 'skorch', 'pynndescent', 'librosa', 'dask') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_private_sklearn_names_come_through_the_compat_module():
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for path in MODULES.values()
        if path.name != "_sklearn_compat.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").split(".")[0] == "sklearn"
        and (
            any(part.startswith("_") for part in node.module.split("."))
            or any(a.name.startswith("_") for a in node.names)
        )
    ]
    assert offenders == []
