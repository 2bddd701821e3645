"""dbt-like SQL models: `dbt_like_sql/` → rendered SQL (Jinja2) → one district slice per build.

A model is one `.sql` file; its folder is its layer (staging, intermediate, marts). It names
other models with `{{ ref('model') }}`, raw tables with `{{ source('clever', 'table') }}` and the
district being built with `{{ district_id() }}` (a bound parameter, never pasted text).
`dbt_project.yml` makes the staging models views over every district (a model's own
`{{ config(materialized=...) }}` wins); every other model is a table holding one slice per district, rebuilt for one district at a time.

Shared SQL (the dedupe, the grade reason, and the few spots where DuckDB and Postgres disagree:
regex match, date parsing, JSON lists) lives in `dbt_like_sql/macros/` as Jinja macros that every
model calls by name, as in dbt. Where the warehouses disagree, a macro `name` is written twice, as
`duckdb__name` and `postgres__name`, and `name` itself is `{{ dispatch('name')(args) }}` (dbt's
`adapter.dispatch`): no model or macro branches on the warehouse itself.
"""

from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import jinja2
import yaml

from roster_pipeline.warehouse.connection import placeholder
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA, STAGING_SCHEMA


def _sql_dir() -> Path:
    """`dbt_like_sql/`: inside the installed package (the wheel ships it), else at the top of a checkout."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "dbt_like_sql"
    return packaged if packaged.is_dir() else package.parent / "dbt_like_sql"


SQL_DIR = _sql_dir()
LAYERS = ("staging", "intermediate", "marts")
RULE_TABLES = ("rules_grades", "rules_subject_names", "rules_subjects_kept", "rules_school_scope")
RAW_SOURCE = "clever"  # source('clever', ...): the raw tables dlt loads; any other source is written in Python
ACCESS_CLASSES = ("reader", "demographics")  # meta.access of a published table: see access_classes


@dataclass
class SqlModel:
    name: str
    layer: str
    path: Path
    text: str
    refs: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # raw Clever tables: source('clever', ...)
    prepared: list[str] = field(default_factory=list)  # tables the roster step writes in Python before the models
    materialized: str = "table"

    @property
    def schema(self) -> str:
        return STAGING_SCHEMA if self.materialized == "view" else BUILD_SCHEMA

    @property
    def relation(self) -> str:
        return f"{self.schema}.{self.name}"


_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster to parse


@dataclass(frozen=True)
class DataTest:
    """One dbt `data_tests` entry: `not_null`, or `{accepted_values: {values: [...]}}`."""

    name: str
    args: dict = field(default_factory=dict, hash=False)


def data_tests(entries: list | None) -> list[DataTest]:
    """dbt's spellings of a test list: a bare name, or a name with its arguments (since dbt 1.10
    optionally nested under `arguments:`, next to `config:`, which only dbt reads)."""
    tests = []
    for entry in entries or []:
        if isinstance(entry, str):
            tests.append(DataTest(entry))
            continue
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"a data test is a name or {{name: {{arguments}}}}, not {entry!r}")
        ((name, args),) = entry.items()
        args = dict(args or {})
        args.pop("config", None)
        tests.append(DataTest(name, dict(args.get("arguments") or {}) if "arguments" in args else args))
    return tests


def ref_name(text: str) -> str:
    """`ref('schools')` → `schools` (a `relationships` test's `to:`)."""
    found = re.fullmatch(r"\s*ref\(\s*['\"](\w+)['\"]\s*\)\s*", str(text))
    if not found:
        raise ValueError(f"a relationships test names its table as ref('name'), not {text!r}")
    return found.group(1)


def seed_of(test: DataTest) -> str | None:
    """The seed a `relationships` test refers to (`ref('reason_codes')`), if it is one."""
    name = ref_name(test.args["to"])
    return name if (SQL_DIR / "seeds" / f"{name}.csv").is_file() else None


def described(test: DataTest, grade_range: tuple[int, int] | None = None) -> str:
    """One yml data test of a column in words (the dictionary's `checks` cell, Dagster's column constraints)."""
    args = test.args
    if test.name == "accepted_values":
        return "one of " + ", ".join(f"`{v}`" for v in args["values"])
    if test.name == "matches":
        return f"matches `{args['pattern']}`"
    if test.name == "relationships":
        seed = seed_of(test)
        return f"a `{args['field']}` of `seeds/{seed}.csv`" if seed else f"in `{ref_name(args['to'])}.{args['field']}`"
    if test.name == "roster_grade_in_range":
        default = f" ({grade_range[0]}..{grade_range[1]} by default)" if grade_range else ""
        return f"in the rules profile's grade range{default}"
    return test.name.replace("_", " ")


@dataclass(frozen=True)
class RenderedSql:
    sql: str
    parameters: tuple[str, ...]  # names of the bound parameters the statement uses


class SqlProject:
    """Every model of `dbt_like_sql/`, their documentation, and rendering for one dialect."""

    def __init__(self, sql_dir: Path = SQL_DIR) -> None:
        self.sql_dir = sql_dir
        self.env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

    def folder_config(self, layer: str) -> dict:
        """A folder's settings from `dbt_project.yml` (`+materialized`), as dbt reads them."""
        project = yaml.safe_load((self.sql_dir / "dbt_project.yml").read_text(encoding="utf-8"))
        return (project.get("models") or {}).get(project["name"], {}).get(layer) or {}

    @cached_property
    def models(self) -> dict[str, SqlModel]:
        models: dict[str, SqlModel] = {}
        for layer in LAYERS:
            for path in sorted((self.sql_dir / layer).glob("*.sql")):
                if path.stem in models:
                    raise ValueError(f"two SQL models are named {path.stem}")
                model = SqlModel(path.stem, layer, path, path.read_text(encoding="utf-8"),
                                 materialized=self.folder_config(layer).get("+materialized", "table"))
                self._inspect(model)
                models[model.name] = model
        for model in models.values():
            unknown = [r for r in model.refs if r not in models and r not in RULE_TABLES]
            if unknown:
                raise ValueError(f"{model.path.name} refers to unknown models {unknown}")
            if model.materialized == "view" and "district_id()" in model.text:
                raise ValueError(f"{model.path.name} is a view and cannot depend on the district being built")
        return models

    @cached_property
    def _yml(self) -> list[tuple[Path, dict]]:
        """Every `<layer>/*.yml` (`_staging.yml`, `_sources.yml`, ...), split by layer as dbt projects do."""
        paths = [p for layer in LAYERS for p in sorted((self.sql_dir / layer).glob("*.yml"))]
        return [(p, yaml.load(p.read_text(encoding="utf-8"), Loader=_YamlLoader) or {}) for p in paths]

    @cached_property
    def docs(self) -> dict[str, dict]:
        """model → {description, columns: {name: {name, data_type, description, data_tests}}, data_tests,
        key, indexes, meta}, from the layers' yml files.

        `data_tests` (a column's and the model's) are `DataTest`s: the blocking checks of a mart
        (contracts.py builds its pandera contract from them). `key` is the dbt-style `constraints`
        entry (type primary_key or unique, and its columns); `indexes` the dbt-postgres
        `config.indexes` column lists. Postgres gets both (see postgres_tables.py); DuckDB needs
        neither, its zone maps serve the district filters. `changed_rows` (`config.changed_rows`)
        names the rows an incremental build replaces (see incremental.py); a table without it is
        rebuilt whole.
        """
        docs: dict[str, dict] = {}
        for path, content in self._yml:
            for m in content.get("models") or []:
                if m["name"] in docs:
                    raise ValueError(f"{path.name}: model {m['name']} is documented twice")
                keys = [c for c in m.get("constraints", []) if c.get("type") in ("primary_key", "unique")]
                docs[m["name"]] = {
                    "description": m.get("description", "").strip(),
                    "columns": {c["name"]: {**c, "data_tests": data_tests(c.get("data_tests"))}
                                for c in m.get("columns", [])},
                    "data_tests": data_tests(m.get("data_tests")),
                    "key": (keys[0]["type"], tuple(keys[0]["columns"])) if keys else None,
                    "indexes": [tuple(i["columns"]) for i in (m.get("config") or {}).get("indexes", [])],
                    "changed_rows": (m.get("config") or {}).get("changed_rows"),
                    "meta": m.get("meta") or {},
                }
        return docs

    @cached_property
    def sources(self) -> dict[str, dict[str, dict]]:
        """The raw tables as dbt `sources` (`staging/_sources.yml`): source → table → {description,
        columns: {name: {name, data_type, description}}}; `{{ source('clever', 'students') }}` reads one."""
        sources: dict[str, dict[str, dict]] = {}
        for _path, content in self._yml:
            for s in content.get("sources") or []:
                sources[s["name"]] = {t["name"]: {"description": t.get("description", "").strip(),
                                                  "columns": {c["name"]: c for c in t.get("columns", [])}}
                                      for t in s.get("tables", [])}
        return sources

    @cached_property
    def source_tables(self) -> dict[str, dict[str, dict]]:
        """Source → its `schema` and, per table, its `meta` (a table written by the roster step names
        the asset that writes it in `meta.dagster.asset_key`, as dagster-dbt reads a source's asset key)."""
        found: dict[str, dict[str, dict]] = {}
        for _path, content in self._yml:
            for s in content.get("sources") or []:
                found[s["name"]] = {"schema": s.get("schema", s["name"]),
                                    "meta": {t["name"]: t.get("meta") or {} for t in s.get("tables", [])}}
        return found

    def source_relation(self, source_name: str, table: str) -> str:
        """`{{ source('pipeline', 'invalid_emails') }}` → `roster_build.invalid_emails` (the source's yml schema)."""
        declared = self.source_tables.get(source_name)
        if declared is None or table not in declared["meta"]:
            raise ValueError(f"source('{source_name}', '{table}') is not declared in staging/_sources.yml")
        return f"{declared['schema']}.{table}"

    @cached_property
    def access_classes(self) -> dict[str, str]:
        """Published table → who may read it (`meta.access` in the marts' yml): `reader` or `demographics`.

        A table with history passes its class to `<table>_history`; the publish step's own tables
        are listed under `published_tables`. Grants and the DuckDB copies give a table only to its
        class, so a table missing here is readable by nobody (an allow-list, not a deny-list).
        """
        classes: dict[str, str] = {}
        for path, content in self._yml:
            entries = [(m, m.get("meta") or {}) for m in content.get("models") or [] if m["name"] in self.models
                       and self.models[m["name"]].layer == "marts"]
            entries += [(t, t.get("meta") or {}) for t in content.get("published_tables") or []]
            for entry, meta in entries:
                access = meta.get("access")
                if access not in ACCESS_CLASSES:
                    raise ValueError(f"{path.name}: {entry['name']} needs meta.access, one of {', '.join(ACCESS_CLASSES)}")
                classes[entry["name"]] = access
                if meta.get("history") is not None:
                    classes[f"{entry['name']}_history"] = access
        return classes

    def build_order(self) -> list[SqlModel]:
        """Every model after the models it refers to (rule tables are written before any model)."""
        graph = {name: [r for r in model.refs if r in self.models] for name, model in self.models.items()}
        return [self.models[name] for name in graphlib.TopologicalSorter(graph).static_order()]

    def marts(self) -> list[SqlModel]:
        return [m for m in self.models.values() if m.layer == "marts"]

    def _inspect(self, model: SqlModel) -> None:
        """Render once with recording callables to learn refs, sources and config."""

        def config(**options) -> str:
            model.materialized = options.get("materialized", model.materialized)
            return ""

        def ref(name: str) -> str:
            model.refs.append(name)
            return name

        def source(source_name: str, table: str) -> str:
            self.source_relation(source_name, table)  # declared, or the project does not load
            (model.sources if source_name == RAW_SOURCE else model.prepared).append(table)
            return table

        # Rendered both ways: a macro may read a source only in an incremental build (`changed()`).
        for incremental in (False, True):
            self.env.from_string(model.text).render(config=config, ref=ref,
                                                    **self._globals("duckdb", [], incremental, source))
        model.refs[:] = list(dict.fromkeys(model.refs))
        model.sources[:] = list(dict.fromkeys(model.sources))
        model.prepared[:] = list(dict.fromkeys(model.prepared))

    def render(self, model: SqlModel, dialect: str, incremental: bool = False) -> RenderedSql:
        """The model's SQL for DuckDB or Postgres, with parameters as named placeholders.

        `incremental`: rendered for an incremental build (`is_incremental()` is true, and the
        `changed()` conditions restrict the model's inputs to the records that changed).
        """
        return self._render(model.text, dialect, incremental)

    def changed_rows(self, model: SqlModel | str) -> dict | None:
        """The model's `config.changed_rows` (which rows an incremental build replaces; see
        incremental.py), or None: the model is rebuilt whole."""
        if isinstance(model, SqlModel) and model.materialized == "view":
            return None
        return self.docs.get(getattr(model, "name", model), {}).get("changed_rows")

    def _render(self, text: str, dialect: str, incremental: bool) -> RenderedSql:
        used: list[str] = []
        models = self.models

        def ref(name: str) -> str:
            return f"{BUILD_SCHEMA}.{name}" if name in RULE_TABLES else models[name].relation

        text = self._template(text).render(
            config=lambda **_: "", ref=ref, **self._globals(dialect, used, incremental, self.source_relation))
        return RenderedSql(text, tuple(dict.fromkeys(used)))

    def _template(self, text: str) -> jinja2.Template:
        """A model's compiled template, compiled once per process (each compile costs ~5 ms; a
        sync renders about 30 models)."""
        if text not in self._templates:
            self._templates[text] = self.env.from_string(text)
        return self._templates[text]

    @cached_property
    def _templates(self) -> dict[str, jinja2.Template]:
        return {}

    @cached_property
    def macros(self) -> jinja2.Template:
        """`macros/*.sql`: Jinja macros every model can call by name, as in dbt. Read as one
        template, so that a macro may call a macro of another file."""
        return self.env.from_string("\n".join(path.read_text(encoding="utf-8")
                                              for path in sorted((self.sql_dir / "macros").glob("*.sql"))))

    def _globals(self, dialect: str, used: list[str], incremental: bool = False, source=None) -> dict:
        """The macros and builtins a model renders with; `source` reaches the macros too (a macro
        reading a pipeline table names it with `source()`, so lineage sees it)."""
        builtins = _builtins(dialect, used, incremental) | {"source": source or self.source_relation}
        module = self.macros.make_module(builtins)
        macros = {name: value for name, value in vars(module).items() if isinstance(value, jinja2.runtime.Macro)}
        return {**macros, **builtins}


def _builtins(dialect: str, used: list[str], incremental: bool = False) -> dict:
    """What every model and macro may call besides the macros: `dispatch` (the dialect's version of
    a macro), bound parameters (recorded in `used`), the district being built, and whether the
    build is incremental (dbt's `is_incremental()`). The dialect itself is not given: a template
    that could test it would grow the scattered branches `dispatch` exists to avoid."""

    def param(name: str) -> str:
        used.append(name)
        return placeholder(dialect, name)

    @jinja2.pass_context
    def dispatch(context: jinja2.runtime.Context, name: str):
        """`dispatch('regex_match')` → the macro `duckdb__regex_match` or `postgres__regex_match`."""
        found = context.resolve_or_missing(f"{dialect}__{name}")
        if found is jinja2.utils.missing:
            raise ValueError(f"dispatch('{name}'): dbt_like_sql/macros/ has no macro {dialect}__{name}")
        return found

    return {"dispatch": dispatch, "param": param, "district_id": lambda: param("district_id"),
            "is_incremental": lambda: incremental}


@cache
def sql_project() -> SqlProject:
    """The project of `dbt_like_sql/`, its files read once per process (never mutate it)."""
    return SqlProject()
