"""Dependencies point one way (ARCHITECTURE.md), read from every import statement in the package.

settings → clever → warehouse → modeling → publishing → reports → operations → engine: each layer may import the ones
before it, never after. The sandbox stands alone (Clever's constants at most). Only `defs/`,
`cli/` and `definitions.py` import Dagster, and only they (and `definitions.py`) may import `defs/`.
Function-level imports count too: a lazy import is still a dependency, and a circle through one
is still a circle.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "roster_pipeline"
LAYERS = ["settings", "clever", "warehouse", "modeling", "publishing", "reports", "operations", "engine"]
MAY_IMPORT = {
    **{layer: set(LAYERS[: i + 1]) for i, layer in enumerate(LAYERS)},
    "sandbox": {"sandbox", "clever", "settings"},
    "defs": {*LAYERS, "defs"},
    "definitions": {*LAYERS, "defs"},
    "cli": {*LAYERS, "sandbox", "defs", "definitions", "cli"},
}
DAGSTER_ALLOWED = {"defs", "definitions", "cli"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file (absolute imports only)."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            named.add(node.module)
            named.update(f"{node.module}.{alias.name}" for alias in node.names)
    return named


def area(module: str) -> str:
    """The layer or folder a module belongs to: `roster_pipeline.modeling.rules` → `modeling`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "package"


MODULES = modules()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "roster_pipeline"))
def test_a_module_imports_only_the_layers_before_it(module):
    mine = area(module)
    assert mine in MAY_IMPORT, f"{module}: a new top-level folder; give it a place in ARCHITECTURE.md and here"
    ours = {name for name in imports(MODULES[module]) if name in MODULES and name != "roster_pipeline"}
    wrong = sorted(name for name in ours if area(name) not in MAY_IMPORT[mine])
    assert not wrong, f"{module} ({mine}) may import only {sorted(MAY_IMPORT[mine])}, but imports {wrong}"
    if mine not in DAGSTER_ALLOWED:
        dagster = sorted(name for name in imports(MODULES[module]) if name.split(".")[0].startswith("dagster"))
        assert not dagster, f"{module} imports {dagster}: only defs/, cli/ and definitions.py may import Dagster"


def test_no_module_imports_itself_through_a_circle():
    graph = {module: {name for name in imports(path) if name in MODULES and name not in (module, "roster_pipeline")}
             for module, path in MODULES.items()}
    # A package's own __init__ being imported on the way to its modules is not a circle.
    graph = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as circle:
        pytest.fail(f"import circle: {' → '.join(circle.args[1])}")


def test_the_rule_sees_a_wrong_import(tmp_path):
    """The checker itself: a warehouse module importing the modeling layer and Dagster is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from roster_pipeline.modeling.rules import RulesProfile\n\ndef f():\n    import dagster\n")
    named = imports(bad)
    assert "roster_pipeline.modeling.rules" in named and "dagster" in named
    assert area("roster_pipeline.modeling.rules") not in MAY_IMPORT["warehouse"]
