"""One district's raw load: apply its Clever events since the stored cursor, or replace its slice.

dlt loads; this module decides which load and keeps the warehouse turns short. Clever is paged
outside any turn (extract and normalize work on local files), so `status` and other districts use
a DuckDB file meanwhile; the load and the small warehouse steps around it take one turn. dlt's
local copies of the rows are removed when the load is done or failed (clever/load_packages.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import dlt
from pydantic import SecretStr

from roster_pipeline.clever.client import CleverClient
from roster_pipeline.clever.events import (
    EventsUnavailable,
    clever_events_source,
    cursor_in_state,
    fetch_changes,
    latest_event_id,
    stored_cursor,
)
from roster_pipeline.clever.load_packages import remove_loaded_packages
from roster_pipeline.clever.settings import MAX_PAGE_SIZE, RAW_DATASET, TABLES
from roster_pipeline.clever.source import clear_emptied_tables, clever_source, discard_unfinished_loads, raw_tables
from roster_pipeline.engine import ENGINE_LOGGER
from roster_pipeline.modeling.incremental import note_changes, note_full_refresh
from roster_pipeline.settings import DEFAULT_API_BASE_URL
from roster_pipeline.warehouse.connection import Warehouse
from roster_pipeline.warehouse.postgres_tables import reclaim_space, tune_raw_tables

log = logging.getLogger(ENGINE_LOGGER)

NO_CURSOR = "no event cursor is stored yet (first sync)"
# Why events could not be used (EventsUnavailable's sentence, clever/events.py) → the short words.
FULL_BECAUSE = (("no event cursor", "no cursor"), ("retention", "cursor past retention"),
                ("turned off", "events turned off"))


@dataclass(frozen=True)
class CleverAccess:
    """Where Clever is, and one district's token (that district's, and no other)."""

    token: SecretStr
    api_base_url: str = DEFAULT_API_BASE_URL
    page_size: int = MAX_PAGE_SIZE
    timeout_seconds: float = 60.0

    def client(self, district_id: str) -> CleverClient:
        return CleverClient(self.api_base_url, self.token, district_id=district_id, page_size=self.page_size,
                            timeout=self.timeout_seconds)

    def source(self, district_id: str, events_cursor: str | None, known_rows: dict[str, int]):
        """The district's full-refresh dlt source; the load records `events_cursor` as where the next
        incremental sync starts; `known_rows` caps how far each collection may page."""
        return clever_source(district_id, self.token, self.api_base_url, self.page_size, self.timeout_seconds,
                             record_events_cursor=True, events_cursor=events_cursor, known_rows=known_rows)


@dataclass
class RawLoad:
    """What one raw load did: its kind and why, the events applied, and dlt's load (None without one)."""

    kind: str = "full"  # "full" or "incremental"
    reason: str = ""  # "181 events", "no cursor", "full refresh asked", ...
    events: int = 0
    skipped_events: int = 0  # malformed Clever events skipped
    discarded: list[str] = field(default_factory=list)  # an earlier unfinished load's packages
    emptied: list[str] = field(default_factory=list)  # tables without rows this time (old rows removed)
    load_info: object | None = None  # dlt's LoadInfo
    pipeline: dlt.Pipeline | None = None
    resources: dict = field(default_factory=dict)  # raw table → the dlt resource loaded


def full_reason(reason: EventsUnavailable) -> str:
    """The short reason an incremental sync refreshed fully: "no cursor", "cursor past retention", ..."""
    return next((short for words, short in FULL_BECAUSE if words in str(reason)), "events unavailable")


def load_raw(wh: Warehouse, access: CleverAccess, district_id: str, *, incremental: bool,
             tables: list[str] | None = None, on_kind: Callable[[str, str], None] | None = None) -> RawLoad:
    """Load one district's raw tables (`tables`: a subset, else all); `on_kind(kind, reason)` is told
    which kind of load it is as soon as that is known (the Dagster layer tags the run)."""
    pipeline = wh.raw_pipeline(district_id)
    result = RawLoad(pipeline=pipeline)
    told = on_kind or (lambda kind, reason: None)
    with wh.turn():  # before the cursor is read: a killed run's package holds a cursor never loaded
        result.discarded = discard_unfinished_loads(pipeline)
    if result.discarded:
        log.warning(f"District {district_id}: an earlier sync that did not finish left "
                    f"{', '.join(result.discarded)}; discarded (this run loads from Clever afresh).")
    try:
        with access.client(district_id) as client:
            why = None
            if incremental:
                try:
                    return apply_events(wh, client, district_id, pipeline, result, told, tables)
                except EventsUnavailable as reason:
                    log.warning(f"District {district_id}: full refresh instead of events: {reason}.")
                    why = full_reason(reason)
            # Events after the refresh started are applied next time (replaying a few is harmless).
            newest = newest_event_or_none(client, district_id, result)
            known = wh.raw_row_counts(district_id, list(TABLES))  # caps each collection's paging
            source = access.source(district_id, newest, known)
            if tables is not None:
                source = source.with_resources(*tables)
            return refresh(wh, district_id, pipeline, source, result, told, why)
    finally:
        remove_load_files(wh, district_id, pipeline)


