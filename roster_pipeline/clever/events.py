"""Clever events → changes to the raw tables, loaded by dlt with the district's event cursor.

The cursor lives in the dlt state of the district's pipeline, which dlt stores in the warehouse
with each load and restores only from completed loads: it moves exactly when the changes it
covers are committed. A full refresh records it in its own load (source `clever`), an
incremental run in the events load (source `clever_events`); the newer of the two counts.
Applying the same events twice is harmless: each object's latest version replaces the row with
its id, and deletes delete by id.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dlt
import pyarrow as pa

from roster_pipeline.clever.client import CleverAPIError, CleverClient
from roster_pipeline.clever.pages import (
    district_column,
    id_pairs,
    lists_as_json,
    objects_to_arrow,
    pair_schema,
    table_schema,
)
from roster_pipeline.clever.settings import ORDERED_PAIR_TABLES, SECTION_PAIR_TABLES, TABLES

EVENTS_SOURCE = "clever_events"
CURSOR_STATE = "events_cursor"  # key in a source's dlt state: {"cursor": event id or None, "stored_at": epoch}
DELETED = "_deleted"  # dlt hard-delete flag: a row with true deletes its key instead of writing it
ROLE_TABLES = {"student": "students", "teacher": "teachers", "staff": "staff", "district_admin": "district_admins"}
COLLECTION_TABLES = {"districts": "districts", "schools": "schools", "courses": "courses", "terms": "terms",
                     "sections": "sections"}


class EventsUnavailable(Exception):
    """Events cannot bring this district up to date; the message is the reason for a full refresh."""


@dataclass
class Changes:
    """The latest version of every changed object, per raw table, plus deletions."""

    # Per raw table, keyed by object id (in order of each id's last event), so that applying
    # thousands of events stays linear.
    _upserts: dict[str, dict[str, dict]] = field(default_factory=dict)
    _deletes: dict[str, dict[str, None]] = field(default_factory=dict)
    events: int = 0
    last_event_id: str | None = None
    skipped: int = 0  # malformed events (not an object, no string id, or naming no object): counted, not applied

    def add(self, table: str, object_id: str, obj: dict | None) -> None:
        # Last event wins: drop what an earlier event said about this id.
        upserts, deletes = self._upserts.setdefault(table, {}), self._deletes.setdefault(table, {})
        upserts.pop(object_id, None)
        deletes.pop(object_id, None)
        if obj is None:
            deletes[object_id] = None
        else:
            upserts[object_id] = obj

    def upserts(self, table: str) -> list[dict]:
        """The latest version of each object of `table` changed (not deleted)."""
        return list(self._upserts.get(table, {}).values())

    def deletes(self, table: str) -> list[str]:
        """The ids of the objects of `table` deleted."""
        return list(self._deletes.get(table, {}))

    def changed_ids(self) -> dict[str, list[str]]:
        """Per raw table, the ids of the objects changed or deleted."""
        return {table: [*self._upserts.get(table, {}), *self._deletes.get(table, {})]
                for table in {*self._upserts, *self._deletes}}


def record_cursor(cursor: str | None) -> None:
    """Store the cursor in the state of the source being extracted; dlt commits it with that load."""
    dlt.current.source_state()[CURSOR_STATE] = {"cursor": cursor, "stored_at": time.time()}


def stored_cursor(pipeline: dlt.Pipeline) -> tuple[bool, str | None]:
    """(known, cursor) from the warehouse; known is False before the first full refresh."""
    pipeline.sync_destination()
    found = cursor_in_state(pipeline.state)
    return (False, None) if found is None else (True, found[0])


def _events_call(call):
    try:
        return call()
    except CleverAPIError as exc:
        if exc.status == 404:
            raise EventsUnavailable("the stored event cursor is past Clever's 30-day retention or unknown") from None
        if exc.status == 403:
            raise EventsUnavailable("Clever events are turned off for this district (403 on /events)") from None
        raise


def event_id(event) -> str | None:
    """The event's id, or None for a malformed event (not an object, or no non-empty string id)."""
    if isinstance(event, dict) and isinstance(event.get("id"), str) and event["id"]:
        return event["id"]
    return None


@dataclass
class NewestEvent:
    """The newest well-formed event id (None when there is none) and how many malformed ones were skipped."""

    id: str | None = None
    skipped: int = 0


def newest_event(client: CleverClient, params: dict[str, str] | None = None) -> NewestEvent:
    """Page the events (after `params`' cursor) for the newest one; a malformed event is counted, never
    a cursor, and never stops the paging (one bad event must not stop a district, or the sensor)."""
    newest = NewestEvent()
    for page in client.pages("events", params):
        for event in page:
            found = event_id(event)
            if found is None:
                newest.skipped += 1
            else:
                newest.id = found
    return newest


