"""The house rules, read from the code with ``ast``: imports only go down the layers below, no import
circles, only the engines touch engines, and nothing reaches into another object's private attributes.

Every import counts, including those inside functions (a lazy import that runs back up is still an
upward import). A failure names the file, the line and the import.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpt4all_magic"

# Lowest first. A module may import from lower layers and from its own component; components that share
# a layer are independent of each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "text"),
    ("options", "prompts", "render", "structured", "system", "frames", "lock"),
    ("engines",),
    ("models", "results"),
    ("manager",),
    ("docs", "embeddings"),
    ("api", "speed"),  # speed: llama-bench-style measurements through the manager (cached in models.speeds)
    ("batch", "conversation"),
    ("magics",),
    ("bench",),
    ("__main__", "__init__"),  # the command line and the lazy public API
)
RANK = {component: rank for rank, names in enumerate(LAYERS) for component in names}
# Outside the engines, only these may import an engine's own modules (the rest use engines.base): the
# manager makes the default engine, connect makes a server engine, and the benchmarks time engines
# against raw llama-cpp-python.
ENGINE_MAKERS = ("manager", "api", "bench")


@dataclass(frozen=True)
class Import:
    source: str  # the importing module, dotted (gpt4all_magic.models.download)
    target: str  # the imported module, dotted
    line: int

    def where(self) -> str:
        path = self.source.replace(".", "/")
        return f"{path}{'/__init__' if _is_package(self.source) else ''}.py:{self.line} imports {self.target}"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(source: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The package modules an import statement loads (its submodule when it names one)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "gpt4all_magic"]
    if node.level:
        base = source.split(".") if _is_package(source) else source.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    if module.split(".")[0] != "gpt4all_magic":
        return []
    targets = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in MODULES]
    return targets or [module]


def _imports() -> list[Import]:
    found = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found += [Import(name, target, node.lineno) for target in _resolve(name, node)]
    return found


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layering_problems(imports: list[Import]) -> list[str]:
    problems = []
    for imp in imports:
        a, b = _component(imp.source), _component(imp.target)
        if a == b:
            continue
        if b not in RANK or a not in RANK:
            problems.append(f"{imp.where()}: {a if a not in RANK else b} is in no layer; add it to LAYERS")
        elif RANK[b] >= RANK[a]:
            how = "up" if RANK[b] > RANK[a] else "sideways (same layer)"
            problems.append(f"{imp.where()}: {a} (layer {RANK[a]}) imports {how} into {b} (layer {RANK[b]})")
    return problems


def circles(imports: list[Import]) -> list[list[Import]]:
    """Import circles between modules (each as the imports that close it)."""
    edges: dict[str, list[Import]] = {}
    for imp in imports:
        if imp.source != imp.target:
            edges.setdefault(imp.source, []).append(imp)
    found, state = [], {}
    stack: list[Import] = []

    def visit(module: str) -> None:
        state[module] = "open"
        for imp in edges.get(module, []):
            if state.get(imp.target) == "open":
                start = next(i for i, s in enumerate(stack) if s.source == imp.target) if stack else 0
                found.append(stack[start:] + [imp])
            elif imp.target not in state:
                stack.append(imp)
                visit(imp.target)
                stack.pop()
        state[module] = "done"

    for module in sorted(MODULES):
        if module not in state:
            visit(module)
    return found


def test_every_module_is_in_a_layer():
    missing = sorted({_component(m) for m in MODULES} - set(RANK))
    assert not missing, f"components in no layer: {missing}; add them to LAYERS in {Path(__file__).name}"


def test_imports_only_go_down():
    problems = layering_problems(_imports())
    assert not problems, "\n".join(problems)


def test_no_import_circles():
    found = circles(_imports())
    assert not found, "\n".join(" -> ".join(i.where() for i in circle) for circle in found)


def test_the_checks_fail_on_an_upward_import_and_a_circle():
    """The rules are not vacuous: an import from the manager up into batch, and a circle, are both named."""
    up = Import("gpt4all_magic.manager", "gpt4all_magic.batch.generate", 7)
    assert layering_problems([up]) == [
        "gpt4all_magic/manager.py:7 imports gpt4all_magic.batch.generate: manager (layer 4) imports up into "
        "batch (layer 7)"]
    back = Import("gpt4all_magic.engines.llama.batchctx", "gpt4all_magic.engines.llama.model", 3)
    found = circles(_imports() + [back])
    assert any(back in circle for circle in found)
    assert any("engines/llama/model.py" in i.where() for circle in found for i in circle)


def test_only_the_engines_and_their_makers_import_engine_modules():
    problems = [imp.where() for imp in _imports()
                if _component(imp.target) == "engines" and imp.target not in ("gpt4all_magic.engines",
                                                                               "gpt4all_magic.engines.base")
                and _component(imp.source) not in ("engines", *ENGINE_MAKERS)]
    assert not problems, "reach engines through the manager:\n" + "\n".join(problems)


def test_engines_do_not_import_each_other():
    def engine(module: str) -> str:
        parts = module.split(".")
        return parts[2] if len(parts) > 2 and parts[1] == "engines" else ""

    problems = [imp.where() for imp in _imports()
                if engine(imp.source) and engine(imp.target) not in ("", "base", engine(imp.source))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _component(m) != "engines"))
def test_no_private_attributes_of_other_objects(module):
    """Outside the engines, code uses other objects' public surface only (``self._x`` is fine)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
             and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))]
    assert not found, f"{module}: " + "; ".join(found)