def apply_events(wh: Warehouse, client, district_id: str, pipeline: dlt.Pipeline, result: RawLoad,
                 told: Callable[[str, str], None], tables: list[str] | None = None) -> RawLoad:
    """Apply the Clever events since the stored cursor (EventsUnavailable when they cannot be used)."""
    with wh.held_open():
        known, cursor = stored_cursor(pipeline)
    if not known:
        raise EventsUnavailable(NO_CURSOR)
    changes = fetch_changes(client, cursor)
    result.kind, result.events, result.skipped_events = "incremental", changes.events, changes.skipped
    result.reason = f"{changes.events:,} events"
    told(result.kind, result.reason)
    log_skipped_events(district_id, changes.skipped)
    if not changes.events:  # nothing to load and the cursor stays: no dlt load at all
        log.info(f"District {district_id}: no Clever events since {cursor}.")
        return result
    log.info(f"District {district_id}: applying {changes.events} Clever events up to {changes.last_event_id}.")
    source = clever_events_source(district_id, changes, changes.last_event_id or cursor)
    if tables is not None:
        source = source.with_resources(*tables)
    with wh.held_open():
        with wh.transaction() as sql:  # noted before loading: see modeling/incremental.py
            note_changes(sql, district_id, changes.changed_ids())
        pipeline.drop()  # the local state is the warehouse's, restored by the run
        result.load_info = pipeline.run(source)
        result.load_info.raise_on_failed_jobs()
        tune_after_load(wh, district_id, replaced={})  # few rows replaced or added
    result.resources = dict(source.selected_resources)
    return result


def refresh(wh: Warehouse, district_id: str, pipeline: dlt.Pipeline, source, result: RawLoad,
            told: Callable[[str, str], None], why: str | None) -> RawLoad:
    """Replace the district's raw slice, paging Clever outside the warehouse turn.

    The local state is restored from the warehouse in a short turn; extract (paging Clever, as
    slow as Clever is) and normalize work on local files only, between turns; the load and the
    small warehouse steps around it take one turn. A run killed between the steps leaves a pending
    package, which `discard_unfinished_loads` aborts at the next run's start. `why`: the reason an
    incremental sync refreshed fully; without it the refresh was asked for, or there is no cursor yet.
    """
    with wh.held_open():
        pipeline.drop()  # the local state is the warehouse's (what dagster-dlt does before a run) ...
        pipeline.sync_destination()  # ... with its stored schemas and event cursor
    result.kind = "full"
    result.reason = why or ("full refresh asked" if cursor_in_state(pipeline.state) else "no cursor")
    told(result.kind, result.reason)
    pipeline.extract(source)
    pipeline.normalize()
    with wh.held_open():
        with wh.transaction() as sql:  # the next roster build is a full one
            note_full_refresh(sql, district_id)
        replaced = wh.raw_row_counts(district_id, raw_tables()) if wh.kind == "postgres" else {}
        result.load_info = pipeline.load()
        result.load_info.raise_on_failed_jobs()
        result.emptied = clear_emptied_tables(pipeline, district_id)
        tune_after_load(wh, district_id, replaced)
    result.resources = dict(source.selected_resources)
    if result.emptied:
        log.info(f"District {district_id}: no rows this time in {', '.join(result.emptied)}; old rows removed.")
    return result


def newest_event_or_none(client, district_id: str, result: RawLoad) -> str | None:
    try:
        newest = latest_event_id(client)
    except EventsUnavailable as reason:
        log.info(f"District {district_id}: {reason}; the next incremental sync will refresh fully.")
        return None
    result.skipped_events = newest.skipped
    log_skipped_events(district_id, newest.skipped)
    return newest.id


def log_skipped_events(district_id: str, skipped: int) -> None:
    if skipped:
        log.warning(f"District {district_id}: {skipped} malformed Clever events skipped (not an object, "
                    "without an id, or naming no object).")


def tune_after_load(wh: Warehouse, district_id: str, replaced: dict[str, int]) -> None:
    """Postgres: index the raw tables, refresh the statistics this load moved, and vacuum the
    tables whose old slice (`replaced`: rows per raw table before a full refresh) is now dead."""
    if wh.kind != "postgres":
        return
    tune_raw_tables(wh, district_id, replaced)
    vacuumed = reclaim_space(wh, {f"{RAW_DATASET}.{table}": rows for table, rows in replaced.items()})
    if vacuumed:
        log.info(f"District {district_id}: space of the replaced raw rows reclaimed in {', '.join(vacuumed)}.")


def remove_load_files(wh: Warehouse, district_id: str, pipeline: dlt.Pipeline) -> None:
    """dlt's copies of the district's rows go when the load is done, or failed: they are student
    records outside the warehouse and its roles (clever/load_packages.py). A failed load's package
    is still pending; it is aborted first (through the warehouse, so in a turn). Best effort: a
    warehouse that is down leaves it to the next run's start, which discards it anyway."""
    try:
        if pipeline.has_pending_data:
            with wh.turn():
                discard_unfinished_loads(pipeline)
    except Exception as exc:  # never hide the run's own error behind this one
        log.warning(f"District {district_id}: a failed load's files stay until the next run ({type(exc).__name__}).")
    remove_loaded_packages(pipeline)
