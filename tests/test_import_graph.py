"""jaxpriv's import graph has no cycle except the registries', and every module imports on its own
in a fresh interpreter.

The graph holds module-level and function-level imports (not ``if TYPE_CHECKING:`` ones). The
only edges allowed to close a cycle are the registries' loaders of their built-in entries:
``jaxpriv.methods._import_builtin`` (the protection methods register themselves with
``jaxpriv.methods``) and ``jaxpriv.recognizers.base._import_builtin`` (likewise the
recognizers)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "jaxpriv"
REGISTRY_LOADERS = {("jaxpriv.methods", "_import_builtin"),
                    ("jaxpriv.recognizers.base", "_import_builtin")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(tree: ast.AST, module: str, is_package: bool):
    """(imported jaxpriv module, enclosing function or None) for every import in ``tree``."""

    def resolve(name: str) -> str | None:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        return name or None

    def walk(node: ast.AST, func: str | None):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from walk(child, func or child.name)
                continue
            if isinstance(child, ast.Import):
                for alias in child.names:
                    if alias.name.startswith("jaxpriv"):
                        yield resolve(alias.name), func
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base.startswith("jaxpriv"):
                    for alias in child.names:
                        yield resolve(f"{base}.{alias.name}"), func
            yield from walk(child, func)

    yield from walk(tree, None)


def import_graph(skip: set[tuple[str, str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        for target, func in _imports(tree, name, path.name == "__init__.py"):
            if target and target != name and (name, func) not in skip:
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_walk_sees_the_registry_cycles():
    """The walk is not blind: with the registry loaders counted, their cycles show."""
    found = cycles(import_graph(skip=set()))
    assert any({"jaxpriv.methods", "jaxpriv.smna.method"} <= set(c) for c in found), found
    assert any({"jaxpriv.recognizers.base", "jaxpriv.recognizers.facenet"} <= set(c)
               for c in found), found


def test_no_import_cycle_except_registries():
    assert cycles(import_graph(skip=REGISTRY_LOADERS)) == []


def test_every_module_imports_in_a_fresh_interpreter():
    """Each module is imported first, in a child forked from an interpreter that has loaded the
    heavy third-party libraries but no jaxpriv module (a fresh jaxpriv import per module)."""
    script = textwrap.dedent(f"""
        import os, sys, traceback
        import numpy, jax, flax.linen, optax, cv2, PIL.Image
        assert not [m for m in sys.modules if m.startswith("jaxpriv")]
        failed = []
        for name in {sorted(MODULES)!r}:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                try:
                    __import__(name)
                    code = 0
                except BaseException:
                    os.write(w, traceback.format_exc().encode()[-2000:])
                    code = 1
                os._exit(code)
            os.close(w)
            with os.fdopen(r, "rb") as f:
                err = f.read().decode()
            if os.waitpid(pid, 0)[1]:
                failed.append(name + ": " + err)
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