def latest_event_id(client: CleverClient) -> NewestEvent:
    """The newest event id now (None when there are no events); EventsUnavailable when off."""
    return _events_call(lambda: newest_event(client))


def fetch_changes(client: CleverClient, cursor: str | None) -> Changes:
    """Every event after `cursor`, reduced to the latest version of each object."""
    changes = Changes()

    def read() -> None:
        for page in client.pages("events", {"starting_after": cursor} if cursor else {}):
            for event in page:
                apply_event(changes, event)

    _events_call(read)
    return changes


def apply_event(changes: Changes, event) -> None:
    """Apply one event; a malformed one (no id, or naming no object) is counted in `skipped`.

    An event with an id but no usable object still moves the cursor: replaying it could not help.
    """
    found = event_id(event)
    if found is None:
        changes.skipped += 1
        return
    changes.events += 1
    changes.last_event_id = found
    collection, _, action = str(event.get("type", "")).partition(".")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        changes.skipped += 1
        return
    object_id = obj["id"]
    if collection == "users":
        roles = obj.get("roles") if isinstance(obj.get("roles"), dict) else {}
        for role, table in ROLE_TABLES.items():
            keep = action != "deleted" and role in roles
            changes.add(table, object_id, obj if keep else None)  # a lost role deletes that row
    elif collection in COLLECTION_TABLES:
        changes.add(COLLECTION_TABLES[collection], object_id, None if action == "deleted" else obj)


def _with_deleted(table: pa.Table, deleted: bool, key: str) -> pa.Table:
    """Add the hard-delete flag, and mark the merge key not null as its dlt hint says."""
    schema = pa.schema([f.with_nullable(False) if f.name == key else f for f in table.schema])
    table = table.cast(schema)
    return table.append_column(DELETED, pa.array([deleted] * table.num_rows, pa.bool_()))


def _tombstones(ids: list[str], schema: pa.Schema, key: str, district_id: str) -> pa.Table:
    columns = {name: pa.nulls(len(ids), schema.field(name).type) for name in schema.names}
    columns["district_id"] = district_column(district_id, len(ids))
    columns[key] = pa.array(ids, pa.string())
    return _with_deleted(pa.Table.from_pydict(columns, schema=schema), True, key)


@dlt.source(name=EVENTS_SOURCE, max_table_nesting=0, root_key=False)
def clever_events_source(district_id: str, changes: Changes, cursor: str | None):
    """The changes as dlt resources named like the raw tables (merge by id, hard deletes)."""
    hints = {DELETED: {"hard_delete": True, "data_type": "bool"}}
    merge = {"disposition": "merge", "strategy": "delete-insert"}

    def entity(table: str) -> Iterator[pa.Table]:
        if table == "districts":  # one resource records the cursor; dlt commits it with the load
            record_cursor(cursor)
        _, _, columns = TABLES[table]
        upserts, deletes = changes.upserts(table), changes.deletes(table)
        schema = table_schema(columns)
        if table == "sections":
            schema = pa.schema([f for f in schema if f.name not in SECTION_PAIR_TABLES.values()])
        schema = lists_as_json(schema.empty_table()).schema
        if upserts:
            rows = lists_as_json(objects_to_arrow(upserts, columns, district_id).select(schema.names))
            yield _with_deleted(rows, False, "id")
        if deletes:
            yield _tombstones(deletes, schema, "id", district_id)

    def pairs(table: str) -> Iterator[pa.Table]:
        schema = pair_schema(table)
        touched = changes.changed_ids().get("sections", [])
        if touched:  # clear every pair of a changed section, then write its current list
            yield _tombstones(touched, schema, "section_id", district_id)
        elif table in ORDERED_PAIR_TABLES:  # no section changed: the columns alone, so that a raw table
            yield _with_deleted(schema.empty_table(), False, "section_id")  # loaded before list_position gains it
        upserts = changes.upserts("sections")
        if upserts:
            sections = objects_to_arrow(upserts, TABLES["sections"][2], district_id)
            yield _with_deleted(id_pairs(sections, table, district_id), False, "section_id")

    resources = [
        dlt.resource(entity(table), name=table, write_disposition=merge, primary_key=("district_id", "id"),
                     columns=hints)
        for table in TABLES
    ]
    resources += [
        dlt.resource(pairs(table), name=table, write_disposition=merge, merge_key=("district_id", "section_id"),
                     columns=hints)
        for table in SECTION_PAIR_TABLES
    ]
    return resources


def cursor_in_state(state: dict) -> tuple[str | None, float] | None:
    """(cursor, stored_at epoch) from a district pipeline's dlt state, or None when none is stored."""
    stored = [source[CURSOR_STATE] for source in state.get("sources", {}).values() if CURSOR_STATE in source]
    if not stored:
        return None
    newest = max(stored, key=lambda entry: entry["stored_at"])
    return newest["cursor"], float(newest["stored_at"])
