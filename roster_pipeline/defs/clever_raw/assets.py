"""The raw Clever load as partitioned Dagster assets: one asset per raw table, one run per district."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
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
    get_dagster_logger,
)
from dagster_dlt import DagsterDltResource, DagsterDltTranslator, dlt_assets
from dagster_dlt.translator import DltResourceTranslatorData
from filelock import FileLock

from roster_pipeline.clever.client import CleverAPIError
from roster_pipeline.clever.events import (
    Changes,
    EventsUnavailable,
    clever_events_source,
    cursor_in_state,
    fetch_changes,
    latest_event_id,
    stored_cursor,
)
from roster_pipeline.clever.load_packages import remove_loaded_packages
from roster_pipeline.clever.settings import RAW_DATASET, TABLES
from roster_pipeline.clever.source import (
    PROGRESS_LOGGER,
    clear_emptied_tables,
    clever_source,
    discard_unfinished_loads,
    raw_tables,
)
from roster_pipeline.defs.automation.jobs import SYNC_KIND_TAG, SYNC_REASON_TAG
from roster_pipeline.defs.constants import OWNER, RAW_GROUP, WAREHOUSE_POOL
from roster_pipeline.defs.partitions import district_partitions
from roster_pipeline.defs.resources import CleverResource, WarehouseResource
from roster_pipeline.modeling.incremental import note_changes, note_full_refresh
from roster_pipeline.modeling.project import sql_project
from roster_pipeline.warehouse.connection import Warehouse
from roster_pipeline.warehouse.postgres_tables import reclaim_space, tune_raw_tables


def warehouse_pool(warehouse_kind: str) -> str | None:
    """The pool of steps that use the warehouse: DuckDB's file takes one process at a time (they
    take turns), so its steps share a limited pool; Postgres serves many at once, so its runs
    are limited only by the run queue (max_concurrent_runs, one per district)."""
    return WAREHOUSE_POOL if warehouse_kind == "duckdb" else None
PLACEHOLDER_DISTRICT = "0" * 24  # the definition-time source only lists resources; it never fetches


@contextmanager
def progress_in_run_log() -> Iterator[None]:
    """The paging progress lines (pages, rows, rate per collection) go to the run's event log.

    The Clever layer logs them with plain `logging` (it imports no Dagster); Dagster captures
    what reaches its own logger, so they are passed on to it while the load runs.
    """
    progress, into_run = logging.getLogger(PROGRESS_LOGGER), get_dagster_logger("clever.progress")

    class Forward(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            into_run.log(record.levelno, record.getMessage())

    handler, level = Forward(), progress.level
    progress.addHandler(handler)
    progress.setLevel(logging.INFO)
    try:
        yield
    finally:
        progress.removeHandler(handler)
        progress.setLevel(level)


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


NO_CURSOR = "no event cursor is stored yet (first sync)"


def events_since_cursor(pipeline, client, warehouse: Warehouse) -> tuple[Changes, str | None]:
    """The changes since the district's stored cursor, and that cursor."""
    with warehouse.turn():
        known, cursor = stored_cursor(pipeline)
    if not known:
        raise EventsUnavailable(NO_CURSOR)
    return fetch_changes(client, cursor), cursor


# Why events could not be used (EventsUnavailable's sentence, clever/events.py) → the run tag's words.
FULL_BECAUSE = (("no event cursor", "no cursor"), ("retention", "cursor past retention"),
                ("turned off", "events turned off"))


def full_reason(reason: EventsUnavailable) -> str:
    """The short reason an incremental sync refreshed fully: "no cursor", "cursor past retention", ..."""
    return next((short for words, short in FULL_BECAUSE if words in str(reason)), "events unavailable")


def tag_sync_kind(context: AssetExecutionContext, kind: str, reason: str) -> None:
    """Say on the run which kind of sync it is and why (`roster/sync_kind`, `roster/sync_reason`): the
    UI's run list and the CLI's line read them ("incremental, 181 events", "full: no cursor")."""
    context.instance.add_run_tags(context.run_id, {SYNC_KIND_TAG: kind, SYNC_REASON_TAG: reason})


def newest_event_or_none(client, context, district_id: str) -> str | None:
    try:
        newest = latest_event_id(client)
    except EventsUnavailable as reason:
        context.log.info(f"District {district_id}: {reason}; the next incremental sync will refresh fully.")
        return None
    log_skipped_events(context, district_id, newest.skipped)
    return newest.id


def log_skipped_events(context, district_id: str, skipped: int) -> None:
    if skipped:
        context.log.warning(f"District {district_id}: {skipped} malformed Clever events skipped (not an object, "
                            "without an id, or naming no object).")


def tune_after_load(context: AssetExecutionContext, wh: Warehouse, district_id: str, replaced: dict[str, int]) -> None:
    """Postgres: index the raw tables, refresh the statistics this load moved, and vacuum the
    tables whose old slice (`replaced`: rows per raw table before a full refresh) is now dead."""
    if wh.kind != "postgres":
        return
    tune_raw_tables(wh, district_id, replaced)
    vacuumed = reclaim_space(wh, {f"{RAW_DATASET}.{table}": rows for table, rows in replaced.items()})
    if vacuumed:
        context.log.info(f"District {district_id}: space of the replaced raw rows reclaimed in {', '.join(vacuumed)}.")


