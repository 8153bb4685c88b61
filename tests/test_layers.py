"""The layers, as far as the import-linter contracts (``.importlinter``, run by ``lint-imports`` in CI) cannot see.

* No private name (``_name``) is used across packages: not across top packages,
  not across ``aiops`` feature folders, and not out of an ``aiops`` kernel module.
* No function imports one of our modules: an import inside a function is never
  the way out of a cycle. A function may import only a heavy optional
  third-party package at the call (``LAZY_THIRD_PARTY``), and a package's
  ``__getattr__`` (PEP 562) may import what the package exports lazily.
* The module graph (every import, in functions too) has no cycle, package
  ``__init__`` modules included.
* What the contracts say a module never imports, it does not load at run time
  either (a package ``__init__`` that imports eagerly would hide it from them).
"""
from __future__ import annotations

import ast
import configparser
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Our top packages (plus the demo ``app`` module): the product code these checks read.
PACKAGES = ("telemetry", "aiops", "llm", "simulation")
OURS = frozenset(PACKAGES + ("app",))

#: The third-party packages a function may import at the call, and why they wait for it.
LAZY_THIRD_PARTY = {
    "openai": "the LLM client: an optional extra, imported only when a model is configured",
    "sklearn": "scikit-learn (replay models; the [replay] extra): heavy, only when used",
    "threadpoolctl": "comes with scikit-learn, beside the model it limits",
    "matplotlib": "replay plots: an optional extra, only when a PNG is drawn",
    "rich": "CLI output: AIOps(app) registers the commands without loading it",
    "yaml": "only for SLO files in YAML and runbook front matter",
    "requests": "telemetry.propagation instruments requests only when the app turns it on",
}
#: Our modules outside the packages, which a function may import at the call, and why. None since the demo
#: shop became ``simulation.shop`` (``app.py`` only runs it), so a function importing ``app`` is caught too.
CHECKOUT_ONLY: dict[str, str] = {}


@dataclass(frozen=True)
class Source:
    """One product module: its dotted name and syntax tree."""

    module: str
    tree: ast.Module
    is_package: bool = False
    path: str = ""

    @classmethod
    def parse(cls, module: str, text: str, is_package: bool = False, path: str = "") -> "Source":
        return cls(module, ast.parse(text), is_package, path or module)


def product_sources() -> list[Source]:
    """Every module of the packages, and ``app.py``."""
    sources = []
    for path in [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))] + [ROOT / "app.py"]:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        module = ".".join(parts[:-1] if is_package else parts)
        sources.append(Source.parse(module, path.read_text(encoding="utf-8"), is_package,
                                    str(path.relative_to(ROOT))))
    return sources


SOURCES = product_sources()
MODULES = {source.module for source in SOURCES}


def owner(module: str) -> str:
    """Who may use a private name of ``module``: its top package; in ``aiops``, its feature folder or
    kernel module (``aiops.slo``, ``aiops.registry``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "aiops" and len(parts) > 1 else parts[0]


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__")


def absolute(source: Source, node: ast.ImportFrom) -> str:
    """The module a ``from ... import`` reads from, relative imports resolved."""
    if node.level == 0:
        return node.module or ""
    package = source.module if source.is_package else source.module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def private_uses(source: Source) -> list[str]:
    """``from X import _name``, and ``name._attr`` on a name imported from X, where X belongs to another owner."""
    mine, bound, found = owner(source.module), {}, []
    for node in ast.walk(source.tree):
        if isinstance(node, ast.ImportFrom):
            base = absolute(source, node)
            if base.split(".")[0] not in OURS:
                continue
            for alias in node.names:
                if is_private(alias.name) and owner(base) != mine:
                    found.append(f"{source.path}:{node.lineno}: from {base} import {alias.name}")
                bound[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                if top in OURS:  # ``import a.b`` binds ``a``; ``import a.b as c`` binds ``c`` to ``a.b``
                    bound[alias.asname or top] = alias.name if alias.asname else top
    for node in ast.walk(source.tree):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            chain = dotted(node.value)
            head, _, rest = (chain or "").partition(".")
            if head in bound:
                target = bound[head] + (f".{rest}" if rest else "")
                if owner(target) != mine:
                    found.append(f"{source.path}:{node.lineno}: {target}.{node.attr}")
    return found


def function_imports(source: Source) -> list[tuple[ast.stmt, ast.AST]]:
    """(import statement, the outermost function around it) for every import inside a function."""
    found = []
    for function in ast.walk(source.tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found.append((node, function))
    seen, unique = set(), []
    for node, function in found:  # nested functions: keep the outermost, which ast.walk meets first
        if id(node) not in seen:
            seen.add(id(node))
            unique.append((node, function))
    return unique


def imported(source: Source, node: ast.stmt) -> list[str]:
    """The modules an import statement names (``from X import a`` names X)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return [absolute(source, node)]


def lazy_export(source: Source, function: ast.AST) -> bool:
    """A package's module-level ``__getattr__`` (PEP 562): the one place our own modules load on first use."""
    return source.is_package and function in source.tree.body and getattr(function, "name", "") == "__getattr__"


