"""Run one table's pandera contract on one district's build slice, inside the warehouse."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

import ibis
import pandera.errors
from pandera.config import ValidationDepth, config_context

from roster_pipeline.contracts import contract_for
from roster_pipeline.rules import DistrictRules
from roster_pipeline.sql_models import BUILD_SCHEMA
from roster_pipeline.warehouse import Warehouse

FAILURES_SHOWN = 10


@dataclass(frozen=True)
class ContractResult:
    table: str
    rows_checked: int
    failure_count: int = 0
    failures_markdown: str = ""  # the first failing values per check, for the UI

    @property
    def passed(self) -> bool:
        return self.failure_count == 0


@contextmanager
def ibis_connection(warehouse: Warehouse) -> Iterator:
    """An Ibis backend on the warehouse, so pandera's checks run as the warehouse's own queries."""
    if warehouse.kind == "duckdb":
        with warehouse.connect() as conn:
            yield ibis.duckdb.from_connection(conn)
        return
    parts = urlsplit(warehouse.url)
    backend = ibis.connect(urlunsplit(("postgres", *parts[1:])))
    try:
        yield backend
    finally:
        backend.disconnect()


def check_contract(backend, table: str, district_id: str, rules: DistrictRules) -> ContractResult:
    """Validate the district's rows of `roster_build.<table>`; failures are returned, not raised."""

    def district_slice(name: str):
        return backend.table(name, database=BUILD_SCHEMA).filter(lambda t: t.district_id == district_id)

    rows = district_slice(table)
    schema = contract_for(table, rules, district_slice)
    checked = int(rows.count().execute())
    # pandera's Ibis backend reports "not nullable" failures on an empty table (its any() of no
    # rows is NULL); an empty slice has no values to check, so only its columns and types are.
    depth = ValidationDepth.SCHEMA_AND_DATA if checked else ValidationDepth.SCHEMA_ONLY
    try:
        with config_context(validation_depth=depth):
            schema.validate(rows, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        shown = cases[["column", "check", "failure_case"]].astype(str).head(FAILURES_SHOWN)
        return ContractResult(table, checked, len(cases), shown.to_markdown(index=False))
    return ContractResult(table, checked)
