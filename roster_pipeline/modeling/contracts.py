"""Pandera contracts for every `roster` table, built from `dbt_like_sql/marts/_marts.yml` and run as
blocking checks before a district publishes.

The contracts use pandera's Ibis backend: every check becomes a query that the warehouse
(DuckDB or Postgres) runs over the district's slice in place, so a 7,000,000-row enrollments
table is validated without being pulled into Python memory (pandas took 17 s and gigabytes
at 1M students; the pushed-down checks stream).

The yml is the one home of a table's columns and checks, so the docs, the Dagster column schemas
and the contracts cannot drift apart: `data_type` is the column's type, `not_null` its
nullability, `unique` and `dbt_utils.unique_combination_of_columns` the keys (within the
district), `accepted_values`, `matches` and `not_empty` pandera's built-in checks, and a
`relationships` test to a seed its values. Every contract is strict: a column the yml does not
list is a change to review, not to publish. The parts that depend on the district (its grade
range from the rules profile, `relationships` to the district's other tables) are added in
`contract_for`.

What stays here is what a column list cannot say: the rules across columns, which the yml names
as model-level `roster_*` tests (`TABLE_TESTS`): frl_eligible follows frl_status, district admins
have no school, a rejected record's action is its reason code's action, a section has one primary
teacher among its teachers, and a summary's counts are not negative (one query for all of them,
not one per count column).
"""

from __future__ import annotations

import copy
import csv
from collections.abc import Callable
from functools import cache

import ibis
import ibis.expr.datatypes as dt
import pandera.ibis as pa
from pandera.api.ibis.types import IbisData

from roster_pipeline.modeling.project import ref_name, seed_of, sql_project
from roster_pipeline.modeling.reason_codes import REASON_CODES, SEEDS_DIR
from roster_pipeline.modeling.rules import DistrictRules

# yml `data_type` → the type the warehouse reports through Ibis (same on DuckDB and Postgres).
TYPES = {
    "varchar": dt.String, "integer": dt.Int32, "bigint": dt.Int64, "boolean": dt.Boolean, "date": dt.Date,
    "timestamp with time zone": dt.Timestamp(timezone="UTC", scale=6),  # microseconds on both warehouses
}
FRL_ELIGIBLE = {"free": True, "reduced": True, "paid": False}


def _all_of(data: IbisData, condition) -> ibis.Column:
    """A table-wide check's answer: one boolean per row, as a column of the checked table.

    Not a table (what pandera's built-in checks return): pandera joins a check's output table
    back to the checked rows, positionally on DuckDB but by row_number() on Postgres, which costs
    a sort and a merge join of the whole slice per check (4-6 s each on 1M students'
    enrollments). A boolean column of the same table is one aggregate scan.
    """
    return condition


def _per_value(name: str, error: str, condition: Callable[[ibis.Column], ibis.Column]) -> pa.Check:
    """A column check as one boolean per value (see _all_of), named and worded like pandera's
    built-in check of the same meaning; NULLs pass, as with the built-ins (`not_null` says otherwise)."""
    return pa.Check(lambda data: condition(data.table[data.key]), name=name, error=error)


def _frl_eligible_follows_status(doc: dict) -> pa.Check:
    def check(data: IbisData) -> ibis.Table:
        t = data.table
        expected = t.frl_status.cases(*FRL_ELIGIBLE.items(), else_=ibis.null(dt.boolean))
        agrees = (expected.isnull() & t.frl_eligible.isnull()) | (expected == t.frl_eligible).fill_null(False)
        return _all_of(data, agrees)

    return pa.Check(check, name="frl_eligible_follows_status",
                    error="frl_eligible must be true for free/reduced, false for paid, NULL otherwise")


def _district_admins_have_no_school(doc: dict) -> pa.Check:
    def check(data: IbisData) -> ibis.Table:
        t = data.table
        return _all_of(data, ((t.role == "district_admin") & t.school_id.isnull()) | (t.role == "school_admin"))

    return pa.Check(check, name="school_matches_role", error="district admins have no school")


def _action_matches_reason_code(doc: dict) -> pa.Check:
    def check(data: IbisData) -> ibis.Table:
        t = data.table
        expected = t.reason_code.cases(*((c, r.action) for c, r in REASON_CODES.items()), else_=ibis.null(dt.string))
        return _all_of(data, (t.action == expected).fill_null(False))

    return pa.Check(check, name="action_matches_reason", error="the action must match the reason code's action")


def _one_primary_teacher_per_section(doc: dict) -> pa.Check:
    def check(data: IbisData) -> dict:
        # A window, so a named column of the table (pandera adds it with mutate): one boolean column
        # straight away would put the window inside pandera's all(), which no warehouse allows. Each
        # section's links change together, so an incremental build's changed rows hold all of them.
        t = data.table
        primaries = t.is_primary.cast("int32").sum().over(ibis.window(group_by=t.section_id))
        return {"one_primary_teacher": primaries == 1}

    return pa.Check(check, name="one_primary_teacher", error="each section has exactly one primary teacher")


