"""Run one table's pandera contract on one district's build slice, inside the warehouse.

A failure is reported by the ids of the failing records (the table's key), the column, the
check and pandera's reason code, never by the failing values: check results land in Dagster's
event log, which everyone with the UI can read, while the values are student and staff data
that only the warehouse's roles may show. pandera's own failure cases are those values (and
its row index is a position, not a key), so each failing check is run again as a query that
selects the failing rows' keys in the warehouse.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import ibis
import numpy
import pandera.errors
from pandera.api.checks import Check
from pandera.api.ibis.components import Column
from pandera.api.ibis.types import IbisData
from pandera.backends.ibis.checks import IbisCheckBackend
from pandera.config import ValidationDepth, config_context
from pandera.constants import CHECK_OUTPUT_KEY

from roster_pipeline.modeling.contracts import contract_for
from roster_pipeline.modeling.incremental import AFFECTED_TABLE, changed_filter
from roster_pipeline.modeling.record_keys import RECORD_KEYS, record_id
from roster_pipeline.modeling.rules import DistrictRules
from roster_pipeline.warehouse.connection import POSTGRES_WORK_MEM, Warehouse
from roster_pipeline.warehouse.schemas import BUILD_SCHEMA

IDS_SHOWN = 10


@dataclass(frozen=True)
class ContractFailure:
    """One failing check: where, which, why and which records, without the values."""

    column: str  # a column, the columns of a uniqueness rule joined by ", ", or "(table)"
    check: str
    reason: str  # pandera's reason code: DATAFRAME_CHECK, SERIES_CONTAINS_NULLS, DUPLICATES, ...
    rows: int | None = None  # failing rows; None for a failure that is not about rows (a type, a column)
    record_ids: tuple[str, ...] = ()  # the first IDS_SHOWN failing records' keys


@dataclass(frozen=True)
class ContractResult:
    table: str
    rows_checked: int
    failures: tuple[ContractFailure, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failure_count(self) -> int:
        return sum(f.rows or 1 for f in self.failures)

    @property
    def failures_markdown(self) -> str:
        """The failing checks with the failing records' ids, for the UI."""
        key = ":".join(RECORD_KEYS.get(self.table, ("key",)))

        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")

        lines = [f"| column | check | reason | failing rows | record ids ({key}) |", "| --- | --- | --- | ---: | --- |"]
        for f in self.failures:
            ids = ", ".join(f.record_ids) + (" …" if f.rows and f.rows > len(f.record_ids) else "")
            lines.append(f"| {cell(f.column)} | {cell(f.check)} | {f.reason} | "
                         f"{'' if f.rows is None else f.rows} | {cell(ids)} |")
        return "\n".join(lines)


@contextmanager
def ibis_connection(warehouse: Warehouse) -> Iterator:
    """An Ibis backend on the warehouse, so pandera's checks run as the warehouse's own queries."""
    if warehouse.kind == "duckdb":
        with warehouse.connect() as conn:
            yield ibis.duckdb.from_connection(conn)
        return
    parts = urlsplit(warehouse.url)
    backend = ibis.connect(urlunsplit(("postgres", *parts[1:])))
    backend.raw_sql(f"set work_mem = '{POSTGRES_WORK_MEM}'")  # hashed foreign-key lookups (see warehouse.py)
    try:
        yield backend
    finally:
        backend.disconnect()