def refresh_district(context: AssetExecutionContext, dlt_resource: DagsterDltResource, wh: Warehouse,
                     pipeline: dlt.Pipeline, source, why: str | None = None) -> Iterator[MaterializeResult]:
    """Replace the district's raw slice, paging Clever outside the warehouse turn.

    What `DagsterDltResource.run` does (subset, fresh local state, run, materializations), but in
    dlt's steps: the local state is restored from the warehouse in a short turn; extract (paging
    Clever, as slow as Clever is) and normalize work on local files only, between turns, so
    `status` and other districts use the DuckDB file meanwhile; the load and the small warehouse
    steps around it take one turn. A run killed between the steps leaves a pending package, which
    `discard_unfinished_loads` aborts at the next run's start. `why`: the reason an incremental sync
    refreshed fully; without it the refresh was asked for, or there is no cursor yet (read from the
    state restored here).
    """
    district_id = context.partition_key
    selected = {AssetKey([RAW_GROUP, name]): resource for name, resource in source.selected_resources.items()}
    if context.is_subset:
        selected = {key: resource for key, resource in selected.items() if key in context.selected_asset_keys}
        source = source.with_resources(*(resource.name for resource in selected.values()))
    with wh.turn():
        pipeline.drop()  # the local state is the warehouse's (what dagster-dlt does before a run) ...
        pipeline.sync_destination()  # ... with its stored schemas and event cursor
    tag_sync_kind(context, "full", why or ("full refresh asked" if cursor_in_state(pipeline.state) else "no cursor"))
    pipeline.extract(source)
    pipeline.normalize()
    with wh.turn():
        with wh.transaction() as sql:  # the next roster build is a full one
            note_full_refresh(sql, district_id)
        replaced = wh.raw_row_counts(district_id, raw_tables()) if wh.kind == "postgres" else {}
        load_info = pipeline.load()
        load_info.raise_on_failed_jobs()
        emptied = clear_emptied_tables(pipeline, district_id)
        tune_after_load(context, wh, district_id, replaced)
    # Dagster records the results after the turn, while another process may use the warehouse.
    for key, resource in selected.items():
        yield MaterializeResult(asset_key=key,
                                metadata=dlt_resource.extract_resource_metadata(context, resource, load_info, pipeline))
    if emptied:
        context.log.info(f"District {district_id}: no rows this time in {', '.join(emptied)}; old rows removed.")


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
        wh = warehouse.warehouse()
        pipeline = wh.raw_pipeline(district_id)
        with wh.turn():  # before the cursor is read: a killed run's package holds a cursor never loaded
            discarded = discard_unfinished_loads(pipeline)
        if discarded:
            # A failed run leaves its package as a killed one does: say only that it did not finish.
            context.log.warning(f"District {district_id}: an earlier sync that did not finish left "
                                f"{', '.join(discarded)}; discarded (this run loads from Clever afresh).")
        token = clever.token_for(district_id)
        why = None  # why an incremental sync refreshed fully
        try:
            with clever.client_for(district_id, token) as client, progress_in_run_log():
                if config.incremental:
                    try:
                        changes, cursor = events_since_cursor(pipeline, client, wh)
                    except EventsUnavailable as reason:
                        context.log.warning(f"District {district_id}: full refresh instead of events: {reason}.")
                        why = full_reason(reason)
                    else:
                        tag_sync_kind(context, "incremental", f"{changes.events:,} events")
                        log_skipped_events(context, district_id, changes.skipped)
                        if not changes.events:  # nothing to load and the cursor stays: no dlt load at all
                            context.log.info(f"District {district_id}: no Clever events since {cursor}.")
                            for key in sorted(context.selected_asset_keys):
                                yield MaterializeResult(asset_key=key, metadata={"events_applied": MetadataValue.int(0)})
                            return
                        context.log.info(f"District {district_id}: applying {changes.events} Clever events "
                                         f"up to {changes.last_event_id}.")
                        with wh.turn():
                            with wh.transaction() as sql:  # noted before loading: see modeling/incremental.py
                                note_changes(sql, district_id, changes.changed_ids())
                            results = list(dlt.run(context=context, dlt_pipeline=pipeline, dlt_source=clever_events_source(
                                district_id, changes, changes.last_event_id or cursor)))
                            tune_after_load(context, wh, district_id, replaced={})  # few rows replaced or added
                        yield from results
                        return
                # Events after the refresh started are applied next time (replaying a few is harmless).
                newest = newest_event_or_none(client, context, district_id)
                known = wh.raw_row_counts(district_id, list(TABLES))  # caps each collection's paging
                yield from refresh_district(context, dlt, wh, pipeline,
                                            clever.source_for(district_id, token, events_cursor=newest, known_rows=known),
                                            why)
        except Exception as exc:
            api_error = find_cause(exc, CleverAPIError)
            if api_error is not None and api_error.transient:
                raise RetryRequested(max_retries=3, seconds_to_wait=30) from exc
            raise
        finally:
            remove_load_files(context, wh, pipeline)

    return clever_raw


def remove_load_files(context: AssetExecutionContext, wh: Warehouse, pipeline: dlt.Pipeline) -> None:
    """dlt's copies of the district's rows go when the load is done, or failed: they are student
    records outside the warehouse and its roles (clever/load_packages.py). A failed load's package
    is still pending; it is aborted first (through the warehouse, so in a turn). Best effort: a
    warehouse that is down leaves it to the next run's start, which discards it anyway."""
    try:
        if pipeline.has_pending_data:
            with wh.turn():
                discard_unfinished_loads(pipeline)
    except Exception as exc:  # never hide the run's own error behind this one
        context.log.warning(f"District {context.partition_key}: a failed load's files stay until the next run "
                            f"({type(exc).__name__}).")
    remove_loaded_packages(pipeline)