def _counts_not_negative(doc: dict) -> pa.Check:
    counts = [name for name, column in doc["columns"].items() if column.get("data_type") == "bigint"]
    return pa.Check(lambda data: _all_of(data, ibis.and_(*(data.table[c].fill_null(0) >= 0 for c in counts))),
                    error="every count is a whole number ≥ 0")


# Model-level tests the yml names and this module implements: the table's doc → a table-wide check.
TABLE_TESTS: dict[str, Callable[[dict], pa.Check]] = {
    "roster_frl_eligible_follows_status": _frl_eligible_follows_status,
    "roster_district_admins_have_no_school": _district_admins_have_no_school,
    "roster_action_matches_reason_code": _action_matches_reason_code,
    "roster_one_primary_teacher_per_section": _one_primary_teacher_per_section,
    "roster_counts_not_negative": _counts_not_negative,
}


def seed_values(seed: str, field: str) -> list[str]:
    """A seed column's values, sorted: what a `relationships` test to a seed accepts."""
    with open(SEEDS_DIR / f"{seed}.csv", newline="", encoding="utf-8") as handle:
        return sorted({row[field] for row in csv.DictReader(handle)})


def _to_mart(test) -> bool:
    """A `relationships` test to another table of the district (not to a seed)."""
    return test.name == "relationships" and not seed_of(test)


def foreign_keys(table: str) -> list[tuple[str, str, str]]:
    """(column, other table, other column) of the table's `relationships` tests to other marts."""
    columns = sql_project().docs[table]["columns"]
    return [(name, ref_name(t.args["to"]), t.args["field"]) for name, column in columns.items()
            for t in column["data_tests"] if _to_mart(t)]


def _column_check(table: str, column: str, test) -> pa.Check:
    """A column test that needs no district: pandera's built-in check of the same meaning."""
    if test.name == "accepted_values" or (test.name == "relationships" and seed_of(test)):
        values = list(test.args["values"]) if test.name == "accepted_values" else \
            seed_values(seed_of(test), test.args["field"])
        return _per_value("isin", f"isin({values!r})", lambda c: c.isin(values))
    if test.name == "matches":
        pattern = test.args["pattern"] if test.args["pattern"].startswith("^") else f"^{test.args['pattern']}"
        return _per_value("str_matches", f"str_matches('{test.args['pattern']}')", lambda c: c.re_search(pattern))
    if test.name == "not_empty":
        return _per_value("str_length", "str_length(1, None)", lambda c: c.length() >= 1)
    raise ValueError(f"{table}.{column}: unknown data test {test.name!r} in the marts' yml")


@cache
def static_contract(table: str) -> pa.DataFrameSchema:
    """The part of a table's contract that is the same for every district (cached: never mutate it)."""
    doc = sql_project().docs[table]
    columns, unique = {}, []
    for name, column in doc["columns"].items():
        if column.get("data_type") not in TYPES:
            raise ValueError(f"{table}.{name}: data_type {column.get('data_type')!r} is not one of {sorted(TYPES)}")
        tests = column["data_tests"]
        unique += [[name] for t in tests if t.name == "unique"]
        checks = [_column_check(table, name, t) for t in tests
                  if t.name not in ("not_null", "unique", "roster_grade_in_range") and not _to_mart(t)]
        columns[name] = pa.Column(TYPES[column["data_type"]], checks=checks, name=name,
                                  nullable=not any(t.name == "not_null" for t in tests))
    checks = []
    for test in doc["data_tests"]:
        if test.name == "dbt_utils.unique_combination_of_columns":
            unique.append(list(test.args["combination_of_columns"]))
        elif test.name in TABLE_TESTS:
            checks.append(TABLE_TESTS[test.name](doc))
        else:
            raise ValueError(f"{table}: unknown model-level data test {test.name!r} in the marts' yml")
    return pa.DataFrameSchema(columns, checks=checks, unique=unique or None, strict=True, name=table)


def contract_for(table: str, rules: DistrictRules, district_slice) -> pa.DataFrameSchema:
    """The table's contract for one district: its grade range and foreign keys added.

    `district_slice(name)` is the district's rows of another build table (an Ibis table), so a
    foreign key is a semi-join the warehouse runs, not a set of ids held in Python.
    """
    schema = copy.deepcopy(static_contract(table))
    low, high = rules.grade_range
    for name, column in sql_project().docs[table]["columns"].items():
        if any(t.name == "roster_grade_in_range" for t in column["data_tests"]):
            schema.columns[name].checks.append(
                _per_value("in_range", f"grade must be {low}..{high}", lambda c: c.between(low, high)))
    for column, other_table, other_column in foreign_keys(table):
        ids = district_slice(other_table)[other_column]
        schema.columns[column].checks.append(pa.Check(
            lambda data, ids=ids: data.table[data.key].isnull() | data.table[data.key].isin(ids),
            error=f"{column} must exist in {other_table}.{other_column}"))
    return schema
