"""The house rules of docs/dev/architecture.rst, checked on the source.

Only imports that run when a module is imported count (module-level
``import``/``from`` statements, including those inside ``if``/``try`` at
module level); imports inside functions are the "late imports in one named
place" the design allows.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "multilc"


def _module_name(path):
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top_level_imports(path):
    """Modules of the package imported at import time by *path*."""
    tree = ast.parse(path.read_text(), filename=str(path))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.startswith("multilc"))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - node.level + 1]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                if mod.startswith("multilc"):
                    found.add(mod)
                    for alias in node.names:
                        sub = f"{mod}.{alias.name}"
                        if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists() or \
                                (PACKAGE.parent / sub.replace(".", "/")).is_dir():
                            found.add(sub)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
                visit(getattr(node, "finalbody", []))
    visit(tree.body)
    found.discard(name)
    return found


MODULES = {_module_name(p): _top_level_imports(p) for p in PACKAGE.rglob("*.py")}


def _within(module, room):
    return module == room or module.startswith(room + ".")


@pytest.mark.parametrize("room, forbidden", [
    # the data model and the I/O registry never import the engine or plotting
    ("multilc.lightcurve", ("multilc.collect", "multilc.plotting", "multilc.archives",
                            "multilc.cli")),
    ("multilc.io", ("multilc.collect", "multilc.plotting", "multilc.archives",
                    "multilc.cli")),
    ("multilc.photometry", ("multilc.lightcurve", "multilc.collect", "multilc.io")),
    ("multilc.timescales", ("multilc.lightcurve", "multilc.collect", "multilc.io")),
    # the engine knows batches, not archives or catalogs
    ("multilc.collect", ("multilc.archives", "multilc.catalogs", "multilc.plotting",
                         "multilc.cli")),
    # the catalog room stands on astropy/pyarrow alone
    ("multilc.catalogs", ("multilc.collect", "multilc.archives", "multilc.lightcurve",
                          "multilc.io", "multilc.plotting", "multilc.cli")),
    ("multilc.plotting", ("multilc.collect", "multilc.archives", "multilc.cli")),
    ("multilc.samples", ("multilc.collect", "multilc.archives", "multilc.plotting",
                         "multilc.lightcurve", "multilc.cli")),
])
def test_rooms_import_only_downwards(room, forbidden):
    bad = sorted(f"{mod} -> {imp}" for mod, imports in MODULES.items()
                 if _within(mod, room) for imp in imports
                 if any(_within(imp, f) for f in forbidden))
    assert not bad, "imports against the design at import time:\n" + "\n".join(bad)


def test_no_import_cycles():
    """No circle of import-time imports between the package's modules."""
    graph = {m: {i for i in imports if i in MODULES and i != m}
             for m, imports in MODULES.items()}
    # a package's __init__ importing its own submodules is not a cycle of rooms
    for m in graph:
        graph[m] = {i for i in graph[m] if not _within(i, m)}
    seen, stack, cycles = {}, [], []

    def visit(node):
        seen[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == "open":
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = "done"

    for node in sorted(graph):
        if node not in seen:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
