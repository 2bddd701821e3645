"""The project's Dagster definitions: each domain's, merged; the only place they meet.

Configuration comes from the environment (see the README's table); a bad value stops loading
with one sentence naming the variable.
"""

from __future__ import annotations

import os

from dagster import Definitions, in_process_executor, multiprocess_executor

from roster_pipeline.defs.automation.definitions import automation_definitions
from roster_pipeline.defs.clever_raw.definitions import clever_raw_definitions
from roster_pipeline.defs.constants import DISTRICT_SYNC_JOB
from roster_pipeline.defs.reports.definitions import reports_definitions
from roster_pipeline.defs.resources import build_resources
from roster_pipeline.defs.roster.definitions import roster_definitions
from roster_pipeline.modeling.rules import RulesProfile
from roster_pipeline.settings import (
    FreshnessSettings,
    MassChangeSettings,
    OperationsSettings,
    data_dir,
    history_retention_days,
    keep_files_private,
    load_dotenv,
    warehouse_url,
)
from roster_pipeline.warehouse.connection import Warehouse


def build_definitions() -> Definitions:
    load_dotenv()
    keep_files_private()  # the code server and every run it starts write rosters: owner-only (settings.py)
    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    rules_path = os.environ.get("ROSTER_RULES") or None
    RulesProfile.load(rules_path)  # a malformed rules file stops loading here, not mid-run
    MassChangeSettings.from_env()  # so does a bad guard setting
    history_retention_days()  # and a bad retention
    OperationsSettings.from_env()  # and a bad alert URL, freshness or school-year setting
    # The batch job runs this code location's own district job: looked up when a batch starts
    # (these definitions exist by then), from the repository they already built, never rebuilt.
    # Dagster's context.repository_def would not do: a job executed in process has none.
    merged = Definitions.merge(
        clever_raw_definitions(warehouse),
        roster_definitions(warehouse.kind),
        reports_definitions(warehouse.kind),
        automation_definitions(warehouse.kind, FreshnessSettings.from_env(),
                               district_job=lambda: merged.resolve_job_def(DISTRICT_SYNC_JOB)),
        Definitions(
            resources=build_resources(warehouse, rules_path),
            # An embedded DuckDB file takes one writing process: run a district's steps in one process.
            executor=in_process_executor if warehouse.kind == "duckdb" else multiprocess_executor,
        ),
    )
    return merged


defs = build_definitions()