def check_contract(backend, table: str, district_id: str, rules: DistrictRules,
                   changed: dict | None = None) -> ContractResult:
    """Validate the district's rows of `roster_build.<table>`; failures are returned, not raised.

    `changed` (an incremental build's `config.changed_rows`): only the rows the build
    replaced are validated. Rows it did not touch passed when they were published, and the
    table-wide rules still hold over the changed ones: a key or email that must be unique
    belongs to records that change together, and a foreign key is looked up in the whole
    referenced slice.
    """

    def district_slice(name: str):
        return backend.table(name, database=BUILD_SCHEMA).filter(lambda t: t.district_id == district_id)

    rows = district_slice(table)
    if changed is not None:
        # The changed rows are written to a temporary table once: each of pandera's checks (a
        # query each) then reads those few rows instead of re-finding them in the whole slice.
        temporary = f"changed_{table}"
        query = backend.compile(changed_filter(rows, district_slice(AFFECTED_TABLE), changed))
        for statement in (f"drop table if exists {temporary}", f"create temporary table {temporary} as {query}",
                          *([f"analyze {temporary}"] if backend.name == "postgres" else [])):
            raw(backend, statement)  # (Postgres never analyzes a temporary table by itself)
        rows = backend.table(temporary)
    schema = contract_for(table, rules, district_slice)
    fits = schema_fits(rows, schema)
    if fits:
        key = (backend.name, table, district_id, changed is not None, repr(rules))
        if key not in _VERDICTS:
            _VERDICTS[key] = verdict_queries(backend, rows, schema)
        checked, answers = answered(backend, _VERDICTS[key])
    else:
        checked, answers = int(rows.count().execute()), []
    if changed is not None and not checked:
        return ContractResult(table, 0)  # no row changed; the columns and types are those last published
    if fits and (not checked or all_true(answers)):  # an empty slice has no values to check, only columns and types
        return ContractResult(table, checked)
    # pandera's Ibis backend reports "not nullable" failures on an empty table (its any() of no
    # rows is NULL); an empty slice has no values to check, so only its columns and types are.
    depth = ValidationDepth.SCHEMA_AND_DATA if checked else ValidationDepth.SCHEMA_ONLY
    try:
        with config_context(validation_depth=depth):
            schema.validate(rows, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        keys = [k for k in RECORD_KEYS.get(table, ()) if k in rows.columns]
        failures = [f for error in errors.schema_errors for f in describe(rows, schema, error, keys)]
        return ContractResult(table, checked, tuple(failures))
    return ContractResult(table, checked)


# The verdicts' SQL per table, district, kind of build and rules, compiled once per process:
# compiling ~120 Ibis expressions cost more than running them on a small district, and their
# SQL changes only with the rules or the code (a process syncing a district again reuses it).
_VERDICTS: dict[tuple, tuple[str, ...]] = {}


def passes(rows, schema, depth: ValidationDepth) -> bool:
    """True when pandera would pass the rows, asked in a few queries; False means "ask pandera"."""
    if not schema_fits(rows, schema):
        return False
    if depth == ValidationDepth.SCHEMA_ONLY:
        return True
    backend = rows.get_backend()
    return all_true(answered(backend, verdict_queries(backend, rows, schema))[1])


def schema_fits(rows, schema) -> bool:
    """The columns and types, by pandera's own schema-only validation (it runs no query)."""
    try:
        with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
            schema.validate(rows, lazy=True)
    except pandera.errors.SchemaErrors:
        return False
    return True


def verdict_queries(backend, rows, schema) -> tuple[str, ...]:
    """pandera's verdicts on the rows as SQL: first one aggregate of the row count and every verdict
    of the rows alone, then one query per verdict that reads another relation.

    pandera's Ibis backend compiles and runs one query per check: about 120 per district. These
    are the same `check_passed` expressions its backend executes (nullability, every column and
    table check), reduced together; only what reads another relation (a uniqueness window, a
    check that returns a table) is a query of its own.
    """
    verdicts = [rows[name].notnull().all() for name, column in schema.columns.items() if not column.nullable]
    verdicts += [check(rows, name).check_passed for name, column in schema.columns.items() for check in column.checks]
    verdicts += [check(rows).check_passed for check in schema.checks]
    separate = [~rows.select(duplicated=ibis._.count().over(group_by=list(s)) > 1).duplicated.any()
                for s in unique_subsets(schema)]
    of_rows_alone = frozenset({rows.op()})
    batched = [v for v in verdicts if v.op().relations == of_rows_alone]
    separate += [v for v in verdicts if v.op().relations != of_rows_alone]
    together = rows.aggregate(rows_checked=rows.count(), **{f"v{i}": v for i, v in enumerate(batched)})
    return tuple(str(backend.compile(expression)) for expression in (together, *separate))


def answered(backend, queries: tuple[str, ...]) -> tuple[int, list]:
    """The row count and every verdict the queries answer."""
    rows = [raw(backend, query)[0] for query in queries]
    return int(rows[0][0]), [*rows[0][1:], *(row[0] for row in rows[1:])]


def raw(backend, statement: str) -> list[tuple]:
    """Run one statement on the Ibis backend's connection; its rows, fetched to the end (DuckDB keeps
    a result open until then)."""
    result = backend.raw_sql(statement)
    try:
        return [tuple(row) for row in result.fetchall()] if result.description else []
    finally:
        if backend.name == "postgres":  # a cursor there; DuckDB's answer is its connection itself
            result.close()


def all_true(answers: list) -> bool:
    # An answer may be NULL (bool_and of no non-NULL value): anything but a true boolean asks pandera.
    return all(isinstance(answer, (bool, numpy.bool_)) and bool(answer) for answer in answers)


def unique_subsets(schema) -> list[list[str]]:
    """The column lists a contract's `unique` makes unique: pandera takes one list or a list of lists."""
    if not schema.unique:
        return []
    return [schema.unique] if all(isinstance(c, str) for c in schema.unique) else schema.unique


def describe(rows, schema, error: pandera.errors.SchemaError, keys: list[str]) -> list[ContractFailure]:
    """One pandera error as failures that name records by key, found by querying the failing rows.

    Never an empty list: an error whose rows cannot be found is still reported, without ids.
    """
    reason = getattr(error.reason_code, "name", str(error.reason_code))
    check = error.check
    column = error.schema.name if isinstance(error.schema, Column) else None
    name = (check.error or check.name) if isinstance(check, Check) else str(check)
    unlocated = ContractFailure(column or "(table)", name, reason)

    def found(column_label: str, failing) -> ContractFailure:
        if failing is None:
            return ContractFailure(column_label, name, reason)
        count = int(failing.count().execute())
        ids: tuple[str, ...] = ()
        if keys and all(k in failing.columns for k in keys):
            shown = failing.select(keys).order_by(keys).limit(IDS_SHOWN).execute()
            ids = tuple(record_id(row) for row in shown.itertuples(index=False))
        return ContractFailure(column_label, name, reason, count, ids)

    def located() -> list[ContractFailure]:
        if check == "multiple_fields_uniqueness":  # pandera stops at the first repeated key; report each
            repeated = [(s, rows.filter(ibis._.count().over(group_by=list(s)) > 1)) for s in unique_subsets(schema)]
            return [found(", ".join(s), r) for s, r in repeated if int(r.count().execute())]
        if check == "field_uniqueness" and column:
            return [found(column, rows.filter(ibis._.count().over(group_by=[column]) > 1))]
        if check == "not_nullable" and column:
            return [found(column, rows.filter(rows[column].isnull()))]
        if error.reason_code == pandera.errors.SchemaErrorReason.WRONG_DATATYPE and column in rows.columns:
            return [ContractFailure(column, f"{name}, found {rows.schema()[column]}", reason)]  # the type, not values
        if check == "column_in_schema":  # strict contract: columns the contract does not know
            return [ContractFailure(c, name, reason) for c in rows.columns if c not in schema.columns]
        if check == "column_in_dataframe":
            return [ContractFailure(c, name, reason) for c in schema.columns if c not in rows.columns]
        if isinstance(check, Check) and error.reason_code != pandera.errors.SchemaErrorReason.CHECK_ERROR:
            return [found(column or "(table)", failing_rows(rows, check, column))]
        return []

    try:
        return located() or [unlocated]
    except Exception:  # the failing rows cannot be queried: the failure is still reported
        return [unlocated]


def failing_rows(rows, check: Check, column: str | None):
    """The rows a pandera check fails on, as a query (its output counted the way pandera counts it)."""
    output = IbisCheckBackend(check).apply(IbisData(rows, column))
    if isinstance(output, ibis.Table):  # a table-wide check: the rows joined with their verdict
        table, passed = output, output[CHECK_OUTPUT_KEY]
    elif isinstance(output, ibis.Column):
        table, passed = rows, output
    else:
        return None  # one verdict for the whole table: no rows to name
    if check.ignore_na and column:
        passed = passed | table[column].isnull()
    return table.filter(~passed.fill_null(check.ignore_na))
