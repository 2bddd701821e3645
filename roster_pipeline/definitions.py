"""The one Definitions object: assets, resources (and, in later steps, checks, schedules, sensors).

Configuration comes from the environment (see the README's table); a bad value stops loading
with one sentence naming the variable.
"""

from __future__ import annotations

import os

from dagster import Definitions, EnvVar, in_process_executor, multiprocess_executor
from dagster_dlt import DagsterDltResource

from roster_pipeline.batch import build_nightly_batch_job
from roster_pipeline.jobs import build_district_sync_job
from roster_pipeline.raw_assets import build_clever_raw_assets
from roster_pipeline.report_assets import build_school_confirmation
from roster_pipeline.resources import CleverResource, RulesResource, WarehouseResource
from roster_pipeline.roster_assets import build_roster_assets
from roster_pipeline.rules import RulesProfile
from roster_pipeline.sql_models import SqlProject
from roster_pipeline.schedules import build_nightly_schedule
from roster_pipeline.sensors import build_discovery_sensor, build_events_sensor
from roster_pipeline.settings import (
    ConfigError, DEFAULT_API_BASE_URL, DEFAULT_OAUTH_TOKENS_URL, FreshnessSettings, MassChangeSettings, data_dir, load_dotenv_once, warehouse_url,
)
from roster_pipeline.warehouse import Warehouse


def _secret(name: str):
    """An EnvVar when the variable is set (the UI shows its name, never its value), else None."""
    return EnvVar(name) if os.environ.get(name) else None


def clever_timeout() -> float:
    raw = os.environ.get("CLEVER_TIMEOUT_SECONDS") or "60"
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise ConfigError(f"CLEVER_TIMEOUT_SECONDS must be a positive number of seconds, got {raw!r}.")
    return value


def build_definitions() -> Definitions:
    load_dotenv_once()
    warehouse = Warehouse(warehouse_url(), data_dir() / "dlt")
    rules_path = os.environ.get("ROSTER_RULES") or None
    RulesProfile.load(rules_path)  # a malformed rules file stops loading here, not mid-run
    roster_models = build_roster_assets(SqlProject(), warehouse.kind)
    freshness = FreshnessSettings.from_env()
    MassChangeSettings.from_env()  # a bad guard setting stops loading here, not in the middle of a run
    return Definitions(
        assets=[build_clever_raw_assets(warehouse), roster_models, build_school_confirmation(warehouse.kind)],
        jobs=[build_district_sync_job(warehouse.kind), build_nightly_batch_job(warehouse.kind)],
        schedules=[build_nightly_schedule(freshness.sync_cron, freshness.sync_timezone, freshness.batch_size)],
        sensors=[build_discovery_sensor(freshness.discovery_interval_seconds),
                 build_events_sensor(freshness.events_interval_seconds)],
        # An embedded DuckDB file takes one writing process: run a district's steps in one process.
        executor=in_process_executor if warehouse.kind == "duckdb" else multiprocess_executor,
        resources={
            "rules": RulesResource(path=rules_path),
            "dlt": DagsterDltResource(),
            "clever": CleverResource(
                api_base_url=os.environ.get("CLEVER_API_BASE_URL") or DEFAULT_API_BASE_URL,
                oauth_tokens_url=os.environ.get("CLEVER_OAUTH_TOKENS_URL") or DEFAULT_OAUTH_TOKENS_URL,
                client_id=os.environ.get("CLEVER_CLIENT_ID") or None,
                client_secret=_secret("CLEVER_CLIENT_SECRET"),
                district_tokens=_secret("CLEVER_DISTRICT_TOKENS"),
                timeout_seconds=clever_timeout(),
            ),
            # The URL may hold a Postgres password: pass it as an EnvVar when it is set.
            "warehouse": WarehouseResource(
                url=_secret("ROSTER_WAREHOUSE") or warehouse.url, dlt_dir=str(warehouse.dlt_dir)),
        },
    )


defs = build_definitions()
