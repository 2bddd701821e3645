"""Test tiers and shared fixtures.

unit/ runs in seconds (no Dagster run, no sandbox process): `scripts/test unit`.
behaviour/ runs the roster engine on real sandboxes (over HTTP, in process) into real DuckDB files and the
local Postgres, with no Dagster run: the rules, reports, identities, history, the school year
(`scripts/test behaviour`).
scale/ runs the engine at sizes where query plans and memory show (30,000 students into Postgres):
`scripts/test scale`.
integration/ syncs real sandboxes through Dagster: what Dagster itself does (runs, tags, claims, the CLI).
e2e/ drives the product from outside: the CLI as its own process, the installed wheel, `dagster dev`.
The fixtures live in fixtures/ (no test file imports another).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from roster_pipeline.cli import interruptible

# A suite started from a background job would make every process its runs start ignore SIGTERM
# (see roster_pipeline.cli.interruptible); the tests run syncs in this process, not through main().
interruptible()

pytest_plugins = ["roster_pipeline_tests.fixtures.services", "roster_pipeline_tests.fixtures.warehouses",
                  "roster_pipeline_tests.fixtures.dirty_district"]
TIERS = ("unit", "behaviour", "scale", "integration", "e2e")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with its folder's tier (`-m unit`, `-m "not e2e"`)."""
    for item in items:
        tier = next((part for part in Path(item.fspath).parts if part in TIERS), None)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def no_dagster_state_storage_from_an_earlier_test():
    """Each test starts without a Dagster definitions-state storage left current by an earlier one.

    Entering a `DagsterInstance` makes its storage current (a context variable) until the instance
    is exited; in a worker process that runs many tests, one left current points at a disposed
    instance, and the next test that builds Definitions outside an instance fails with "Attempted
    to resolve undefined DagsterInstance weakref". Only when Dagster is already imported: the unit
    tier never imports it.
    """
    if "dagster" not in sys.modules:
        yield
        return
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield
