"""What the warehouse knows about each district: last publish, Clever's sync state and its last sync of
the district's SIS, event cursor age.

`roster-pipeline status` adds what the Dagster instance knows (the last run, blocked or not) to
these. Everything is read in two queries, so the status of hundreds of districts stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from roster_pipeline.clever.events import cursor_in_state
from roster_pipeline.clever.pause import clever_paused
from roster_pipeline.clever.settings import RAW_DATASET
from roster_pipeline.clever.sis_sync import sis_stale_since
from roster_pipeline.warehouse.connection import Warehouse, table_columns
from roster_pipeline.warehouse.schemas import PUBLISHED_SCHEMA


@dataclass(frozen=True)
class WarehouseFacts:
    """One district as published, and its Clever event cursor."""

    name: str | None = None
    published_at: datetime | None = None
    clever_state: str | None = None  # Clever's sync state: running, pending, error, paused, success
    pause_start: datetime | None = None
    pause_end: datetime | None = None
    cursor_stored_at: datetime | None = None  # when the events cursor was last stored (a load committed)
    last_sync: datetime | None = None  # when Clever last synced the district from its SIS
    demographics_shared: bool | None = None  # False: no student carries a demographic field (DEMOGRAPHICS_NOT_SHARED)

    def paused(self, now: datetime) -> bool:
        """Clever pauses a district's syncs around the summer: its data cannot change meanwhile."""
        return clever_paused(self.clever_state, self.pause_start, self.pause_end, now)

    def sis_stale_since(self, now: datetime, days: int) -> datetime | None:
        """Clever's last sync of the district's SIS, when older than `days` (see `sis_stale_since`)."""
        return sis_stale_since(self.last_sync, self.paused(now), now, days)


def _aware(moment) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def warehouse_facts(warehouse: Warehouse) -> dict[str, WarehouseFacts]:
    """district id → what the warehouse holds about it (districts synced at least once)."""
    import dlt.common.versioned_state

    facts: dict[str, dict] = {}
    with warehouse.transaction() as sql:
        columns = table_columns(sql, PUBLISHED_SCHEMA, "districts")
        if columns:
            # Columns a newer publish added are read as NULL from a table published before them
            # (the SIS is then not judged, and demographics are not said to be missing).
            newer = ", ".join(c if c in columns else "null" for c in ("last_sync", "demographics_shared"))
            for district_id, name, published_at, state, start, end, last_sync, shared in sql.execute(
                    f"select district_id, name, published_at, state, pause_start, pause_end, {newer} "
                    f"from {PUBLISHED_SCHEMA}.districts").fetchall():
                facts[district_id] = {"name": name, "published_at": _aware(published_at), "clever_state": state,
                                      "pause_start": _aware(start), "pause_end": _aware(end),
                                      "last_sync": _aware(last_sync), "demographics_shared": shared}
        if table_columns(sql, RAW_DATASET, "_dlt_pipeline_state"):
            # Each district's dlt pipeline (clever_<district id>) stores its whole state with every
            # load; only each pipeline's newest version is read (a year of nightly loads is hundreds).
            table = f"{RAW_DATASET}._dlt_pipeline_state"
            for pipeline_name, state in sql.execute(
                    f"select pipeline_name, state from {table} where pipeline_name like 'clever_%' and "
                    f"(pipeline_name, version) in (select pipeline_name, max(version) from {table} "
                    "group by pipeline_name)").fetchall():
                found = cursor_in_state(dlt.common.versioned_state.decompress_state(state))
                if found is not None:
                    stored_at = datetime.fromtimestamp(found[1], tz=timezone.utc)
                    facts.setdefault(pipeline_name.removeprefix("clever_"), {})["cursor_stored_at"] = stored_at
    return {district_id: WarehouseFacts(**values) for district_id, values in facts.items()}
