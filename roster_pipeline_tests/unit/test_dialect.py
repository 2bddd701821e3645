"""DuckDB and Postgres differ in one layer: dispatched macros for SQL, `warehouse/dialect.py` for Python.

The checks read the code itself (Jinja and Python syntax trees), so a new `{% if dialect %}` in a
model or a new `if sql.dialect == "postgres"` around SQL text fails here, with where it is.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

from roster_pipeline.modeling.project import SQL_DIR, SqlModel, SqlProject, sql_project
from roster_pipeline.warehouse import dialect

PACKAGE = Path(dialect.__file__).resolve().parents[1]
DIALECT_VALUES = set(dialect.DIALECTS)
DIALECT_NAMES = {"DUCKDB", "POSTGRES"}  # dialect.py's constants, should a branch spell them so

# Branches on the warehouse kind that choose *what* is done, not how SQL is spelled: each is an
# operation only one warehouse has (or needs), so it stays next to its reason. Path (under
# roster_pipeline/) and function → how many comparisons with "duckdb"/"postgres" it holds.
OPERATIONAL = {
    # Opening connections, transactions, the DuckDB file's turns and rewrite, the URL's scheme.
    ("settings.py", "warehouse_url"): 2,
    ("warehouse/connection.py", "Warehouse.kind"): 1,
    ("warehouse/connection.py", "Warehouse.display"): 1,
    ("warehouse/connection.py", "Warehouse.check_ready"): 1,
    ("warehouse/connection.py", "Warehouse.destination"): 1,
    ("warehouse/connection.py", "Warehouse.turn"): 1,
    ("warehouse/connection.py", "Warehouse.held_open"): 1,
    ("warehouse/connection.py", "Warehouse.district_claim"): 1,
    ("warehouse/connection.py", "Warehouse.connect"): 1,
    ("warehouse/connection.py", "Warehouse._open"): 1,
    ("warehouse/connection.py", "Warehouse.forget_district"): 1,
    ("warehouse/connection.py", "Warehouse.raw_row_counts"): 2,
    ("warehouse/connection.py", "Session.transaction"): 1,
    ("modeling/contract_check.py", "ibis_connection"): 1,
    ("modeling/contract_check.py", "raw"): 1,  # closing a Postgres cursor (DuckDB answers with its connection)
    # Postgres' planner upkeep: indexes, keys, ANALYZE, statistics, VACUUM (DuckDB needs none).
    ("modeling/runner.py", "build_model"): 5,
    ("modeling/rules.py", "write_rule_tables"): 1,
    ("modeling/prepared.py", "check_emails"): 1,
    ("modeling/contract_check.py", "check_contract"): 1,
    ("publishing/history.py", "prepare"): 1,
    ("publishing/history.py", "index_history_table"): 1,
    ("publishing/history.py", "stage_differences"): 1,
    ("publishing/identities.py", "prepare"): 1,
    ("publishing/identities.py", "_stage"): 1,
    ("warehouse/postgres_tables.py", "reclaim_space"): 1,
    ("engine/raw_load.py", "refresh"): 1,
    ("engine/raw_load.py", "tune_after_load"): 1,
    # publish_district: keys and indexes (2), statistics (1), grants (1), and the write itself (3):
    # Postgres writes only the rows that differ (MVCC keeps a dead copy of every rewritten row).
    ("publishing/publish.py", "publish_district"): 7,
    # Grants (Postgres roles).
    ("warehouse/grants.py", "setup_grants"): 1,
    ("cli/maintenance.py", "grants"): 1,
    # DuckDB: one writer process at a time, and the readers' copies of the file.
    ("cli/maintenance.py", "forget"): 1,
    ("cli/sandbox.py", "demo"): 1,
    ("cli/sync.py", "sync"): 1,
    ("definitions.py", "build_definitions"): 1,
    ("defs/automation/batch.py", "build_district_batch_job.sync_districts"): 1,
    ("defs/clever_raw/assets.py", "warehouse_pool"): 1,
    ("engine/roster.py", "build_roster"): 1,
}


# --- SQL: dispatched macros ------------------------------------------------------------------

def _templates() -> dict[Path, nodes.Template]:
    env = jinja2.Environment()
    return {path: env.parse(path.read_text(encoding="utf-8")) for path in sorted(SQL_DIR.rglob("*.sql"))}


def _macros() -> set[str]:
    return {m.name for path, tree in _templates().items() if path.parent.name == "macros"
            for m in tree.find_all(nodes.Macro)}


def _dispatched() -> dict[str, str]:
    """Name → the macro whose body calls `dispatch('name')`."""
    found = {}
    for path, tree in _templates().items():
        for macro in tree.find_all(nodes.Macro):
            for call in macro.find_all(nodes.Call):
                if isinstance(call.node, nodes.Name) and call.node.name == "dispatch":
                    literal = call.args and isinstance(call.args[0], nodes.Const)
                    assert literal, f"{path.name}: dispatch() takes the macro's name as a literal"
                    found[call.args[0].value] = macro.name
    return found


def test_every_dispatched_macro_has_both_implementations():
    macros, dispatched = _macros(), _dispatched()
    assert {"regex_match", "dedupe"} <= set(dispatched)  # the check reads what it should
    for name, caller in dispatched.items():
        assert caller == name, f"dispatch('{name}') belongs in the generic macro {name}, not in {caller}"
        missing = [f"{d}__{name}" for d in dialect.DIALECTS if f"{d}__{name}" not in macros]
        assert not missing, f"dispatch('{name}') has no {', '.join(missing)} in dbt_like_sql/macros/"
    for macro in macros:
        prefix, _, name = macro.partition("__")
        if prefix in DIALECT_VALUES:
            assert name in dispatched, f"{macro} is never dispatched: write the macro {name} calling dispatch('{name}')"


def test_no_model_or_macro_branches_on_the_warehouse():
    """Templates cannot see the dialect (StrictUndefined), and none mentions it: a difference is a
    pair of dispatched macros."""
    offenders = []
    for path, tree in _templates().items():
        names = {n.name for n in tree.find_all(nodes.Name)} & {"dialect", "target", "adapter"}
        consts = {c.value for c in tree.find_all(nodes.Const)} & DIALECT_VALUES
        if names or consts:
            offenders.append(f"{path.relative_to(SQL_DIR)}: {sorted(names | consts)}")
    assert not offenders, "write a duckdb__/postgres__ macro pair instead:\n" + "\n".join(offenders)


def test_dispatch_renders_the_dialects_own_macro():
    model = sql_project().models["int_teachers__classified"]
    duckdb, postgres = (sql_project().render(model, d).sql for d in dialect.DIALECTS)
    assert "regexp_matches(normalized.email, $teacher_email_pattern)" in duckdb
    assert "(normalized.email ~ %(teacher_email_pattern)s)" in postgres and "regexp_matches" not in postgres


def test_a_missing_implementation_is_named(tmp_path):
    (tmp_path / "macros").mkdir()
    (tmp_path / "macros" / "only.sql").write_text(
        "{% macro only(x) -%} {{ dispatch('only')(x) }} {%- endmacro %}\n"
        "{% macro duckdb__only(x) -%} d{{ x }} {%- endmacro %}\n")
    project = SqlProject(tmp_path)
    model = SqlModel("m", "marts", tmp_path / "m.sql", "select {{ only(1) }}")
    assert project.render(model, "duckdb").sql == "select d1"
    with pytest.raises(ValueError, match="no macro postgres__only"):
        project.render(model, "postgres")
    with pytest.raises(jinja2.UndefinedError):
        project.render(SqlModel("n", "marts", tmp_path / "n.sql", "{% if dialect %}x{% endif %}"), "duckdb")


# --- Python: warehouse/dialect.py --------------------------------------------------------------

def _is_dialect(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in DIALECT_VALUES
    if isinstance(node, (ast.Name, ast.Attribute)):
        return (node.id if isinstance(node, ast.Name) else node.attr) in DIALECT_NAMES
    return isinstance(node, (ast.Tuple, ast.List, ast.Set)) and any(_is_dialect(e) for e in node.elts)


def dialect_branches(package: Path = PACKAGE) -> Counter:
    """(path under the package, function) → its comparisons with a dialect, and dicts keyed by one."""
    found: Counter = Counter()

    def visit(node: ast.AST, where: str, scope: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                visit(child, where, [*scope, child.name])
                continue
            if (isinstance(child, ast.Compare) and any(map(_is_dialect, [child.left, *child.comparators]))) or (
                    isinstance(child, ast.Dict) and any(k is not None and _is_dialect(k) for k in child.keys)):
                found[(where, ".".join(scope) or "<module>")] += 1
            visit(child, where, scope)

    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package).as_posix()
        if where != "warehouse/dialect.py":
            visit(ast.parse(path.read_text(encoding="utf-8")), where, [])
    return found


def test_python_branches_on_the_dialect_only_for_operations_one_warehouse_has():
    found = dialect_branches()
    new = {k: n for k, n in (found - Counter(OPERATIONAL)).items()}
    gone = {k: n for k, n in (Counter(OPERATIONAL) - found).items()}
    assert not new, (f"new branches on the warehouse kind: {new}. SQL that differs belongs in "
                     "roster_pipeline/warehouse/dialect.py (or a dispatched macro); an operation only one "
                     "warehouse has goes into OPERATIONAL above, with its reason")
    assert not gone, f"OPERATIONAL lists branches that are gone (remove them from it): {gone}"


def test_the_scan_sees_every_spelling_of_a_branch(tmp_path):
    (tmp_path / "warehouse").mkdir()
    (tmp_path / "warehouse" / "dialect.py").write_text('def marker(d):\n    return "?" if d == "duckdb" else "%s"\n')
    (tmp_path / "m.py").write_text(
        "class C:\n    def f(self, sql):\n        return '?' if sql.dialect == 'duckdb' else '%s'\n"
        "def g(kind):\n    return kind in ('postgres',) or kind != DUCKDB or {'duckdb': 1, 'postgres': 2}[kind]\n")
    assert dialect_branches(tmp_path) == Counter({("m.py", "C.f"): 1, ("m.py", "g"): 3})


def test_the_dialect_fragments():
    assert [dialect.placeholder(d, "d") for d in dialect.DIALECTS] == ["$d", "%(d)s"]
    assert [dialect.positional_marker(d) for d in dialect.DIALECTS] == ["?", "%s"]
    assert dialect.bound_parameters("duckdb", "x = $a", {"a": 1, "b": 2}) == {"a": 1}
    assert dialect.bound_parameters("postgres", "x = %(a)s", {"a": 1, "b": 2}) == {"a": 1, "b": 2}
    assert dialect.create_work_table("postgres", "s.t", "select 1") == "create unlogged table s.t as select 1"
    assert dialect.support_functions("duckdb") == [] and len(dialect.support_functions("postgres")) == 2
    with pytest.raises(ValueError, match="unknown SQL dialect 'sqlite'"):
        dialect.regex_match("sqlite", "a", "b")