def function_import_problems(source: Source) -> list[str]:
    problems = []
    for node, function in function_imports(source):
        for module in imported(source, node):
            top = module.split(".")[0]
            where = f"{source.path}:{node.lineno}: {module} inside {function.name}()"
            if top in CHECKOUT_ONLY and not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            if top in OURS or (isinstance(node, ast.ImportFrom) and node.level):
                if not lazy_export(source, function):
                    problems.append(f"{where}: import our own modules at the top of the file")
            elif top not in LAZY_THIRD_PARTY:
                problems.append(f"{where}: not a heavy optional package, import it at the top of the file")
    return problems


def import_graph(sources: list[Source]) -> dict[str, set[str]]:
    """module -> the product modules it imports (anywhere in it: at the top or in a function)."""
    modules = {s.module for s in sources}

    def nearest(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for source in sources:
        edges = set()
        for node in ast.walk(source.tree):
            if isinstance(node, ast.Import):
                edges.update(nearest(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = absolute(source, node)
                for alias in node.names:
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else nearest(base))
        graph[source.module] = {m for m in edges if m is not None and m != source.module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def contract_sources(name: str) -> list[str]:
    """The source modules of a contract of ``.importlinter``."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config[f"importlinter:contract:{name}"]["source_modules"].split()


def loaded_at_import(modules: list[str], watched: tuple[str, ...]) -> list[str]:
    """Which of ``watched`` a fresh interpreter has loaded after importing ``modules`` (and every module
    of those that are packages)."""
    every = sorted({m for m in MODULES for wanted in modules if m == wanted or m.startswith(wanted + ".")})
    code = (f"import importlib, json, sys\nfor m in {every!r}:\n    importlib.import_module(m)\n"
            f"print(json.dumps([w for w in {list(watched)!r} if w in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# -- the product --------------------------------------------------------------------------------------


def test_no_private_name_is_used_across_packages_or_feature_folders():
    found = [line for source in SOURCES for line in private_uses(source)]
    assert not found, "make the name public, or move the code to its owner:\n" + "\n".join(found)


def test_no_function_imports_our_modules_and_only_optional_packages_wait_for_the_call():
    found = [line for source in SOURCES for line in function_import_problems(source)]
    assert not found, "\n".join(found)


def test_the_module_graph_has_no_cycle():
    assert cycles(import_graph(SOURCES)) == []


def test_the_modules_that_import_no_flask_do_not_load_it():
    assert loaded_at_import(contract_sources("no-flask"), ("flask", "werkzeug")) == []


def test_the_pure_modules_load_no_database_driver():
    assert loaded_at_import(contract_sources("pure"), ("sqlite3",)) == []


def test_every_feature_folder_is_in_the_contracts():
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    folders = sorted(p.parent.name for p in (ROOT / "aiops").glob("*/feature.py"))
    independent = sorted(m.removeprefix("aiops.") for m in config["importlinter:contract:features"]["modules"].split())
    layers = [line.strip() for line in config["importlinter:contract:aiops-layers"]["layers"].strip().splitlines()]
    feature_layer = next(line for line in layers if "analysis" in line.split(" : "))
    assert independent == folders
    assert sorted(feature_layer.split(" : ")) == folders


# -- the checks themselves catch what they look for ---------------------------------------------------


def test_private_names_of_another_owner_are_caught_and_own_ones_are_not():
    source = Source.parse("aiops.slo.api", """
from aiops.analysis.store import _rows
from aiops.slo.store import _mine
from . import _sibling
import telemetry.store as spans
from aiops import registry
spans._after_fork(None)
registry._helper()
_mine.x, spans.connect
""")
    assert private_uses(source) == [
        "aiops.slo.api:2: from aiops.analysis.store import _rows",
        "aiops.slo.api:7: telemetry.store._after_fork",
        "aiops.slo.api:8: aiops.registry._helper",
    ]


def test_function_imports_of_ours_and_of_light_packages_are_caught():
    source = Source.parse("aiops.x", """
def f():
    from aiops.stats import percentile
    import numpy
    import openai
    def g():
        from . import y
""")
    assert function_import_problems(source) == [
        "aiops.x:3: aiops.stats inside f(): import our own modules at the top of the file",
        "aiops.x:4: numpy inside f(): not a heavy optional package, import it at the top of the file",
        "aiops.x:7: aiops inside f(): import our own modules at the top of the file",
    ]
    package = Source.parse("aiops", "def __getattr__(name):\n    from aiops.extension import AIOps\n", True)
    assert function_import_problems(package) == []


def test_a_cycle_through_a_function_import_is_found():
    sources = [Source.parse("p", "", True), Source.parse("p.a", "from p import b\n"),
               Source.parse("p.b", "def f():\n    from p.c import x\n"), Source.parse("p.c", "import p.a\n"),
               Source.parse("p.d", "from p.a import thing\n")]
    assert import_graph(sources)["p.a"] == {"p.b"}
    assert cycles(import_graph(sources)) == [["p.a", "p.b", "p.c"]]


@pytest.mark.parametrize("name", ["no-flask", "pure"])
def test_the_runtime_check_sees_a_driver_a_module_loads(name):
    assert loaded_at_import(["telemetry.store"], ("sqlite3",)) == ["sqlite3"]
    assert contract_sources(name)
