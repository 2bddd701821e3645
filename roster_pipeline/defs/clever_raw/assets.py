"""The raw Clever load as partitioned Dagster assets: one asset per raw table, one run per district.

The load itself is the engine's (engine/raw_load.py); this module describes the raw tables as
assets and turns the engine's load into their materializations.
"""

from collections.abc import Iterator
from functools import cache

import dlt
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    TableColumn,
    TableSchema,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from filelock import FileLock

from roster_pipeline.clever.client import CleverAPIError
from roster_pipeline.clever.settings import RAW_DATASET
from roster_pipeline.clever.source import PROGRESS_LOGGER, clever_source
from roster_pipeline.defs.automation.jobs import SYNC_KIND_TAG, SYNC_REASON_TAG
from roster_pipeline.defs.constants import OWNER, RAW_GROUP, WAREHOUSE_POOL
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import CleverResource, WarehouseResource
from roster_pipeline.defs.run_log import forwarded_to_run_log
from roster_pipeline.engine import ENGINE_LOGGER
from roster_pipeline.engine.raw_load import RawLoad, load_raw
from roster_pipeline.modeling.project import sql_project
from roster_pipeline.warehouse.connection import Warehouse


def warehouse_pool(warehouse_kind: str) -> str | None:
    """The pool of steps that use the warehouse: DuckDB's file takes one process at a time (they
    take turns), so its steps share a limited pool; Postgres serves many at once, so its runs
    are limited only by the run queue (max_concurrent_runs, one per district)."""
    return WAREHOUSE_POOL if warehouse_kind == "duckdb" else None
PLACEHOLDER_DISTRICT = "0" * 24  # the definition-time source only lists resources; it never fetches


class CleverTranslator(DagsterDltTranslator):
    """Raw tables as `clever_raw/<table>` assets, documented, with no made-up upstream assets."""

    def get_asset_spec(self, data: DltResourceTranslatorData) -> AssetSpec:
        spec = super().get_asset_spec(data)
        name = data.resource.name
        return spec.replace_attributes(
            key=AssetKey([RAW_GROUP, name]),
            deps=[],
            description=f"{raw_tables_doc()[name]['description']} Raw Clever data in `{RAW_DATASET}.{name}`, "
                        "one slice per district (`district_id`).",
            group_name=RAW_GROUP,
            owners=[OWNER],
            kinds={"dlt", data.destination.destination_name if data.destination else "duckdb"},
            metadata={**spec.metadata, "dagster/column_schema": raw_column_schema(name)},
        )


@cache
def raw_tables_doc() -> dict[str, dict]:
    """The raw tables as `dbt_like_sql/staging/_sources.yml` documents them (the loader's own
    columns and these agree: a unit test)."""
    return sql_project().sources["clever"]


def raw_column_schema(table: str) -> TableSchema:
    columns = raw_tables_doc()[table]["columns"]
    return TableSchema(columns=[TableColumn(name, str(column["data_type"]), description=str(column["description"]).strip())
                                for name, column in columns.items()])


class RawLoadConfig(Config):
    """incremental: apply Clever events since the stored cursor instead of a full refresh."""

    incremental: bool = False


def find_cause(exc: BaseException, kind: type):
    """The first exception of `kind` in the cause chain (dlt wraps errors raised in resources)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def tag_sync_kind(context: AssetExecutionContext, kind: str, reason: str) -> None:
    """Say on the run which kind of sync it is and why (`roster/sync_kind`, `roster/sync_reason`): the
    UI's run list and the CLI's line read them ("incremental, 181 events", "full: no cursor")."""
    context.instance.add_run_tags(context.run_id, {SYNC_KIND_TAG: kind, SYNC_REASON_TAG: reason})


def raw_results(context: AssetExecutionContext, dlt_resource: DagsterDltResource,
                loaded: RawLoad) -> Iterator[MaterializeResult]:
    """The load's tables as materializations, with dagster-dlt's metadata (rows, schema, load id)."""
    if loaded.load_info is None:  # no events since the cursor: nothing loaded, the cursor stays
        for key in sorted(context.selected_asset_keys):
            yield MaterializeResult(asset_key=key, metadata={"events_applied": MetadataValue.int(0)})
        return
    for name, resource in loaded.resources.items():
        key = AssetKey([RAW_GROUP, name])
        if key in context.selected_asset_keys:
            yield MaterializeResult(asset_key=key, metadata=dlt_resource.extract_resource_metadata(
                context, resource, loaded.load_info, loaded.pipeline))


def asset_spec_pipeline(warehouse: Warehouse) -> dlt.Pipeline:
    """The pipeline that only describes the assets (each district loads through its own); a folder per
    warehouse kind, so switching ROSTER_WAREHOUSE never meets the other kind's saved state.

    dlt creates a new pipeline's folder with "must not exist", so two processes loading the
    definitions at once on a new installation (two `sync` commands) collided; they take turns here.
    """
    folder = warehouse.dlt_dir / f"asset_specs_{warehouse.kind}"
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(folder.with_suffix(".lock"), timeout=60):
        return dlt.pipeline(pipeline_name="clever_raw", destination=warehouse.kind, dataset_name=RAW_DATASET,
                            pipelines_dir=str(folder))


def build_clever_raw_assets(warehouse: Warehouse):
    """The `@dlt_assets` for the configured warehouse kind (its kind tag shows in the UI)."""

    @dlt_assets(
        dlt_source=clever_source(PLACEHOLDER_DISTRICT),
        dlt_pipeline=asset_spec_pipeline(warehouse),
        name="clever_raw",
        dagster_dlt_translator=CleverTranslator(),
        partitions_def=district_partitions,
        pool=warehouse_pool(warehouse.kind),
    )
    def clever_raw(context: AssetExecutionContext, config: RawLoadConfig, dlt: DagsterDltResource,
                   clever: CleverResource, warehouse: WarehouseResource):
        """Load one district: apply its Clever events (incremental), or replace its whole slice."""
        district_id = context.partition_key
        tables = [key.path[-1] for key in context.selected_asset_keys] if context.is_subset else None
        try:
            with forwarded_to_run_log(PROGRESS_LOGGER, ENGINE_LOGGER):
                loaded = load_raw(warehouse.warehouse(), clever.access_for(district_id), district_id,
                                  incremental=config.incremental, tables=tables,
                                  on_kind=lambda kind, reason: tag_sync_kind(context, kind, reason))
        except Exception as exc:
            api_error = find_cause(exc, CleverAPIError)
            if api_error is not None and api_error.transient:
                raise RetryRequested(max_retries=3, seconds_to_wait=30) from exc
            raise
        yield from raw_results(context, dlt, loaded)

    return clever_raw
